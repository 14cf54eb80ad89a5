"""The parsed Cedar schema every policy, entity and request is checked against."""

from __future__ import annotations

from functools import cache

import cedarpy

from symbi_common.cedar import NAMESPACE, schema_text

__all__ = ["NAMESPACE", "qualify_type", "symbi_schema"]


@cache
def symbi_schema() -> cedarpy.Schema:
    """Symbi's schema (``symbi_common.cedar``), parsed once per process."""
    return cedarpy.Schema.from_str(schema_text())


def qualify_type(name: str) -> str:
    """``Agent`` → ``Symbi::Agent``; names that already carry a namespace are kept."""
    return name if "::" in name else f"{NAMESPACE}::{name}"
