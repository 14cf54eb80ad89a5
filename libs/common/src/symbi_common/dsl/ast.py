"""The typed syntax tree of the agent DSL.

Every node is a frozen dataclass. Source positions live in ``pos``, which takes no part in
equality, so two trees parsed from differently formatted text compare equal when they mean
the same program (the formatter's round-trip property relies on this). Grouping parentheses,
separator choices (``=`` or ``:``), quoting of capability names and ``not`` versus ``!`` are
not recorded: the formatter prints them canonically.

::

    Program
    ├── Metadata            metadata { key = value ... }
    ├── AgentDef            agent name(params) -> Type { items }
    │   ├── Capabilities
    │   ├── PolicyDef ── PolicyRule
    │   ├── FunctionDef
    │   ├── WithBlock ── WithAttr, Block
    │   └── Stmt            (statements directly in an agent body are accepted)
    ├── PolicyDef
    ├── TypeDef
    ├── FunctionDef
    └── ScheduleDef / ChannelDef / MemoryDef / WebhookDef ── Setting, Section, PolicyDef
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeAlias

__all__ = [
    "NO_POS",
    "AgentDef",
    "AgentItem",
    "AgentRef",
    "ArrayLit",
    "Assign",
    "Binary",
    "Block",
    "BoolLit",
    "Call",
    "Capabilities",
    "Catch",
    "ChannelDef",
    "Comment",
    "CtorPattern",
    "DurationLit",
    "Expr",
    "ExprStmt",
    "Field",
    "For",
    "FunctionDef",
    "If",
    "Index",
    "Item",
    "Lambda",
    "Let",
    "LiteralPattern",
    "Match",
    "MatchArm",
    "Member",
    "MemoryDef",
    "Metadata",
    "NameLit",
    "NamePattern",
    "NamedValue",
    "Node",
    "NumberLit",
    "Param",
    "Path",
    "Pattern",
    "PolicyDef",
    "PolicyRule",
    "Pos",
    "Program",
    "RecordLit",
    "Return",
    "ScheduleDef",
    "Section",
    "SectionDef",
    "SetLit",
    "Setting",
    "Stmt",
    "StringLit",
    "StructLit",
    "StructType",
    "Try",
    "TypeDef",
    "TypeField",
    "TypeRef",
    "Unary",
    "VaultRef",
    "WebhookDef",
    "WildcardPattern",
    "WithAttr",
    "WithBlock",
    "walk",
]


@dataclass(frozen=True, slots=True)
class Pos:
    """A source span: 1-based line and column where it starts and just past where it ends,
    and the matching character offsets (``end`` exclusive)."""

    line: int
    column: int
    end_line: int
    end_column: int
    start: int
    end: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


#: Position of nodes built by code rather than parsed from text.
NO_POS = Pos(0, 0, 0, 0, -1, -1)


@dataclass(frozen=True, slots=True)
class Node:
    """Base of every syntax node."""

    pos: Pos = field(default=NO_POS, compare=False, repr=False, kw_only=True)


# ----------------------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class NameLit(Node):
    """An identifier used as a value: ``x``, ``null``, ``sources``."""

    id: str


@dataclass(frozen=True, slots=True)
class Path(Node):
    """A ``::`` path: ``PrivateData::new``."""

    parts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StringLit(Node):
    """A string literal; ``value`` is the decoded text (escapes resolved)."""

    value: str


@dataclass(frozen=True, slots=True)
class NumberLit(Node):
    """A number; ``raw`` keeps the written form (``1_000``) for the formatter only."""

    value: int | float
    raw: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class BoolLit(Node):
    value: bool


@dataclass(frozen=True, slots=True)
class DurationLit(Node):
    """``30s``, ``5m``, ``6months`` or ``30.seconds``; ``unit`` is the short unit.

    Units: ``ms s m h d w months y``.
    """

    amount: int | float
    unit: str


@dataclass(frozen=True, slots=True)
class VaultRef(Node):
    """A secret reference ``vault://path/to/secret`` (``path`` excludes the scheme)."""

    path: str


@dataclass(frozen=True, slots=True)
class NamedValue(Node):
    """``name = value`` (or ``name: value``) inside a call's arguments or an array."""

    name: str
    value: Expr


@dataclass(frozen=True, slots=True)
class ArrayLit(Node):
    items: tuple[Expr | NamedValue, ...]


