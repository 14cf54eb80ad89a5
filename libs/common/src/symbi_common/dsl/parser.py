"""Text → :class:`~symbi_common.dsl.ast.Program`, or a :class:`DslSyntaxError` saying where.

The LALR parser stops at the first error; to report several in one pass, parsing resumes at
the next top-level item (a line that starts, unindented, with ``agent``, ``policy``, ...)
with everything before it blanked out, so positions stay true. Lark exceptions never leave
this module.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, NoReturn

from lark import Lark, Token, Transformer, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from symbi_common.dsl import ast
from symbi_common.dsl.diagnostics import Diagnostic, DslSyntaxError
from symbi_common.dsl.grammar import TERMINAL_NAMES, UNIT_WORDS, grammar_text
from symbi_common.errors import InvalidArgument

__all__ = ["MAX_SOURCE_BYTES", "parse", "parse_expression", "parse_rule", "parse_type"]

#: Larger texts are refused before parsing (an agent file is a few kilobytes).
MAX_SOURCE_BYTES = 1 << 20
#: At most this many syntax errors are reported for one text.
MAX_DIAGNOSTICS = 20
#: Deeper syntax trees are refused, so that every consumer can walk them recursively.
MAX_DEPTH = 200

_TOP_LEVEL = re.compile(
    r"^(metadata|agent|policy|type|function|schedule|channel|memory|webhook)\b", re.MULTILINE
)
_DURATION = re.compile(r"([0-9][0-9_]*(?:\.[0-9]+)?)(ms|months|s|m|h|d|w|y)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}
_UNICODE_ESCAPE = re.compile(r"u\{([0-9A-Fa-f]{1,6})\}")

_comments: contextvars.ContextVar[list[Token]] = contextvars.ContextVar("dsl_comments")


def _collect_comment(token: Token) -> Token:
    # Comments are ignored by the grammar; the formatter still needs them.
    sink = _comments.get(None)
    if sink is not None:
        sink.append(token)
    return token


@cache
def _parser() -> Lark:
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        start=["program", "rule_start", "expr_start", "type_start"],
        # Spans are computed from all tokens by _Builder: cheaper than propagate_positions.
        keep_all_tokens=True,
        maybe_placeholders=False,
        lexer_callbacks={"LINE_COMMENT": _collect_comment, "BLOCK_COMMENT": _collect_comment},
    )


def parse(text: str, *, file: str = "<string>") -> ast.Program:
    """Parse a whole DSL file.

    Raises DslSyntaxError (an InvalidArgument) listing every error found, each with file,
    line, column, what was expected and, where one applies, a hint. Trees are immutable, so
    the last few are kept: parsing the same text again (many agents created from one
    template) costs nothing.
    """
    _check_size(text, file)
    return _parse_program(text, file)


@lru_cache(maxsize=16)
def _parse_program(text: str, file: str) -> ast.Program:
    sink: list[Token] = []
    token = _comments.set(sink)
    try:
        tree = _parse_or_raise(text, file, "program")
    finally:
        _comments.reset(token)
    program = _build(tree, text, file)
    assert isinstance(program, ast.Program)
    comments = tuple(ast.Comment(str(t).rstrip(), pos=_token_pos(t)) for t in sink)
    return ast.Program(program.items, comments=comments, source=text, pos=program.pos)


def parse_rule(text: str, *, file: str = "<string>") -> ast.PolicyRule:
    """Parse one policy rule (``allow: network("api.example.com") if ...``)."""
    _check_size(text, file)
    rule = _build(_parse_or_raise(text, file, "rule_start"), text, file)
    assert isinstance(rule, ast.PolicyRule)
    return rule


def parse_expression(text: str, *, file: str = "<string>") -> ast.Expr:
    """Parse one expression."""
    _check_size(text, file)
    expr = _build(_parse_or_raise(text, file, "expr_start"), text, file)
    return expr  # type: ignore[no-any-return]


def parse_type(text: str, *, file: str = "<string>") -> ast.TypeRef:
    """Parse one type (``Array<String>``)."""
    _check_size(text, file)
    type_ = _build(_parse_or_raise(text, file, "type_start"), text, file)
    assert isinstance(type_, ast.TypeRef)
    return type_


def _check_size(text: str, file: str) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SOURCE_BYTES:
        raise InvalidArgument(
            f"{file}: DSL text is {size} bytes; the limit is {MAX_SOURCE_BYTES} bytes",
            reason="DSL_TOO_LARGE",
            details={"file": file, "size": str(size), "limit": str(MAX_SOURCE_BYTES)},
        )


def _parse_or_raise(text: str, file: str, start: str) -> Tree[Token]:
    first: UnexpectedInput
    try:
        return _parser().parse(text, start=start)
    except UnexpectedInput as exc:
        first = exc
    except RecursionError:
        raise DslSyntaxError([Diagnostic(file, 1, 1, "the text is nested too deeply")]) from None
    diagnostics = [_diagnose(first, text, file)]
    if start == "program":
        diagnostics += _more_errors(first, text, file)
    raise DslSyntaxError(diagnostics) from None


def _more_errors(first: UnexpectedInput, text: str, file: str) -> list[Diagnostic]:
    """Errors after the first: resume at each following top-level item."""
    found: list[Diagnostic] = []
    error = first
    floor = 0
    while len(found) + 1 < MAX_DIAGNOSTICS:
        resume = _resume_offset(text, error, floor)
        if resume is None:
            break
        floor = resume
        masked = _blank(text, resume)
        try:
            _parser().parse(masked, start="program")
            break
        except UnexpectedInput as exc:
            error = exc
            found.append(_diagnose(exc, masked, file))
        except RecursionError:
            break
    return found


def _resume_offset(text: str, error: UnexpectedInput, floor: int) -> int | None:
    at = _error_offset(error, text)
    for match in _TOP_LEVEL.finditer(text):
        start = match.start()
        # The item that starts exactly where the error is (a `}` missing before it) is
        # itself worth parsing; anything at or before the previous resume point is not.
        if start > floor and start >= at and (start > at or _column_of(text, at) == 1):
            return start
    return None


def _blank(text: str, upto: int) -> str:
    head = re.sub(r"[^\n]", " ", text[:upto])
    return head + text[upto:]


def _error_offset(error: UnexpectedInput, text: str) -> int:
    if isinstance(error, UnexpectedToken) and error.token.type == "$END":
        return len(text)
    pos = getattr(error, "pos_in_stream", None)
    if isinstance(error, UnexpectedToken):
        pos = error.token.start_pos
    return int(pos) if pos is not None else len(text)


def _column_of(text: str, offset: int) -> int:
    return offset - (text.rfind("\n", 0, offset) + 1) + 1


def _line_col(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, _column_of(text, offset)


# ------------------------------------------------------------------------------ diagnostics


def _diagnose(error: UnexpectedInput, text: str, file: str) -> Diagnostic:
    if isinstance(error, UnexpectedToken):
        return _unexpected_token(error, text, file)
    if isinstance(error, UnexpectedCharacters):
        return _unexpected_character(error, text, file)
    line, col = _line_col(text, _error_offset(error, text))
    return Diagnostic(file, line, col, "syntax error")


_OPERATORS = frozenset(
    ["||", "&&", "==", "!=", "in", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", ".", "(", "["]
)
_ASSIGNMENTS = frozenset(["=", "+=", "-=", "*=", "/=", "%="])
_EXPRESSION_STARTS = frozenset(
    [
        "IDENT",
        "STRING",
        "NUMBER",
        "DURATION",
        "VAULT",
        "true",
        "false",
        "(",
        "[",
        "!",
        "not",
        "-",
        "+",
        "agent",
        "if",
        "match",
        "{",
    ]
)


def _describe_terminals(names: Sequence[str]) -> list[str]:
    """Readable names for terminals, with operator and expression sets collapsed."""
    patterns = {t.name: t.pattern for t in _parser().terminals}
    spelled: set[str] = set()
    for name in names:
        if name in TERMINAL_NAMES or (name in patterns and patterns[name].type == "re"):
            spelled.add(name)
        elif name in patterns:
            spelled.add(str(patterns[name].value))
    groups: list[str] = []
    if len(spelled & _EXPRESSION_STARTS) >= 5:
        spelled -= _EXPRESSION_STARTS
        groups.append("an expression")
    if len(spelled & _OPERATORS) >= 3:
        spelled -= _OPERATORS
        groups.append("an operator")
    if len(spelled & _ASSIGNMENTS) >= 3:
        spelled -= _ASSIGNMENTS
        groups.append("an assignment")
    spelled -= {"::", "=>"}  # valid after a name, but never what the writer was missing
    out = sorted(
        TERMINAL_NAMES.get(s, f"`{s}`") for s in spelled if s in TERMINAL_NAMES or s not in patterns
    )
    return out + groups


def _expected_text(names: Sequence[str]) -> str:
    described = _describe_terminals(names)
    if not described:
        return ""
    if len(described) > 8:
        described = [*described[:7], f"... ({len(described) - 7} more)"]
    if len(described) == 1:
        return f"expected {described[0]}"
    return "expected one of " + ", ".join(described)


def _previous_code_end(text: str, offset: int) -> int:
    """Offset just past the last code character before ``offset`` (skips blanks, comments)."""
    last = 0
    k = 0
    while k < offset:
        ch = text[k]
        if ch == '"':
            k += 1
            while k < offset and text[k] not in '"\n':
                k += 2 if text[k] == "\\" else 1
            last = min(k + 1, offset)
        elif ch == "#" or text.startswith("//", k):
            while k < offset and text[k] != "\n":
                k += 1
            continue
        elif text.startswith("/*", k):
            end = text.find("*/", k + 2)
            k = offset if end < 0 else end + 2
            continue
        elif not ch.isspace():
            last = k + 1
        k += 1
    return last


def _unclosed_bracket(text: str, upto: int) -> tuple[str, int] | None:
    """The innermost bracket opened before ``upto`` and not closed, with its offset."""
    stack: list[tuple[str, int]] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    k = 0
    while k < upto:
        ch = text[k]
        if ch == '"':
            k += 1
            while k < upto and text[k] not in '"\n':
                k += 2 if text[k] == "\\" else 1
        elif ch == "#" or text.startswith("//", k):
            while k < upto and text[k] != "\n":
                k += 1
        elif text.startswith("/*", k):
            end = text.find("*/", k + 2)
            k = upto if end < 0 else end + 1
        elif ch in "([{":
            stack.append((ch, k))
        elif ch in ")]}" and stack and stack[-1][0] == pairs[ch]:
            stack.pop()
        k += 1
    return stack[-1] if stack else None


_TOP_LEVEL_HINT = (
    "a file holds top-level items: metadata, agent, policy, type, function, schedule, "
    "channel, memory and webhook blocks"
)
_PLANNED = {
    "import": "`import` is not part of the language",
    "struct": "`struct` is not part of the language; write `type Name = { field: Type }`",
    "enum": "`enum` is not part of the language; use a `type` alias",
    "macro": "macros are not part of the language",
    "while": "there is no `while` loop; iterate with `for x in items { ... }`",
}


def _unexpected_token(error: UnexpectedToken, text: str, file: str) -> Diagnostic:
    token = error.token
    expected = sorted(error.expected or ())
    expected_text = _expected_text(expected)
    if token.type == "$END":
        line, col = _line_col(text, len(text))
        hint = ""
        unclosed = _unclosed_bracket(text, len(text))
        if unclosed is not None:
            oline, ocol = _line_col(text, unclosed[1])
            hint = f"`{unclosed[0]}` opened at line {oline}, column {ocol} is not closed"
        message = "unexpected end of file" + (f"; {expected_text}" if expected_text else "")
        return Diagnostic(file, line, col, message, hint)

    value = str(token)
    line, col = token.line or 1, token.column or 1
    message = f"unexpected `{value}`" + (f"; {expected_text}" if expected_text else "")
    hint = ""
    prev_end = _previous_code_end(text, token.start_pos or 0)
    prev_line, prev_col = _line_col(text, prev_end)
    if "SEMICOLON" in expected and prev_line < line and prev_end > 0:
        # The statement on the previous line lacks its `;`: point there, not at the next one.
        return Diagnostic(
            file,
            prev_line,
            prev_col,
            f"missing `;` after this statement (found `{value}` on line {line})",
            "statements end with `;`; `if`, `for`, `match` and `try` blocks do not need one",
        )
    line_start = text.rfind("\n", 0, token.start_pos or 0) + 1
    earlier = re.findall(r"[A-Za-z_]+", text[line_start : token.start_pos or 0])
    if value in _PLANNED:
        hint = _PLANNED[value]
    elif "while" in earlier:
        hint = _PLANNED["while"]
    elif value in ("and", "or"):
        hint = f"boolean operators are `&&` and `||`, not `{value}`"
    elif value == "=" and "__ANON_10" in expected:
        hint = "compare with `==`; `=` assigns"
    elif "ALLOW" in expected and "RBRACE" in expected and token.type in ("IDENT", "STRING"):
        hint = "each policy rule starts with `allow:`, `deny:`, `require:` or `audit:`"
    elif "AGENT" in expected and "METADATA" in expected:
        hint = _TOP_LEVEL_HINT
    elif value in ")]}":
        unclosed = _unclosed_bracket(text, token.start_pos or 0)
        if unclosed is not None and {")": "(", "]": "[", "}": "{"}[value] != unclosed[0]:
            oline, ocol = _line_col(text, unclosed[1])
            hint = f"`{unclosed[0]}` opened at line {oline}, column {ocol} is still open"
    return Diagnostic(file, line, col, message, hint)


def _unexpected_character(error: UnexpectedCharacters, text: str, file: str) -> Diagnostic:
    offset = error.pos_in_stream or 0
    line, col = error.line, error.column
    char = text[offset] if offset < len(text) else ""
    if char == '"':
        return Diagnostic(
            file,
            line,
            col,
            "unterminated string",
            'a string ends with `"` on the same line; write `\\n` for a line break',
        )
    expected_text = _expected_text(sorted(error.allowed or ()))
    message = f"unexpected character `{char}`" + (f"; {expected_text}" if expected_text else "")
    hint = ""
    if char == "'":
        hint = 'strings use double quotes: "..."'
    elif char == "@":
        hint = "annotations are not part of the DSL"
    return Diagnostic(file, line, col, message, hint)


# ------------------------------------------------------------------------------ tree → AST


def _token_pos(token: Token) -> ast.Pos:
    return ast.Pos(
        token.line or 0,
        token.column or 0,
        token.end_line or 0,
        token.end_column or 0,
        token.start_pos or 0,
        token.end_pos or 0,
    )


def _span(children: list[Any]) -> ast.Pos:
    """The span from the first to the last child that has a position."""
    first = last = None
    for child in children:
        pos = _position(child)
        if pos is not None:
            first = pos
            break
    for child in reversed(children):
        pos = _position(child)
        if pos is not None:
            last = pos
            break
    if first is None or last is None:
        return ast.NO_POS
    return ast.Pos(first.line, first.column, last.end_line, last.end_column, first.start, last.end)


def _position(child: object) -> ast.Pos | None:
    if isinstance(child, Token):
        return _token_pos(child) if child.start_pos is not None else None
    pos = getattr(child, "pos", None)
    if isinstance(pos, ast.Pos) and pos.start >= 0:
        return pos
    return None


@dataclass(frozen=True, slots=True)
class _Problem:
    pos: ast.Pos
    message: str
    hint: str = ""


class _TransformFailed(Exception):
    def __init__(self, problem: _Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


# Wrappers for optional parts, so that a rule can tell its children apart.
@dataclass(frozen=True, slots=True)
class _Params:
    params: tuple[ast.Param, ...]
    pos: ast.Pos


@dataclass(frozen=True, slots=True)
class _Returns:
    type: ast.TypeRef
    pos: ast.Pos


@dataclass(frozen=True, slots=True)
class _Clause:
    kind: str  # with | for | on | if | guard
    expr: ast.Expr
    pos: ast.Pos
    target: ast.Expr | None = None


@dataclass(frozen=True, slots=True)
class _Args:
    items: tuple[ast.Expr | ast.NamedValue, ...]
    pos: ast.Pos


@dataclass(frozen=True, slots=True)
class _IfLet:
    pattern: ast.Pattern
    value: ast.Expr
    pos: ast.Pos


@dataclass(frozen=True, slots=True)
class _TypeArgs:
    types: tuple[ast.TypeRef, ...]
    pos: ast.Pos


@dataclass(frozen=True, slots=True)
class _Key:
    text: str
    quoted: bool


_STMT_TYPES = (ast.Let, ast.Assign, ast.Return, ast.ExprStmt, ast.For, ast.Try)


def _decode_string(token: Token) -> str:
    raw = str(token)[1:-1]
    if "\\" not in raw:
        return raw
    out: list[str] = []
    k = 0
    while k < len(raw):
        ch = raw[k]
        if ch != "\\":
            out.append(ch)
            k += 1
            continue
        nxt = raw[k + 1] if k + 1 < len(raw) else ""
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            k += 2
            continue
        match = _UNICODE_ESCAPE.match(raw, k + 1)
        if match is not None and int(match.group(1), 16) <= 0x10FFFF:
            out.append(chr(int(match.group(1), 16)))
            k = match.end()
            continue
        pos = _token_pos(token)
        col = pos.column + 1 + k
        raise _TransformFailed(
            _Problem(
                ast.Pos(pos.line, col, pos.line, col + 2, pos.start + 1 + k, pos.start + 3 + k),
                f"unknown escape `\\{nxt}` in a string",
                'escapes are \\n \\t \\r \\0 \\\\ \\" and \\u{XXXX}; write `\\\\` for a backslash',
            )
        )
    return "".join(out)


def _number(text: str) -> int | float:
    clean = text.replace("_", "")
    if any(c in clean for c in ".eE"):
        return float(clean)
    return int(clean)


# Named terminals carry content; every other token (keywords, punctuation) only positions.
_CONTENT_TOKENS = frozenset({"IDENT", "STRING", "NUMBER", "DURATION", "VAULT"})
# Rules whose keyword or operator token is their content.
_TOKEN_RULES = frozenset(
    {
        "rule_kind",
        "section_kind",
        "assign_op",
        "or_op",
        "and_op",
        "eq_op",
        "cmp_op",
        "add_op",
        "mul_op",
        "not_op",
    }
)


class _Builder(Transformer[Token, Any]):
    """Builds AST nodes from lark's tree, bottom-up.

    Every rule method gets the rule's span and its children without keyword and
    punctuation tokens (the parser keeps all tokens so that spans include them).
    """

    def __init__(self) -> None:
        super().__init__(visit_tokens=False)

    def _call_userfunc(self, tree: Tree[Token], new_children: list[Any] | None = None) -> Any:
        children = tree.children if new_children is None else new_children
        pos = _span(children)
        if tree.data not in _TOKEN_RULES:
            children = [
                c for c in children if not isinstance(c, Token) or c.type in _CONTENT_TOKENS
            ]
        return getattr(self, str(tree.data))(pos, children)

    def _group(self, pos: ast.Pos, children: list[Any]) -> Any:
        # `( expr )`: the parentheses leave no trace in the tree.
        return children[0]

    primary_f = primary_n = primary_s = _group

    # -------------------------------------------------------------- helpers
    @staticmethod
    def _nodes(children: list[Any]) -> list[Any]:
        return [c for c in children if not isinstance(c, Token)]

    @staticmethod
    def _idents(children: list[Any]) -> list[str]:
        return [str(c) for c in children if isinstance(c, Token) and c.type == "IDENT"]

    # -------------------------------------------------------------- entry points
    def program(self, pos: ast.Pos, children: list[Any]) -> ast.Program:
        return ast.Program(tuple(children), pos=pos)

    def rule_start(self, pos: ast.Pos, children: list[Any]) -> Any:
        return children[0]

    def expr_start(self, pos: ast.Pos, children: list[Any]) -> Any:
        return children[0]

    def type_start(self, pos: ast.Pos, children: list[Any]) -> Any:
        return children[0]

    # -------------------------------------------------------------- operators and kinds
    def _op(self, pos: ast.Pos, children: list[Any]) -> str:
        return str(children[0])

    rule_kind = section_kind = assign_op = _op
    or_op = and_op = eq_op = cmp_op = add_op = mul_op = _op

    def not_op(self, pos: ast.Pos, children: list[Any]) -> str:
        return "!"

    def agent_kw(self, pos: ast.Pos, children: list[Any]) -> _Key:
        return _Key("agent", quoted=False)

    # -------------------------------------------------------------- settings
    def metadata(self, pos: ast.Pos, children: list[Any]) -> ast.Metadata:
        return ast.Metadata(tuple(children), pos=pos)

    def section_def(self, pos: ast.Pos, children: list[Any]) -> ast.SectionDef:
        kind = children[0]
        rest = children[1:]
        name: str | None = None
        if rest and isinstance(rest[0], Token):
            name = str(rest[0])
            rest = rest[1:]
        cls: type[ast.SectionDef] = {
            "schedule": ast.ScheduleDef,
            "channel": ast.ChannelDef,
            "memory": ast.MemoryDef,
            "webhook": ast.WebhookDef,
        }[kind]
        return cls(name, tuple(rest), pos=pos)

    def setting(self, pos: ast.Pos, children: list[Any]) -> ast.Setting:
        return ast.Setting(str(children[0]), children[-1], pos=pos)

    def section_setting(self, pos: ast.Pos, children: list[Any]) -> ast.Setting:
        pos = pos
        return ast.Setting(str(children[0]), ast.Section(tuple(children[1:]), pos=pos), pos=pos)

    def policy_section(self, pos: ast.Pos, children: list[Any]) -> ast.Setting:
        pos = pos
        return ast.Setting("policy", ast.Section(tuple(children), pos=pos), pos=pos)

    # -------------------------------------------------------------- agents and functions
    def agent_def(self, pos: ast.Pos, children: list[Any]) -> ast.AgentDef:
        name = str(children[0])
        params: tuple[ast.Param, ...] | None = None
        returns: ast.TypeRef | None = None
        items: list[Any] = []
        for child in children[1:]:
            if isinstance(child, _Params):
                params = child.params
            elif isinstance(child, _Returns):
                returns = child.type
            else:
                items.append(child)
        return ast.AgentDef(name, tuple(items), params, returns, pos=pos)

    def params(self, pos: ast.Pos, children: list[Any]) -> _Params:
        return _Params(tuple(children), pos)

    def param(self, pos: ast.Pos, children: list[Any]) -> ast.Param:
        return ast.Param(str(children[0]), children[1], pos=pos)

    def returns(self, pos: ast.Pos, children: list[Any]) -> _Returns:
        return _Returns(children[0], pos)

    def capabilities(self, pos: ast.Pos, children: list[Any]) -> ast.Capabilities:
        names = tuple(_decode_string(c) if c.type == "STRING" else str(c) for c in children)
        positions = tuple(_token_pos(c) for c in children)
        return ast.Capabilities(names, positions, pos=pos)

    def with_block(self, pos: ast.Pos, children: list[Any]) -> ast.WithBlock:
        return ast.WithBlock(tuple(children[:-1]), children[-1], pos=pos)

    def with_attr(self, pos: ast.Pos, children: list[Any]) -> ast.WithAttr:
        value = children[1] if len(children) > 1 else None
        return ast.WithAttr(str(children[0]), value, pos=pos)

    def function_def(self, pos: ast.Pos, children: list[Any]) -> ast.FunctionDef:
        name = str(children[0])
        params = children[1].params
        returns = children[2].type if isinstance(children[2], _Returns) else None
        return ast.FunctionDef(name, params, children[-1], returns, pos=pos)

    # -------------------------------------------------------------- policies
    def policy_def(self, pos: ast.Pos, children: list[Any]) -> ast.PolicyDef:
        return ast.PolicyDef(str(children[0]), tuple(children[1:]), pos=pos)

    def policy_rule(self, pos: ast.Pos, children: list[Any]) -> ast.PolicyRule:
        kind, action = children[0], children[1]
        clauses = {c.kind: c for c in children[2:]}
        scope = clauses.get("for")
        return ast.PolicyRule(
            kind,
            action,
            condition=clauses["if"].expr if "if" in clauses else None,
            modifier=clauses["with"].expr if "with" in clauses else None,
            scope=scope.expr if scope else None,
            scope_target=scope.target if scope else None,
            pos=pos,
        )

    def with_clause(self, pos: ast.Pos, children: list[Any]) -> _Clause:
        return _Clause("with", children[0], pos)

    def for_clause(self, pos: ast.Pos, children: list[Any]) -> _Clause:
        target = children[1].expr if len(children) > 1 else None
        return _Clause("for", children[0], pos, target)

    def on_clause(self, pos: ast.Pos, children: list[Any]) -> _Clause:
        return _Clause("on", children[0], pos)

    def if_clause(self, pos: ast.Pos, children: list[Any]) -> _Clause:
        return _Clause("if", children[0], pos)

    # -------------------------------------------------------------- types
    def type_def(self, pos: ast.Pos, children: list[Any]) -> ast.TypeDef:
        return ast.TypeDef(str(children[0]), children[1], pos=pos)

    def struct_type(self, pos: ast.Pos, children: list[Any]) -> ast.StructType:
        return ast.StructType(tuple(children), pos=pos)

    def type_field(self, pos: ast.Pos, children: list[Any]) -> ast.TypeField:
        return ast.TypeField(str(children[0]), children[1], pos=pos)

    def type(self, pos: ast.Pos, children: list[Any]) -> ast.TypeRef:
        args = children[1].types if len(children) > 1 else ()
        return ast.TypeRef(str(children[0]), args, pos=pos)

    def type_args(self, pos: ast.Pos, children: list[Any]) -> _TypeArgs:
        return _TypeArgs(tuple(children), pos)

    # -------------------------------------------------------------- statements
    def block(self, pos: ast.Pos, children: list[Any]) -> ast.Block:
        tail = None
        if children and not isinstance(children[-1], _STMT_TYPES):
            tail = children.pop()
        return ast.Block(tuple(children), tail, pos=pos)

    def let_stmt(self, pos: ast.Pos, children: list[Any]) -> ast.Let:
        type_ = children[1] if len(children) == 3 else None
        return ast.Let(str(children[0]), children[-1], type_, pos=pos)

    def assign_stmt(self, pos: ast.Pos, children: list[Any]) -> ast.Assign:
        target, op, value = children
        if not isinstance(target, ast.NameLit | ast.Member | ast.Index):
            raise _TransformFailed(
                _Problem(
                    target.pos,
                    "cannot assign to this expression",
                    "assign to a name, a member (`a.b`) or an element (`a[i]`)",
                )
            )
        return ast.Assign(target, op, value, pos=pos)

    def return_stmt(self, pos: ast.Pos, children: list[Any]) -> ast.Return:
        return ast.Return(children[0] if children else None, pos=pos)

    def expr_stmt(self, pos: ast.Pos, children: list[Any]) -> ast.ExprStmt:
        return ast.ExprStmt(children[0], pos=pos)

    compound_stmt = expr_stmt

    def for_stmt(self, pos: ast.Pos, children: list[Any]) -> ast.For:
        return ast.For(str(children[0]), children[1], children[2], pos=pos)

    def try_stmt(self, pos: ast.Pos, children: list[Any]) -> ast.Try:
        return ast.Try(children[0], tuple(children[1:]), pos=pos)

    def catch_clause(self, pos: ast.Pos, children: list[Any]) -> ast.Catch:
        names = self._idents(children)
        type_name = names[0] if len(names) == 2 else None
        name = names[-1] if names else None
        return ast.Catch(children[-1], name, type_name, pos=pos)

    # -------------------------------------------------------------- compound expressions
    def if_expr(self, pos: ast.Pos, children: list[Any]) -> ast.If:
        cond, then = children[0], children[1]
        orelse = children[2] if len(children) > 2 else None
        if isinstance(cond, _IfLet):
            return ast.If(cond.value, then, orelse, cond.pattern, pos=pos)
        return ast.If(cond, then, orelse, pos=pos)

    def if_let(self, pos: ast.Pos, children: list[Any]) -> _IfLet:
        return _IfLet(children[0], children[1], pos)

    def match_expr(self, pos: ast.Pos, children: list[Any]) -> ast.Match:
        return ast.Match(children[0], tuple(children[1:]), pos=pos)

    def arm_block(self, pos: ast.Pos, children: list[Any]) -> ast.MatchArm:
        patterns = tuple(c for c in children[:-1] if not isinstance(c, _Clause))
        guards = [c.expr for c in children[:-1] if isinstance(c, _Clause)]
        guard = guards[0] if guards else None
        return ast.MatchArm(patterns, children[-1], guard, pos=pos)

    arm_expr = arm_block

    def arm_guard(self, pos: ast.Pos, children: list[Any]) -> _Clause:
        return _Clause("guard", children[0], pos)

    def name_pattern(self, pos: ast.Pos, children: list[Any]) -> ast.Pattern:
        parts = tuple(self._idents(children))
        if parts == ("_",):
            return ast.WildcardPattern(pos=pos)
        return ast.NamePattern(parts, pos=pos)

    def ctor_pattern(self, pos: ast.Pos, children: list[Any]) -> ast.CtorPattern:
        parts = tuple(self._idents(children))
        args = tuple(self._nodes(children))
        return ast.CtorPattern(parts, args, pos=pos)

    def literal_pattern(self, pos: ast.Pos, children: list[Any]) -> ast.LiteralPattern:
        token = children[0]
        value: ast.StringLit | ast.NumberLit | ast.DurationLit
        if token.type == "STRING":
            value = self.string(pos, [token])
        elif token.type == "NUMBER":
            value = self.number(pos, [token])
        else:
            value = self.duration(pos, [token])
        return ast.LiteralPattern(value, pos=pos)

    def true_pattern(self, pos: ast.Pos, children: list[Any]) -> ast.LiteralPattern:
        pos = pos
        return ast.LiteralPattern(ast.BoolLit(True, pos=pos), pos=pos)

    def false_pattern(self, pos: ast.Pos, children: list[Any]) -> ast.LiteralPattern:
        pos = pos
        return ast.LiteralPattern(ast.BoolLit(False, pos=pos), pos=pos)

    def negative_pattern(self, pos: ast.Pos, children: list[Any]) -> ast.LiteralPattern:
        pos = pos
        number = self.number(pos, [children[-1]])
        return ast.LiteralPattern(ast.Unary("-", number, pos=pos), pos=pos)

    # -------------------------------------------------------------- shared pieces
    def args(self, pos: ast.Pos, children: list[Any]) -> _Args:
        return _Args(tuple(children), pos)

    def named_value(self, pos: ast.Pos, children: list[Any]) -> ast.NamedValue:
        return ast.NamedValue(str(children[0]), children[1], pos=pos)

    array_named = named_value

    def array(self, pos: ast.Pos, children: list[Any]) -> ast.ArrayLit:
        return ast.ArrayLit(tuple(children), pos=pos)

    def record(self, pos: ast.Pos, children: list[Any]) -> ast.RecordLit:
        return ast.RecordLit(tuple(children), pos=pos)

    def set_lit(self, pos: ast.Pos, children: list[Any]) -> ast.SetLit:
        return ast.SetLit(tuple(children), pos=pos)

    def struct_lit(self, pos: ast.Pos, children: list[Any]) -> ast.StructLit:
        return ast.StructLit(str(children[0]), tuple(children[1:]), pos=pos)

    def field(self, pos: ast.Pos, children: list[Any]) -> ast.Field:
        key = children[0]
        if isinstance(key, Token):
            quoted = key.type == "STRING"
            key = _Key(_decode_string(key) if quoted else str(key), quoted)
        return ast.Field(key.text, children[1], key.quoted, pos=pos)

    # -------------------------------------------------------------- operators
    def binary(self, pos: ast.Pos, children: list[Any]) -> ast.Binary:
        left, op, right = children
        return ast.Binary(op, left, right, pos=pos)

    def unary(self, pos: ast.Pos, children: list[Any]) -> ast.Unary:
        return ast.Unary(children[0], children[1], pos=pos)

    def _lambda(self, pos: ast.Pos, children: list[Any]) -> ast.Lambda:
        return ast.Lambda(str(children[0]), children[1], pos=pos)

    lambda_f = lambda_n = lambda_s = _lambda

    def member(self, pos: ast.Pos, children: list[Any]) -> ast.Expr:
        obj, name = children[0], str(children[1])
        pos = pos
        if isinstance(obj, ast.NumberLit) and name in UNIT_WORDS:
            return ast.DurationLit(obj.value, UNIT_WORDS[name], pos=pos)
        return ast.Member(obj, name, pos=pos)

    def index(self, pos: ast.Pos, children: list[Any]) -> ast.Index:
        return ast.Index(children[0], children[1], pos=pos)

    def call(self, pos: ast.Pos, children: list[Any]) -> ast.Call:
        return ast.Call(children[0], children[1].items, pos=pos)

    # -------------------------------------------------------------- atoms
    def string(self, pos: ast.Pos, children: list[Any]) -> ast.StringLit:
        return ast.StringLit(_decode_string(children[0]), pos=_token_pos(children[0]))

    def number(self, pos: ast.Pos, children: list[Any]) -> ast.NumberLit:
        token = children[0]
        return ast.NumberLit(_number(str(token)), str(token), pos=_token_pos(token))

    def duration(self, pos: ast.Pos, children: list[Any]) -> ast.DurationLit:
        token = children[0]
        match = _DURATION.fullmatch(str(token))
        assert match is not None  # the terminal's pattern guarantees the shape
        return ast.DurationLit(_number(match.group(1)), match.group(2), pos=_token_pos(token))

    def true(self, pos: ast.Pos, children: list[Any]) -> ast.BoolLit:
        return ast.BoolLit(True, pos=pos)

    def false(self, pos: ast.Pos, children: list[Any]) -> ast.BoolLit:
        return ast.BoolLit(False, pos=pos)

    def name(self, pos: ast.Pos, children: list[Any]) -> ast.NameLit:
        return ast.NameLit(str(children[0]), pos=_token_pos(children[0]))

    def path(self, pos: ast.Pos, children: list[Any]) -> ast.Path:
        return ast.Path(tuple(str(c) for c in children), pos=pos)

    def vault(self, pos: ast.Pos, children: list[Any]) -> ast.VaultRef:
        token = children[0]
        return ast.VaultRef(str(token)[len("vault://") :], pos=_token_pos(token))

    def agent_ref(self, pos: ast.Pos, children: list[Any]) -> ast.AgentRef:
        return ast.AgentRef(str(children[-1]), pos=pos)


def _build(tree: Tree[Token], text: str, file: str) -> Any:
    try:
        node = _Builder().transform(tree)
    except _TransformFailed as failed:
        p = failed.problem
        raise DslSyntaxError(
            [Diagnostic(file, p.pos.line, p.pos.column, p.message, p.hint)]
        ) from None
    except VisitError as exc:
        _reraise(exc, file)
    except RecursionError:
        raise DslSyntaxError([Diagnostic(file, 1, 1, "the text is nested too deeply")]) from None
    _check_depth(node, file)
    return node


def _check_depth(root: object, file: str) -> None:
    stack: list[tuple[object, int]] = [(root, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, ast.Node):
            if depth > MAX_DEPTH:
                pos = current.pos
                raise DslSyntaxError(
                    [
                        Diagnostic(
                            file,
                            pos.line,
                            pos.column,
                            f"nested more than {MAX_DEPTH} levels deep",
                            "split the expression with `let` bindings",
                        )
                    ]
                )
            for name in current.__dataclass_fields__:
                if name not in ("pos", "comments", "source", "name_pos"):
                    stack.append((getattr(current, name), depth + 1))
        elif isinstance(current, tuple):
            stack.extend((item, depth) for item in current)


def _reraise(exc: VisitError, file: str) -> NoReturn:
    orig = exc.orig_exc
    if isinstance(orig, _TransformFailed):
        p = orig.problem
        raise DslSyntaxError(
            [Diagnostic(file, p.pos.line, p.pos.column, p.message, p.hint)]
        ) from None
    if isinstance(orig, RecursionError):
        raise DslSyntaxError([Diagnostic(file, 1, 1, "the text is nested too deeply")]) from None
    raise exc
