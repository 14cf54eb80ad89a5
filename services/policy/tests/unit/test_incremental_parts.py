"""The parts incremental builds rest on: the persistent map, the tokenizer (rewritten for
speed: it must find exactly the tokens and errors the reference lexer found), and compiling
many documents in worker threads."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from symbi_policy import PolicyCompiler, PolicyValidationError
from symbi_policy.cedar_text import tokenize
from symbi_policy.persistent import PersistentMap

# ---------------------------------------------------------------------- PersistentMap

_ops = st.lists(
    st.tuples(
        st.dictionaries(st.integers(-50, 50) | st.text(max_size=3), st.integers(), max_size=8),
        st.lists(st.integers(-50, 50) | st.text(max_size=3), max_size=8),
    ),
    max_size=12,
)


@given(initial=st.dictionaries(st.text(max_size=3), st.integers(), max_size=40), ops=_ops)
def test_persistent_map_behaves_like_a_dict_and_never_changes_old_maps(initial, ops) -> None:
    current = PersistentMap(initial)
    expected = dict(initial)
    history: list[tuple[PersistentMap[object, int], dict[object, int]]] = []
    for updates, removals in ops:
        history.append((current, dict(expected)))
        current = current.evolve(updates, removals)
        expected.update(updates)
        for key in removals:
            expected.pop(key, None)
        assert dict(current) == expected
        assert len(current) == len(expected)
        for key in list(expected)[:5]:
            assert key in current
            assert current[key] == expected[key]
            assert current.get(key) == expected[key]
        assert current.get("absent-key-xyz", 7) == 7
    for old, snapshot in history:
        assert dict(old) == snapshot


def test_persistent_map_shares_what_an_update_does_not_touch() -> None:
    big = PersistentMap({f"k{i}": i for i in range(10_000)})
    changed = big.evolve({"k1": -1})
    shared = sum(a is b for a, b in zip(big._shards, changed._shards, strict=True))
    assert shared == len(big._shards) - 1
    assert big["k1"] == 1
    assert changed["k1"] == -1
    assert big.evolve(removals=["nope"]) is big


# ---------------------------------------------------------------------- tokenizer

_REF_OPERATORS = ("==", "!=", "<=", ">=", "&&", "||", "::")
_REF_SINGLE = set("()[]{},;.<>!+-*%:=@")
_REF_IDENT = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_REF_INT = re.compile(r"[0-9]+")


def _reference_tokenize(source: str) -> tuple[list[tuple[str, int, int]], tuple[int, str] | None]:
    """The character-by-character lexer the regex tokenizer replaced (kept as the oracle)."""
    tokens: list[tuple[str, int, int]] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
            continue
        if source.startswith("//", i):
            newline = source.find("\n", i)
            i = n if newline < 0 else newline + 1
            continue
        if ch == '"':
            j = i + 1
            end = -1
            while j < n:
                if source[j] == "\\":
                    j += 2
                    continue
                if source[j] == '"':
                    end = j + 1
                    break
                j += 1
            if end < 0:
                return tokens, (i, "unterminated string literal")
            tokens.append((source[i:end], i, end))
            i = end
            continue
        if ch == "?":
            match = _REF_IDENT.match(source, i + 1)
            if match is None:
                return tokens, (i, "`?` must start a template slot such as `?principal`")
            tokens.append((source[i : match.end()], i, match.end()))
            i = match.end()
            continue
        match = _REF_IDENT.match(source, i) or _REF_INT.match(source, i)
        if match is not None:
            tokens.append((match.group(), i, match.end()))
            i = match.end()
            continue
        op = next((o for o in _REF_OPERATORS if source.startswith(o, i)), None)
        if op is not None:
            tokens.append((op, i, i + len(op)))
            i += len(op)
            continue
        if ch in _REF_SINGLE:
            tokens.append((ch, i, i + 1))
            i += 1
            continue
        return tokens, (i, f"unexpected character {ch!r}")
    return tokens, None


_PIECES = st.sampled_from(
    [
        *'abXY_09 \t\n"\\?/;:=!<>&|()[]{},.+-*%@#$é',
        "\u00a0",
        "\u2028",
        "//",
        "==",
        "::",
        "principal",
        "?principal",
        '"str"',
        "when",
        "\r\n",
    ]
)


@settings(max_examples=1500)
@given(pieces=st.lists(_PIECES, max_size=40))
def test_tokenizer_matches_the_reference_lexer(pieces) -> None:
    source = "".join(pieces)
    tokens, error = tokenize(source)
    expected_tokens, expected_error = _reference_tokenize(source)
    assert [(t.text, t.start, t.end) for t in tokens] == expected_tokens
    assert (None if error is None else (error.offset, error.problem)) == expected_error


# ---------------------------------------------------------------------- compile_many

_DOC = '@id("p{i}") permit(principal == Symbi::Agent::"a{i}", action == Symbi::Action::"network", resource);'
_BROKEN = 'permit(principal, action == Symbi::Action::"publish", resource) when { context.x == };'


def test_compiling_many_in_threads_gives_what_compiling_one_by_one_gives() -> None:
    documents = [(f"d{i}", _DOC.format(i=i)) for i in range(150)]
    documents[77] = ("d77", _BROKEN)
    parallel = PolicyCompiler(workers=2).compile_many(documents)
    serial = PolicyCompiler(workers=1).compile_many(documents)
    assert len(parallel) == len(serial) == 150
    for mine, theirs in zip(parallel, serial, strict=True):
        if isinstance(theirs, PolicyValidationError):
            assert isinstance(mine, PolicyValidationError)
            assert mine.problems == theirs.problems
        else:
            assert mine == theirs
    assert isinstance(parallel[77], PolicyValidationError)
