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
from typing import NamedTuple

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

# One token at a time, after any whitespace and `//` comments (an atomic group: skipped
# text is never given back). Alternatives in the order a hand-written lexer would try them:
# strings, template slots, identifiers, integers, then operators, longest first so that
# `==` is not read as two `=`. Nothing matching at a position is a lexical error there.
_TOKEN = re.compile(
    r"""(?>(?:\s+|//[^\n]*\n?)*)
    (?:(?P<token>
        "(?:[^"\\]|\\[\s\S])*"
      | \?[_a-zA-Z][_a-zA-Z0-9]*
      | [_a-zA-Z][_a-zA-Z0-9]*
      | [0-9]+
      | == | != | <= | >= | && | \|\| | ::
      | [()\[\]{},;.<>!+\-*%:=@]
    ))?""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Position:
    """A 1-based line and column (columns count characters, not bytes)."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


class Token(NamedTuple):
    """One token: its text and its [start, end) character offsets in the source.

    A named tuple: documents are tokenized on every compile, and tuples are built in C.
    """

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
    append = tokens.append
    # Every match starts where the previous one ended (the pattern matches, possibly empty,
    # at any position); one without a token is the end of the text or a lexical error.
    for found in _TOKEN.finditer(source):
        start, end = found.span("token")
        if start < 0:
            stop = found.end()
            return tokens, (_lex_error(source, stop) if stop < len(source) else None)
        append(Token(source[start:end], start, end))
    return tokens, None


def _lex_error(source: str, i: int) -> LexError:
    ch = source[i]
    if ch == '"':
        return LexError(i, "unterminated string literal")
    if ch == "?":
        return LexError(i, "`?` must start a template slot such as `?principal`")
    return LexError(i, f"unexpected character {ch!r}")


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
