"""The canonical layout of DSL text.

``format_program(parse(text))`` prints a program so that parsing the output gives an equal
tree (positions aside) and formatting again changes nothing. The layout:

* four-space indent; one blank line between top-level items; single blank lines inside
  blocks are kept where the source had them;
* settings (``metadata``, ``memory``, ...) as ``key = value`` and nested ``key { }``;
* ``capabilities = ["a", "b"]``; ``with a = 1, b = 2 {`` when it fits, else one
  attribute per line between ``with`` and ``{``;
* policy rules as ``kind: action if guard`` on one line when it fits, else the clauses
  (``with``, ``for``, ``if``) on indented lines of their own;
* brackets, records and calls on one line when they fit in 100 columns and hold no
  comment, else one element per line (a call's last record or array argument hugs the call);
* durations in their short form (``30s``, ``500ms``), named arguments as ``name: value``,
  ``!`` for ``not``, strings re-escaped, parentheses only where precedence needs them.

Comments are kept: a comment on its own line stays before the construct that follows it,
and a comment at the end of a line stays at the end of that construct's last line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from symbi_common.dsl import ast
from symbi_common.dsl.diagnostics import Diagnostic, DslSyntaxError
from symbi_common.dsl.parser import parse

__all__ = ["WIDTH", "format_expr", "format_program", "format_source"]

#: Lines are kept within this many columns where a break is possible.
WIDTH = 100
_INDENT = "    "
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")
# Words that cannot stand unquoted as a record key (they start an expression there).
_KEY_RESERVED = frozenset({"if", "match", "true", "false", "not"})

# Binding strength; an operand weaker than its slot is parenthesized.
_PREC_LAMBDA, _PREC_UNARY, _PREC_POSTFIX, _PREC_ATOM = 0, 7, 8, 9
_BINARY_PREC = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    "in": 3,
    "<": 4,
    ">": 4,
    "<=": 4,
    ">=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
}


def format_source(text: str, *, file: str = "<string>") -> str:
    """Parse ``text`` and print it canonically; raise DslSyntaxError if it does not parse.

    The output is checked to parse back to the same program: a formatter defect raises
    instead of handing back text with a different meaning.
    """
    program = parse(text, file=file)
    out = format_program(program)
    again = parse(out, file=file)
    if again != program:
        raise DslSyntaxError(
            [
                Diagnostic(
                    file,
                    0,
                    0,
                    "the formatter would change the meaning of this file; it was left as is",
                    "please report this with the file attached",
                    code="formatter",
                )
            ]
        )
    return out


def format_program(program: ast.Program) -> str:
    """The canonical text of ``program`` (with its comments, if it was parsed from text)."""
    return _Printer(program.source, program.comments).program(program)


def format_expr(expr: ast.Expr) -> str:
    """An expression on one line."""
    return _Printer("", ()).flat(expr)


@dataclass(frozen=True, slots=True)
class _Ctx:
    """Where an expression is printed: ``brace`` False forbids top-level brace literals
    (``if`` heads etc.), ``stmt`` True forbids a leading ``if``/``match``/``{``."""

    brace: bool = True
    stmt: bool = False


_FULL = _Ctx()
_NO_BRACE = _Ctx(brace=False)
_STMT = _Ctx(stmt=True)


def _brace_exposed(e: ast.Expr) -> bool:
    """True when ``e`` has a brace literal outside any bracket (illegal in an ``if`` head)."""
    match e:
        case ast.RecordLit() | ast.SetLit() | ast.StructLit():
            return True
        case ast.Binary(left=left, right=right):
            return _brace_exposed(left) or _brace_exposed(right)
        case ast.Unary(operand=operand):
            return _brace_exposed(operand)
        case ast.Member(obj=obj) | ast.Index(obj=obj) | ast.Call(func=obj):
            return _brace_exposed(obj)
        case ast.Lambda(body=body):
            return _brace_exposed(body)
    return False


def _leftmost_compound(e: ast.Expr) -> bool:
    """True when ``e`` starts with ``if``, ``match`` or ``{`` (illegal at statement start)."""
    match e:
        case ast.If() | ast.Match() | ast.RecordLit() | ast.SetLit():
            return True
        case ast.Binary(left=left):
            return _leftmost_compound(left)
        case ast.Member(obj=obj) | ast.Index(obj=obj) | ast.Call(func=obj):
            return _leftmost_compound(obj)
    return False


def _prec(e: ast.Expr) -> int:
    match e:
        case ast.Lambda():
            return _PREC_LAMBDA
        case ast.Binary(op=op):
            return _BINARY_PREC[op]
        case ast.Unary():
            return _PREC_UNARY
        case ast.Member() | ast.Index() | ast.Call():
            return _PREC_POSTFIX
    return _PREC_ATOM


def _string(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\0":
            out.append("\\0")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _key(key: str, quoted: bool) -> str:
    if quoted or _IDENT.fullmatch(key) is None or key in _KEY_RESERVED:
        return _string(key)
    return key


def _number(value: int | float, raw: str = "") -> str:
    if raw:
        return raw
    if isinstance(value, bool):  # bool is an int; never expected here
        return "1" if value else "0"
    return repr(value)


class _Printer:
    def __init__(self, source: str, comments: Sequence[ast.Comment]) -> None:
        self.src = source
        # Comments not yet printed, in source order.
        self.pending: list[ast.Comment] = sorted(comments, key=lambda c: c.pos.start)

    # ------------------------------------------------------------------ comments
    def has_comments(self, start: int, end: int) -> bool:
        return any(start <= c.pos.start < end for c in self.pending)

    def _take_before(self, offset: int) -> list[ast.Comment]:
        taken = [c for c in self.pending if c.pos.start < offset]
        if taken:
            self.pending = [c for c in self.pending if c.pos.start >= offset]
        return taken

    def _trailing(self, end: int) -> str:
        """A comment on the same source line right after offset ``end``, taken, or ''."""
        if end < 0:
            return ""
        for c in self.pending:
            if c.pos.start < end:
                continue
            between = self.src[end : c.pos.start]
            if "\n" in between or between.strip(" \t,;") or "\n" in c.text:
                return ""
            self.pending.remove(c)
            return "  " + c.text
        return ""

    def _blank_between(self, start: int | None, end: int) -> bool:
        if start is None or start < 0 or end < 0:
            return False
        return _BLANK_LINE.search(self.src, start, end) is not None

    def seq(
        self,
        nodes: Sequence[ast.Node],
        depth: int,
        render: Callable[[ast.Node, int], str],
        *,
        close: int,
        separator: str = "",
        last_separator: bool = False,
        blank_between_items: bool = False,
    ) -> list[str]:
        """Lines for a sequence of line-level nodes, with comments and kept blank lines.

        ``close`` is the source offset where the sequence ends (its closing brace);
        comments before it that belong to no node are printed at the end.
        """
        pad = _INDENT * depth
        lines: list[str] = []
        prev_end: int | None = None
        prev_was_item = False
        for i, node in enumerate(nodes):
            for comment in self._take_before(node.pos.start):
                blank = self._blank_between(prev_end, comment.pos.start)
                if lines and (blank or (blank_between_items and prev_was_item)):
                    lines.append("")
                lines += self._comment_lines(comment, pad)
                prev_end, prev_was_item = comment.pos.end, False
            blank = self._blank_between(prev_end, node.pos.start)
            if lines and (blank or (blank_between_items and prev_was_item)):
                lines.append("")
            text = render(node, depth)
            sep = separator if i < len(nodes) - 1 or last_separator else ""
            text += sep + self._trailing(node.pos.end)
            lines.append(pad + text)
            prev_end, prev_was_item = node.pos.end, True
        for comment in self._take_before(close):
            blank = self._blank_between(prev_end, comment.pos.start)
            if lines and (blank or (blank_between_items and prev_was_item)):
                lines.append("")
            lines += self._comment_lines(comment, pad)
            prev_end, prev_was_item = comment.pos.end, False
        return lines

    def _comment_lines(self, comment: ast.Comment, pad: str) -> list[str]:
        first, *rest = comment.text.split("\n")
        # A block comment's later lines keep their indentation relative to its first line.
        shift = max(comment.pos.column - 1, 0)
        out = [pad + first]
        for line in rest:
            strip = len(line) - len(line.lstrip(" "))
            out.append(pad + line[min(strip, shift) :] if line.strip() else "")
        return out

    def braced(
        self,
        head: str,
        nodes: Sequence[ast.Node],
        depth: int,
        render: Callable[[ast.Node, int], str],
        node: ast.Node,
    ) -> str:
        """``head {`` + the nodes one per line + ``}`` (``head {}`` when empty)."""
        close = node.pos.end - 1 if node.pos.end > 0 else -1
        if not nodes and not self.has_comments(node.pos.start, close):
            return head + " {}" if head else "{}"
        inner = self.seq(nodes, depth + 1, render, close=close)
        opener = head + " {" if head else "{"
        return "\n".join([opener, *inner, _INDENT * depth + "}"])

    # ------------------------------------------------------------------ program and items
    def program(self, program: ast.Program) -> str:
        lines = self.seq(
            program.items,
            0,
            self.item,
            close=len(self.src) + 1,
            blank_between_items=True,
        )
        return "\n".join(lines).rstrip() + "\n" if lines else ""

    def item(self, node: ast.Node, depth: int) -> str:
        match node:
            case ast.Metadata():
                return self.braced("metadata", node.entries, depth, self.entry, node)
            case ast.SectionDef():
                head = node.KEYWORD + (f" {node.name}" if node.name is not None else "")
                return self.braced(head, node.entries, depth, self.entry, node)
            case ast.AgentDef():
                return self.agent(node, depth)
            case ast.PolicyDef():
                return self.policy(node, depth)
            case ast.TypeDef():
                return self.type_def(node, depth)
            case ast.FunctionDef():
                return self.function(node, depth)
        raise TypeError(f"not a top-level item: {type(node).__name__}")

    def entry(self, node: ast.Node, depth: int) -> str:
        match node:
            case ast.Setting(key=key, value=ast.Section() as section):
                return self.braced(_key(key, False), section.entries, depth, self.entry, section)
            case ast.Setting(key=key, value=value):
                assert not isinstance(value, ast.Section)
                head = f"{_key(key, False)} = "
                return head + self.expr(value, depth, len(head) + depth * 4, _NO_BRACE)
            case ast.PolicyDef():
                return self.policy(node, depth)
        raise TypeError(f"not a settings entry: {type(node).__name__}")

    def _params(self, params: Sequence[ast.Param], depth: int, col: int, start: int) -> str:
        flat = "(" + ", ".join(f"{p.name}: {self.type_ref(p.type)}" for p in params) + ")"
        close = self._matching_close(start)
        if col + len(flat) <= WIDTH and not self.has_comments(start, close):
            return flat
        inner = self.seq(
            params,
            depth + 1,
            lambda p, _d: f"{p.name}: {self.type_ref(p.type)}",  # type: ignore[attr-defined]
            close=close,
            separator=",",
        )
        return "\n".join(["(", *inner, _INDENT * depth + ")"])

    def _matching_close(self, start: int) -> int:
        """Offset of the bracket closing the first ``(`` at or after ``start``."""
        if start < 0 or not self.src:
            return -1
        k = self.src.find("(", start)
        depth = 0
        while 0 <= k < len(self.src):
            ch = self.src[k]
            if ch == '"':
                k += 1
                while k < len(self.src) and self.src[k] not in '"\n':
                    k += 2 if self.src[k] == "\\" else 1
            elif ch == "#" or self.src.startswith("//", k):
                k = self.src.find("\n", k)
                if k < 0:
                    return -1
            elif ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
                if depth == 0:
                    return k
            k += 1
        return -1

    def agent(self, node: ast.AgentDef, depth: int) -> str:
        head = f"agent {node.name}"
        if node.params is not None:
            head += self._params(node.params, depth, len(head) + depth * 4, node.pos.start)
        if node.returns is not None:
            head += f" -> {self.type_ref(node.returns)}"
        return self.braced(head, node.items, depth, self.agent_item, node)

    def agent_item(self, node: ast.Node, depth: int) -> str:
        match node:
            case ast.Capabilities(names=names, name_pos=name_pos):
                head = "capabilities = "
                positions = name_pos if len(name_pos) == len(names) else (ast.NO_POS,) * len(names)
                items = tuple(
                    ast.StringLit(n, pos=p) for n, p in zip(names, positions, strict=True)
                )
                array = ast.ArrayLit(items, pos=node.pos)
                return head + self.expr(array, depth, depth * 4 + len(head), _FULL)
            case ast.PolicyDef():
                return self.policy(node, depth)
            case ast.FunctionDef():
                return self.function(node, depth)
            case ast.WithBlock():
                return self.with_block(node, depth)
        return self.stmt(node, depth)

    def function(self, node: ast.FunctionDef, depth: int) -> str:
        head = f"function {node.name}"
        head += self._params(node.params, depth, len(head) + depth * 4, node.pos.start)
        if node.returns is not None:
            head += f" -> {self.type_ref(node.returns)}"
        return head + " " + self.block(node.body, depth)

    def with_block(self, node: ast.WithBlock, depth: int) -> str:
        def attr(a: ast.Node, d: int) -> str:
            assert isinstance(a, ast.WithAttr)
            if a.value is None:
                return a.name
            head = f"{a.name} = "
            return head + self.expr(a.value, d, d * 4 + len(head), _NO_BRACE)

        def flat_attr(a: ast.WithAttr) -> str:
            if a.value is None:
                return a.name
            value = self.flat(a.value)
            return f"{a.name} = " + (f"({value})" if _brace_exposed(a.value) else value)

        if not node.attrs:
            return "with " + self.block(node.body, depth)
        flat = "with " + ", ".join(flat_attr(a) for a in node.attrs) + " "
        attrs_end = node.body.pos.start
        if (
            "\n" not in flat
            and depth * 4 + len(flat) + 1 <= WIDTH
            and not self.has_comments(node.pos.start, attrs_end)
        ):
            return flat + self.block(node.body, depth)
        inner = self.seq(node.attrs, depth + 1, attr, close=attrs_end, separator=",")
        return "\n".join(["with", *inner, _INDENT * depth + self.block(node.body, depth)])

    def policy(self, node: ast.PolicyDef, depth: int) -> str:
        return self.braced(f"policy {node.name}", node.rules, depth, self.rule, node)

    def rule(self, node: ast.Node, depth: int) -> str:
        assert isinstance(node, ast.PolicyRule)
        clauses: list[tuple[str, ast.Expr]] = []
        if node.modifier is not None:
            clauses.append(("with ", node.modifier))
        if node.scope is not None:
            clauses.append(("for ", node.scope))
        if node.scope_target is not None:
            clauses.append(("on ", node.scope_target))
        if node.condition is not None:
            clauses.append(("if ", node.condition))
        head = f"{node.kind}: "
        flat = head + " ".join([self.flat(node.action)] + [k + self.flat(e) for k, e in clauses])
        if (
            "\n" not in flat
            and depth * 4 + len(flat) <= WIDTH
            and not self.has_comments(node.pos.start, node.pos.end)
        ):
            return flat
        parts = [head + self.expr(node.action, depth, depth * 4 + len(head), _FULL)]
        parts[-1] += self._trailing(node.action.pos.end)
        pad = _INDENT * (depth + 1)
        for keyword, expr in clauses:
            if keyword == "on ":
                # `on` continues its `for` clause on the same line.
                col = len(parts[-1].rsplit("\n", 1)[-1]) + 4
                parts[-1] += " on " + self.expr(expr, depth + 1, col, _FULL)
                continue
            for comment in self._take_before(expr.pos.start):
                parts.append(pad + comment.text)
            col = (depth + 1) * 4 + len(keyword)
            parts.append(pad + keyword + self.expr(expr, depth + 1, col, _FULL))
            if not (keyword == "for " and node.scope_target is not None):
                parts[-1] += self._trailing(expr.pos.end)
        return "\n".join(parts)

    def type_def(self, node: ast.TypeDef, depth: int) -> str:
        head = f"type {node.name} = "
        if isinstance(node.type, ast.TypeRef):
            return head + self.type_ref(node.type)
        fields = node.type.fields
        flat = head + "{ " + ", ".join(f"{f.name}: {self.type_ref(f.type)}" for f in fields) + " }"
        if not fields:
            flat = head + "{}"
        span = node.type.pos
        if depth * 4 + len(flat) <= WIDTH and not self.has_comments(span.start, span.end):
            return flat
        inner = self.seq(
            fields,
            depth + 1,
            lambda f, _d: f"{f.name}: {self.type_ref(f.type)}",  # type: ignore[attr-defined]
            close=span.end - 1,
            separator=",",
        )
        return "\n".join([head + "{", *inner, _INDENT * depth + "}"])

    def type_ref(self, t: ast.TypeRef) -> str:
        if not t.args:
            return t.name
        return f"{t.name}<{', '.join(self.type_ref(a) for a in t.args)}>"

    # ------------------------------------------------------------------ statements
    def block(self, block: ast.Block, depth: int) -> str:
        nodes: list[ast.Node] = list(block.stmts)
        if block.tail is not None:
            nodes.append(block.tail)
        return self.braced("", nodes, depth, self._block_line, block)

    def _block_line(self, node: ast.Node, depth: int) -> str:
        if isinstance(node, ast.Let | ast.Assign | ast.Return | ast.ExprStmt | ast.For | ast.Try):
            return self.stmt(node, depth)
        # The block's trailing expression: statement position, no `;`.
        return self.expr(node, depth, depth * 4, _STMT)  # type: ignore[arg-type]

    def stmt(self, node: ast.Node, depth: int) -> str:
        col = depth * 4
        match node:
            case ast.Let(name=name, value=value, type=type_):
                head = f"let {name}" + (f": {self.type_ref(type_)}" if type_ else "") + " = "
                return head + self.expr(value, depth, col + len(head), _FULL) + ";"
            case ast.Assign(target=target, op=op, value=value):
                head = self.expr(target, depth, col, _STMT) + f" {op} "
                return head + self.expr(value, depth, col + len(head), _FULL) + ";"
            case ast.Return(value=None):
                return "return;"
            case ast.Return(value=value):
                assert value is not None
                return "return " + self.expr(value, depth, col + 7, _FULL) + ";"
            case ast.ExprStmt(expr=ast.If() as e):
                return self.if_expr(e, depth, statement=True)
            case ast.ExprStmt(expr=ast.Match() as e):
                return self.match(e, depth)
            case ast.ExprStmt(expr=e):
                return self.expr(e, depth, col, _STMT) + ";"
            case ast.For(var=var, iterable=iterable, body=body):
                head = f"for {var} in "
                it = self.expr(iterable, depth, col + len(head), _NO_BRACE)
                return head + it + " " + self.block(body, depth)
            case ast.Try(body=body, catches=catches):
                text = "try " + self.block(body, depth)
                for c in catches:
                    binding = ""
                    if c.name is not None:
                        binding = f"({c.type_name} {c.name}) " if c.type_name else f"({c.name}) "
                    text += " catch " + binding + self.block(c.body, depth)
                return text
        raise TypeError(f"not a statement: {type(node).__name__}")

    # ------------------------------------------------------------------ expressions
    def flat(self, e: ast.Expr | ast.NamedValue, min_prec: int = 0) -> str:
        """``e`` on one line, ignoring comments (used to measure and for short forms)."""
        return self._render(e, 0, 0, _FULL, min_prec, flat=True)

    def expr(self, e: ast.Expr, depth: int, col: int, ctx: _Ctx, min_prec: int = 0) -> str:
        """``e`` starting at column ``col``; breaks containers that do not fit."""
        wrap = (not ctx.brace and _brace_exposed(e)) or (ctx.stmt and _leftmost_compound(e))
        if wrap:
            return "(" + self._render(e, depth, col + 1, _FULL, 0, flat=False) + ")"
        return self._render(e, depth, col, ctx, min_prec, flat=False)

    def _fits(self, e: ast.Node, text: str, col: int) -> bool:
        return (
            "\n" not in text
            and col + len(text) <= WIDTH
            and not self.has_comments(e.pos.start, e.pos.end)
        )

    def _render(
        self,
        e: ast.Expr | ast.NamedValue,
        depth: int,
        col: int,
        ctx: _Ctx,
        min_prec: int,
        *,
        flat: bool,
    ) -> str:
        if isinstance(e, ast.NamedValue):
            head = f"{e.name}: "
            return head + self._render(e.value, depth, col + len(head), _FULL, 0, flat=flat)
        if _prec(e) < min_prec:
            return "(" + self._render(e, depth, col + 1, _FULL, 0, flat=flat) + ")"
        if not flat and isinstance(e, ast.If | ast.Match):
            if isinstance(e, ast.Match):
                return self.match(e, depth)
            return self.if_expr(e, depth, statement=False)
        if not flat:
            one_line = self._render(e, depth, col, ctx, min_prec, flat=True)
            if self._fits(e, one_line, col):
                return one_line
        match e:
            case ast.NameLit(id=name):
                return name
            case ast.Path(parts=parts):
                return "::".join(parts)
            case ast.StringLit(value=value):
                return _string(value)
            case ast.NumberLit(value=value, raw=raw):
                return _number(value, raw)
            case ast.BoolLit(value=value):
                return "true" if value else "false"
            case ast.DurationLit(amount=amount, unit=unit):
                return f"{_number(amount)}{unit}"
            case ast.VaultRef(path=path):
                return f"vault://{path}"
            case ast.AgentRef(name=name):
                return f"agent {name}"
            case ast.Lambda(param=param, body=body):
                head = f"{param} => "
                return head + self._render(body, depth, col + len(head), ctx, 0, flat=flat)
            case ast.Unary(op=op, operand=operand):
                text = self._render(operand, depth, col + 1, ctx, _PREC_UNARY, flat=flat)
                return op + text
            case ast.Binary(op=op, left=left, right=right):
                p = _BINARY_PREC[op]
                lhs = self._render(left, depth, col, ctx, p, flat=flat)
                rcol = col + len(lhs.rsplit("\n", 1)[-1]) + len(op) + 2
                rhs = self._render(right, depth, rcol, ctx, p + 1, flat=flat)
                return f"{lhs} {op} {rhs}"
            case ast.Member(obj=obj, name=name):
                return self._render(obj, depth, col, ctx, _PREC_POSTFIX, flat=flat) + "." + name
            case ast.Index(obj=obj, index=index):
                base = self._render(obj, depth, col, ctx, _PREC_POSTFIX, flat=flat)
                return f"{base}[{self._render(index, depth, col, _FULL, 0, flat=flat)}]"
            case ast.Call(func=func, args=args):
                base = self._render(func, depth, col, ctx, _PREC_POSTFIX, flat=flat)
                return base + self._args(e, args, depth, col + len(base), flat=flat)
            case ast.ArrayLit(items=items):
                return self._container("[", "]", items, e, depth, flat=flat, spaced=False)
            case ast.SetLit(items=items):
                return self._container("{", "}", items, e, depth, flat=flat, spaced=False)
            case ast.RecordLit(fields=fields):
                return self._container("{", "}", fields, e, depth, flat=flat, spaced=True)
            case ast.StructLit(type_name=name, fields=fields):
                return (
                    name + " " + self._container("{", "}", fields, e, depth, flat=flat, spaced=True)
                )
            case ast.If():
                return self.if_expr(e, depth, statement=False, flat=True)
            case ast.Match():
                return "\nmatch"  # never on one line (see if_expr)
        raise TypeError(f"not an expression: {type(e).__name__}")

    def _element(self, e: ast.Node, depth: int, *, flat: bool) -> str:
        if isinstance(e, ast.Field):
            head = _key(e.key, e.quoted) + ": "
            return head + self._render(e.value, depth, depth * 4 + len(head), _FULL, 0, flat=flat)
        if isinstance(e, ast.NamedValue):
            # In an array the only form is `name = value`.
            head = f"{e.name} = "
            return head + self._render(e.value, depth, depth * 4 + len(head), _FULL, 0, flat=flat)
        return self._render(e, depth, depth * 4, _FULL, 0, flat=flat)  # type: ignore[arg-type]

    def _container(
        self,
        opener: str,
        closer: str,
        items: Sequence[ast.Node],
        node: ast.Node,
        depth: int,
        *,
        flat: bool,
        spaced: bool,
    ) -> str:
        if flat or (not items and not self.has_comments(node.pos.start, node.pos.end)):
            inner = ", ".join(self._element(i, depth, flat=True) for i in items)
            if spaced and items:
                return f"{opener} {inner} {closer}"
            return f"{opener}{inner}{closer}"
        lines = self.seq(
            items,
            depth + 1,
            lambda i, d: self._element(i, d, flat=False),
            close=node.pos.end - 1,
            separator=",",
        )
        return "\n".join([opener, *lines, _INDENT * depth + closer])

    def _args(
        self,
        call: ast.Call,
        args: Sequence[ast.Expr | ast.NamedValue],
        depth: int,
        col: int,
        *,
        flat: bool,
    ) -> str:
        def one(a: ast.Node, d: int, *, flat: bool, at: int | None = None) -> str:
            at = d * 4 if at is None else at
            if isinstance(a, ast.NamedValue):
                head = f"{a.name}: "
                return head + self._render(a.value, d, at + len(head), _FULL, 0, flat=flat)
            return self._render(a, d, at, _FULL, 0, flat=flat)  # type: ignore[arg-type]

        flat_text = "(" + ", ".join(one(a, depth, flat=True) for a in args) + ")"
        start = call.func.pos.end
        if flat or not args:
            return flat_text
        last = args[-1]
        hug_kinds = ast.RecordLit | ast.ArrayLit | ast.StructLit | ast.SetLit
        value = last.value if isinstance(last, ast.NamedValue) else last
        if isinstance(value, hug_kinds) and value.pos.start >= 0:
            prefix = "(" + "".join(one(a, depth, flat=True) + ", " for a in args[:-1])
            if (
                "\n" not in prefix
                and col + len(prefix) <= WIDTH
                and not self.has_comments(start, value.pos.start)
                and not self.has_comments(value.pos.end, call.pos.end)
            ):
                return prefix + one(last, depth, flat=False, at=col + len(prefix)) + ")"
        lines = self.seq(
            args,
            depth + 1,
            lambda a, d: one(a, d, flat=False),
            close=call.pos.end - 1,
            separator=",",
        )
        return "\n".join(["(", *lines, _INDENT * depth + ")"])

    def if_expr(self, e: ast.If, depth: int, *, statement: bool, flat: bool = False) -> str:
        def head(node: ast.If) -> str:
            if node.pattern is not None:
                return f"if let {self.pattern(node.pattern)} = {self._cond(node.cond, depth)} "
            return f"if {self._cond(node.cond, depth)} "

        if flat or not statement:
            short = self._short_if(e)
            if short is not None and (flat or self._fits(e, short, depth * 4)):
                return short
            if flat:
                # Blocks with statements never fit on a line; say so without printing them
                # (printing would take their comments).
                return "\nif"
        text = head(e) + self.block(e.then, depth)
        rest = e.orelse
        while rest is not None:
            if isinstance(rest, ast.If):
                text += " else " + head(rest) + self.block(rest.then, depth)
                rest = rest.orelse
            else:
                text += " else " + self.block(rest, depth)
                rest = None
        return text

    def _cond(self, cond: ast.Expr, depth: int) -> str:
        return self.expr(cond, depth, depth * 4 + 3, _NO_BRACE)

    def _flat_cond(self, cond: ast.Expr) -> str:
        text = self.flat(cond)
        return f"({text})" if _brace_exposed(cond) else text

    def _short_if(self, e: ast.If) -> str | None:
        """``if c { a } else { b }`` when every branch is a bare expression."""
        parts: list[str] = []
        node: ast.If | ast.Block | None = e
        while node is not None:
            if isinstance(node, ast.If):
                if node.then.stmts or node.then.tail is None:
                    return None
                head = (
                    f"if let {self.pattern(node.pattern)} = {self._flat_cond(node.cond)}"
                    if node.pattern is not None
                    else f"if {self._flat_cond(node.cond)}"
                )
                parts.append(f"{head} {{ {self._tail_flat(node.then.tail)} }}")
                node = node.orelse
            else:
                if node.stmts or node.tail is None:
                    return None
                parts.append(f"{{ {self._tail_flat(node.tail)} }}")
                node = None
        text = " else ".join(parts)
        return None if "\n" in text else text

    def _tail_flat(self, e: ast.Expr) -> str:
        text = self.flat(e)
        return f"({text})" if _leftmost_compound(e) else text

    def match(self, e: ast.Match, depth: int) -> str:
        def arm(node: ast.Node, d: int) -> str:
            assert isinstance(node, ast.MatchArm)
            head = " | ".join(self.pattern(p) for p in node.patterns)
            if node.guard is not None:
                head += " if " + self.expr(node.guard, d, d * 4 + len(head) + 4, _NO_BRACE, 1)
            head += " => "
            if isinstance(node.body, ast.Block):
                return head + self.block(node.body, d)
            return head + self.expr(node.body, d, d * 4 + len(head), _NO_BRACE)

        subject = self.expr(e.subject, depth, depth * 4 + 6, _NO_BRACE)
        close = e.pos.end - 1 if e.pos.end > 0 else -1
        if not e.arms and not self.has_comments(e.subject.pos.end, close):
            return f"match {subject} {{}}"
        # Every arm ends with a comma, the last one included.
        lines = self.seq(e.arms, depth + 1, arm, close=close, separator=",", last_separator=True)
        return "\n".join([f"match {subject} {{", *lines, _INDENT * depth + "}"])

    def pattern(self, p: ast.Pattern) -> str:
        match p:
            case ast.WildcardPattern():
                return "_"
            case ast.LiteralPattern(value=value):
                return self.flat(value)
            case ast.NamePattern(parts=parts):
                return "::".join(parts)
            case ast.CtorPattern(parts=parts, args=args):
                return "::".join(parts) + "(" + ", ".join(self.pattern(a) for a in args) + ")"
        raise TypeError(f"not a pattern: {type(p).__name__}")