@dataclass(frozen=True, slots=True)
class Field(Node):
    """One ``key: value`` of a record or struct literal; ``quoted`` when the key is a string."""

    key: str
    value: Expr
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class RecordLit(Node):
    """``{ key: value, "key": value }``."""

    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class SetLit(Node):
    """``{a, b, c}``."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class StructLit(Node):
    """``TypeName { field: value, ... }``."""

    type_name: str
    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Member(Node):
    """``obj.name``."""

    obj: Expr
    name: str


@dataclass(frozen=True, slots=True)
class Index(Node):
    """``obj[index]``."""

    obj: Expr
    index: Expr


@dataclass(frozen=True, slots=True)
class Call(Node):
    """``func(args)``; a method call is a call of a :class:`Member`."""

    func: Expr
    args: tuple[Expr | NamedValue, ...]


@dataclass(frozen=True, slots=True)
class Unary(Node):
    """``!x`` (``not x`` parses to the same node) or ``-x``."""

    op: str
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary(Node):
    """``left op right`` with op one of ``|| && == != in < > <= >= + - * / %``."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Lambda(Node):
    """``param => body``."""

    param: str
    body: Expr


@dataclass(frozen=True, slots=True)
class AgentRef(Node):
    """``agent name``, a reference to another agent (``agent analyzer.check(x)``)."""

    name: str


@dataclass(frozen=True, slots=True)
class If(Node):
    """``if cond { } else { }``; with ``pattern`` set it is ``if let pattern = cond { }``."""

    cond: Expr
    then: Block
    orelse: Block | If | None = None
    pattern: Pattern | None = None


@dataclass(frozen=True, slots=True)
class MatchArm(Node):
    """``pattern | pattern if guard => body``."""

    patterns: tuple[Pattern, ...]
    body: Block | Expr
    guard: Expr | None = None


@dataclass(frozen=True, slots=True)
class Match(Node):
    subject: Expr
    arms: tuple[MatchArm, ...]


Expr: TypeAlias = (
    NameLit
    | Path
    | StringLit
    | NumberLit
    | BoolLit
    | DurationLit
    | VaultRef
    | ArrayLit
    | RecordLit
    | SetLit
    | StructLit
    | Member
    | Index
    | Call
    | Unary
    | Binary
    | Lambda
    | AgentRef
    | If
    | Match
)


# ----------------------------------------------------------------------------- patterns


@dataclass(frozen=True, slots=True)
class WildcardPattern(Node):
    """``_``."""


@dataclass(frozen=True, slots=True)
class LiteralPattern(Node):
    """A literal to compare with: string, number (possibly negative), boolean, duration."""

    value: StringLit | NumberLit | BoolLit | DurationLit | Unary


@dataclass(frozen=True, slots=True)
class NamePattern(Node):
    """A name (binds, or names a constant such as ``None``) or a ``::`` path."""

    parts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CtorPattern(Node):
    """``Some(x)``, ``Error(e)``, ``Kind::Bad(a, _)``."""

    parts: tuple[str, ...]
    args: tuple[Pattern, ...]


Pattern: TypeAlias = WildcardPattern | LiteralPattern | NamePattern | CtorPattern


# ----------------------------------------------------------------------------- statements


@dataclass(frozen=True, slots=True)
class TypeRef(Node):
    """A type: ``String``, ``Array<Record>``, ``Map<String, Value>``."""

    name: str
    args: tuple[TypeRef, ...] = ()


@dataclass(frozen=True, slots=True)
class Let(Node):
    name: str
    value: Expr
    type: TypeRef | None = None


@dataclass(frozen=True, slots=True)
class Assign(Node):
    """``target op value;`` with op one of ``= += -= *= /= %=``."""

    target: Expr
    op: str
    value: Expr


@dataclass(frozen=True, slots=True)
class Return(Node):
    value: Expr | None = None


@dataclass(frozen=True, slots=True)
class ExprStmt(Node):
    """An expression used as a statement (``f(x);``, or an ``if``/``match`` without ``;``)."""

    expr: Expr


@dataclass(frozen=True, slots=True)
class For(Node):
    var: str
    iterable: Expr
    body: Block


@dataclass(frozen=True, slots=True)
class Catch(Node):
    """``catch (Type name) { }``, ``catch (name) { }`` or ``catch { }``."""

    body: Block
    name: str | None = None
    type_name: str | None = None


@dataclass(frozen=True, slots=True)
class Try(Node):
    body: Block
    catches: tuple[Catch, ...]


Stmt: TypeAlias = Let | Assign | Return | ExprStmt | For | Try


@dataclass(frozen=True, slots=True)
class Block(Node):
    """``{ statements [tail] }``; ``tail`` is the trailing expression giving the value."""

    stmts: tuple[Stmt, ...] = ()
    tail: Expr | None = None


# ----------------------------------------------------------------------------- items


