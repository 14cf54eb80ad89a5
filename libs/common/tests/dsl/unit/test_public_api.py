"""The package's curated public names exist and are documented."""

from __future__ import annotations

import symbi_common.dsl as dsl


def test_all_names_exist_and_are_documented() -> None:
    assert sorted(dsl.__all__) == sorted(set(dsl.__all__))
    for name in dsl.__all__:
        value = getattr(dsl, name)
        if callable(value) and name[0].isupper() and name not in ("SourceFormat",):
            assert value.__doc__, name


def test_errors_are_invalid_argument() -> None:
    from symbi_common.errors import ErrorCode

    assert dsl.DslSyntaxError.code is ErrorCode.INVALID_ARGUMENT
    assert dsl.DslValidationError.code is ErrorCode.INVALID_ARGUMENT
