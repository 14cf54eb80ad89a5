"""A scanner for Cedar policy text that knows where things are.

cedarpy reports parse and validation errors without positions. This module tokenizes policy
text itself (strings, comments, operators) so that the validator can split a document into
its statements, bisect a statement for the first token the parser rejects, and find the
fragments that an error message quotes. It does not parse Cedar: the Cedar parser stays the
authority on what is valid; this only says where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "LexError",
    "Position",
    "Statement",
    "Token",
    "find_fragment",
    "position_at",
    "split_statements",
    "tokenize",
]

# Longest operators first so that `==` is not read as two `=`.
_OPERATORS = ("==", "!=", "<=", ">=", "&&", "||", "::")
_SINGLE = set("()[]{},;.<>!+-*%:=@")
_IDENT = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_INT = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class Position:
    """A 1-based line and column (columns count characters, not bytes)."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its text and its [start, end) character offsets in the source."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class LexError:
    """Text the Cedar lexer would reject too: where, and why."""

    offset: int
    problem: str


@dataclass(frozen=True, slots=True)
class Statement:
    """One policy statement (annotations through `;`, or to the end if `;` is missing)."""

    index: int
    tokens: tuple[Token, ...]
    terminated: bool

    @property
    def start(self) -> int:
        return self.tokens[0].start

    @property
    def end(self) -> int:
        return self.tokens[-1].end

    def text(self, source: str) -> str:
        """The statement's source text, from its first token to its last."""
        return source[self.start : self.end]


def tokenize(source: str) -> tuple[list[Token], LexError | None]:
    """Tokens of ``source`` up to the first lexical error (returned alongside, or None)."""
    tokens: list[Token] = []
    i = 0
    n = len(source)
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
            end = _string_end(source, i)
            if end < 0:
                return tokens, LexError(i, "unterminated string literal")
            tokens.append(Token(source[i:end], i, end))
            i = end
            continue
        if ch == "?":
            match = _IDENT.match(source, i + 1)
            if match is None:
                return tokens, LexError(i, "`?` must start a template slot such as `?principal`")
            tokens.append(Token(source[i : match.end()], i, match.end()))
            i = match.end()
            continue
        match = _IDENT.match(source, i) or _INT.match(source, i)
        if match is not None:
            tokens.append(Token(match.group(), i, match.end()))
            i = match.end()
            continue
        op = next((o for o in _OPERATORS if source.startswith(o, i)), None)
        if op is not None:
            tokens.append(Token(op, i, i + len(op)))
            i += len(op)
            continue
        if ch in _SINGLE:
            tokens.append(Token(ch, i, i + 1))
            i += 1
            continue
        return tokens, LexError(i, f"unexpected character {ch!r}")
    return tokens, None


def _string_end(source: str, start: int) -> int:
    """Offset just past the string literal opening at ``start``, or -1 if it never closes."""
    i = start + 1
    n = len(source)
    while i < n:
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    return -1


def split_statements(tokens: list[Token]) -> list[Statement]:
    """Group tokens into statements ending at `;` (a `;` only ever ends a policy in Cedar)."""
    statements: list[Statement] = []
    current: list[Token] = []
    for token in tokens:
        current.append(token)
        if token.text == ";":
            statements.append(Statement(len(statements), tuple(current), terminated=True))
            current = []
    if current:
        statements.append(Statement(len(statements), tuple(current), terminated=False))
    return statements


def position_at(source: str, offset: int) -> Position:
    """The line and column of character ``offset`` in ``source``."""
    offset = max(0, min(offset, len(source)))
    line = source.count("\n", 0, offset) + 1
    line_start = source.rfind("\n", 0, offset) + 1
    return Position(line, offset - line_start + 1)


def find_fragment(tokens: tuple[Token, ...], fragment: str, *, occurrence: int = 1) -> int | None:
    """Offset of the ``occurrence``-th run of ``tokens`` spelling ``fragment``, ignoring spacing.

    Matching whole tokens (not substrings) keeps `foo` from matching inside `food`.
    """
    wanted, error = tokenize(fragment)
    if error is not None or not wanted:
        return None
    texts = [t.text for t in wanted]
    seen = 0
    for i in range(len(tokens) - len(texts) + 1):
        if all(tokens[i + j].text == texts[j] for j in range(len(texts))):
            seen += 1
            if seen == occurrence:
                return tokens[i].start
    return None