@dataclass(frozen=True, slots=True)
class Param(Node):
    name: str
    type: TypeRef


@dataclass(frozen=True, slots=True)
class Capabilities(Node):
    """``capabilities = ["read", "analyze"]`` (names may also be written bare)."""

    names: tuple[str, ...]
    #: Where each name was written (for the formatter; not part of equality).
    name_pos: tuple[Pos, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class PolicyRule(Node):
    """``kind: action [with modifier] [for scope [on scope_target]] [if condition]``.

    ``kind`` is one of ``allow deny require audit``.
    """

    kind: str
    action: Expr
    condition: Expr | None = None
    modifier: Expr | None = None
    scope: Expr | None = None
    scope_target: Expr | None = None


@dataclass(frozen=True, slots=True)
class PolicyDef(Node):
    name: str
    rules: tuple[PolicyRule, ...]


@dataclass(frozen=True, slots=True)
class FunctionDef(Node):
    name: str
    params: tuple[Param, ...]
    body: Block
    returns: TypeRef | None = None


@dataclass(frozen=True, slots=True)
class WithAttr(Node):
    """``name = value`` of a ``with`` block, or a bare ``name`` flag (``value`` None)."""

    name: str
    value: Expr | None = None


@dataclass(frozen=True, slots=True)
class WithBlock(Node):
    attrs: tuple[WithAttr, ...]
    body: Block


AgentItem: TypeAlias = Capabilities | PolicyDef | FunctionDef | WithBlock | Stmt


@dataclass(frozen=True, slots=True)
class AgentDef(Node):
    """``agent name(params) -> returns { items }``; ``params`` None when no list was written."""

    name: str
    items: tuple[AgentItem, ...]
    params: tuple[Param, ...] | None = None
    returns: TypeRef | None = None


@dataclass(frozen=True, slots=True)
class TypeField(Node):
    name: str
    type: TypeRef


@dataclass(frozen=True, slots=True)
class StructType(Node):
    fields: tuple[TypeField, ...]


@dataclass(frozen=True, slots=True)
class TypeDef(Node):
    """``type Name = Type`` or ``type Name = { field: Type, ... }``."""

    name: str
    type: TypeRef | StructType


@dataclass(frozen=True, slots=True)
class Section(Node):
    """A nested ``key { ... }`` inside a settings block."""

    entries: tuple[Setting | PolicyDef, ...]


@dataclass(frozen=True, slots=True)
class Setting(Node):
    """``key = value``, ``key: value`` or ``key value`` in metadata and settings blocks."""

    key: str
    value: Expr | Section


@dataclass(frozen=True, slots=True)
class Metadata(Node):
    entries: tuple[Setting | PolicyDef, ...]


@dataclass(frozen=True, slots=True)
class SectionDef(Node):
    """Base of the named settings blocks: ``schedule``, ``channel``, ``memory``, ``webhook``."""

    name: str | None
    entries: tuple[Setting | PolicyDef, ...]

    #: The keyword that opens the block.
    KEYWORD = ""


@dataclass(frozen=True, slots=True)
class ScheduleDef(SectionDef):
    KEYWORD = "schedule"


@dataclass(frozen=True, slots=True)
class ChannelDef(SectionDef):
    KEYWORD = "channel"


@dataclass(frozen=True, slots=True)
class MemoryDef(SectionDef):
    KEYWORD = "memory"


@dataclass(frozen=True, slots=True)
class WebhookDef(SectionDef):
    KEYWORD = "webhook"


Item: TypeAlias = (
    Metadata
    | AgentDef
    | PolicyDef
    | TypeDef
    | FunctionDef
    | ScheduleDef
    | ChannelDef
    | MemoryDef
    | WebhookDef
)


@dataclass(frozen=True, slots=True)
class Comment(Node):
    """A ``//``, ``#`` or ``/* */`` comment, verbatim."""

    text: str


@dataclass(frozen=True, slots=True)
class Program(Node):
    """A parsed file. ``comments`` and ``source`` do not take part in equality."""

    items: tuple[Item, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False, repr=False)
    source: str = field(default="", compare=False, repr=False)

    def agents(self) -> tuple[AgentDef, ...]:
        """The agent definitions, in source order."""
        return tuple(i for i in self.items if isinstance(i, AgentDef))


def walk(node: object) -> Iterator[Node]:
    """Every node under ``node`` (itself included), depth first, in source order."""
    stack: list[object] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Node):
            yield current
            names = [f for f in current.__dataclass_fields__ if f not in ("pos", "comments")]
            stack.extend(reversed([getattr(current, f) for f in names]))
        elif isinstance(current, tuple):
            stack.extend(reversed(current))
