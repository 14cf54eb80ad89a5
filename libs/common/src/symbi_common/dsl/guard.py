"""``if`` guards of policy rules → Cedar conditions, or runtime guards, or a refusal.

A guard is translated to a Cedar ``when`` clause when everything it reads is part of the
request the policy engine sees (see ADR 0040):

* ``request.<attr>`` — an attribute of the request context (``request.destination``,
  ``request.hour``, ``request.tags``...); the list is read from the Cedar schema;
* ``principal.<attr>`` — an attribute of the agent itself (``principal.trust``,
  ``principal.capabilities``...);
* literals (strings, integers, booleans; lists of them on the right of ``in``),
  ``== != < <= > >= && || ! in`` and ``contains`` / ``starts_with`` / ``ends_with``.

A guard that reads the agent's own data (``data.source.trusted``, ``user.role``) cannot be
decided by the policy engine, which never sees those values. If it is a pure predicate it
becomes a *runtime guard*: the DSL runtime evaluates it and reports the outcome in the
request's ``tags`` (``dsl-guard:<rule id>=true`` or ``=false``); the Cedar side tests the tag
with the polarity that fails closed. Anything else — secrets, calls with effects, other
agents, blocks — is refused with its position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from symbi_common.cedar import schema_text
from symbi_common.dsl import ast

__all__ = [
    "GUARD_TAG_PREFIX",
    "PURE_FUNCTIONS",
    "PURE_METHODS",
    "GuardError",
    "cedar_string",
    "guard_tag",
    "impurity",
    "schema_attributes",
    "to_cedar",
]

#: Tags the DSL runtime sets in ``context.tags`` to report runtime guard outcomes. The
#: sandbox bridge must strip tags with this prefix from anything an agent supplies itself.
GUARD_TAG_PREFIX = "dsl-guard:"

#: Methods a runtime guard may call (side-effect free).
PURE_METHODS: frozenset[str] = frozenset(
    [
        "contains",
        "starts_with",
        "ends_with",
        "length",
        "len",
        "size",
        "count",
        "is_empty",
        "lower",
        "upper",
        "to_lower",
        "to_upper",
        "trim",
        "keys",
        "values",
        "map",
        "filter",
        "any",
        "all",
        "get",
        "has",
        "includes",
        "matches",
        "sum",
        "min",
        "max",
        "abs",
        "round",
        "floor",
        "ceil",
        "to_string",
        "split",
        "join",
        "index_of",
        "first",
        "last",
    ]
)
#: Functions a runtime guard may call (side-effect free).
PURE_FUNCTIONS: frozenset[str] = frozenset(
    [
        "len",
        "length",
        "count",
        "contains",
        "starts_with",
        "ends_with",
        "is_empty",
        "lower",
        "upper",
        "min",
        "max",
        "abs",
        "now",
        "today",
        "hour",
        "weekday",
        "is_business_hours",
        "any",
        "all",
        "sum",
    ]
)

_CONTEXT_BLOCK = re.compile(r"type\s+RequestContext\s*=\s*\{(.*?)\};", re.S)
_AGENT_BLOCK = re.compile(r"entity\s+Agent\b[^{]*\{(.*?)\};", re.S)
_ATTR = re.compile(r'"?([A-Za-z_][A-Za-z0-9_]*)"?\??\s*:\s*(Long|String|Bool|Set<String>)')


class GuardError(Exception):
    """A guard that cannot be compiled; ``node`` is where."""

    def __init__(self, node: ast.Node, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.node = node
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class SchemaAttributes:
    """Typed attributes a guard may read: request context and the agent (principal)."""

    context: dict[str, str]
    principal: dict[str, str]


@cache
def schema_attributes() -> SchemaAttributes:
    """Attributes read from the shared Cedar schema, so additions there apply here."""
    text = schema_text()
    ctx = _CONTEXT_BLOCK.search(text)
    agent = _AGENT_BLOCK.search(text)
    context = dict(_ATTR.findall(_strip_comments(ctx.group(1)))) if ctx else {}
    principal = dict(_ATTR.findall(_strip_comments(agent.group(1)))) if agent else {}
    return SchemaAttributes(context, principal)


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def cedar_string(value: str) -> str:
    """A Cedar string literal."""
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):04x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def guard_tag(rule_id: str, outcome: bool) -> str:
    """The tag that reports a runtime guard's outcome."""
    return f"{GUARD_TAG_PREFIX}{rule_id}={'true' if outcome else 'false'}"


def impurity(expr: ast.Expr) -> GuardError | None:
    """Why ``expr`` cannot be evaluated as a side-effect-free predicate, or None."""
    # Secrets and other agents first: they are the most specific reason.
    nodes = sorted(ast.walk(expr), key=lambda n: not isinstance(n, ast.VaultRef | ast.AgentRef))
    for node in nodes:
        match node:
            case ast.VaultRef():
                return GuardError(
                    node,
                    "a policy guard cannot read a secret",
                    "decide on request attributes or agent data, never on vault:// values",
                )
            case ast.AgentRef():
                return GuardError(node, "a policy guard cannot call another agent")
            case ast.If() | ast.Match():
                return GuardError(
                    node,
                    "a policy guard cannot contain `if` or `match` blocks",
                    "combine conditions with `&&`, `||` and `!`",
                )
            case ast.Call(func=ast.Member(name=name)) if name not in PURE_METHODS:
                return GuardError(
                    node,
                    f"a policy guard cannot call `.{name}()`: only side-effect-free methods",
                    "allowed methods: " + ", ".join(sorted(PURE_METHODS)),
                )
            case ast.Call(func=ast.NameLit(id=name)) if name not in PURE_FUNCTIONS:
                return GuardError(
                    node,
                    f"a policy guard cannot call `{name}()`: only side-effect-free functions",
                    "allowed functions: " + ", ".join(sorted(PURE_FUNCTIONS)),
                )
            case ast.Call(func=func) if not isinstance(func, ast.Member | ast.NameLit):
                return GuardError(node, "a policy guard can only call named functions and methods")
    return None


# ------------------------------------------------------------------------------ to Cedar


@dataclass(frozen=True, slots=True)
class _Typed:
    text: str
    type: str  # Long | String | Bool | Set<String> | Set<Long> | ...


class _NotExpressible(Exception):
    """The expression reads something the policy engine does not see."""


def to_cedar(expr: ast.Expr, shadowed: frozenset[str] = frozenset()) -> str | None:
    """Cedar condition text for ``expr``, or None when it reads data Cedar does not see.

    ``shadowed`` are names that the agent defines itself (its parameters): ``request`` or
    ``principal`` among them are agent data, not the request. Raises GuardError when the
    guard reads request attributes but in a way Cedar cannot type (``request.hour == "x"``).
    """
    try:
        typed = _Translator(schema_attributes(), shadowed).expr(expr)
    except _NotExpressible:
        return None
    if typed.type != "Bool":
        raise GuardError(expr, f"a guard must be true or false; this is a {typed.type}")
    return typed.text


class _Translator:
    def __init__(self, attrs: SchemaAttributes, shadowed: frozenset[str]) -> None:
        self.attrs = attrs
        self.shadowed = shadowed

    def expr(self, e: ast.Expr) -> _Typed:
        match e:
            case ast.BoolLit(value=value):
                return _Typed("true" if value else "false", "Bool")
            case ast.StringLit(value=value):
                return _Typed(cedar_string(value), "String")
            case ast.NumberLit(value=value) if isinstance(value, int):
                if not -(2**63) <= value < 2**63:
                    raise GuardError(e, "number out of the 64-bit range Cedar supports")
                return _Typed(str(value), "Long")
            case ast.Unary(op="-", operand=ast.NumberLit(value=value)) if isinstance(value, int):
                return _Typed(f"-{value}", "Long")
            case ast.Member():
                return self.attribute(e)
            case ast.Unary(op="!", operand=operand):
                inner = self.expect(operand, "Bool")
                return _Typed(f"!({inner})", "Bool")
            case ast.Binary(op="&&" | "||" as op, left=left, right=right):
                return _Typed(
                    f"({self.expect(left, 'Bool')} {op} {self.expect(right, 'Bool')})", "Bool"
                )
            case ast.Binary(op="in", left=left, right=right):
                return self.membership(e, left, right)
            case ast.Binary(op="==" | "!=" as op, left=left, right=right):
                return self.equality(e, op, left, right)
            case ast.Binary(op="<" | "<=" | ">" | ">=" as op, left=left, right=right):
                lhs, rhs = self.expr(left), self.expr(right)
                if lhs.type != "Long" or rhs.type != "Long":
                    if self.has_request_refs(e):
                        raise GuardError(e, f"Cedar compares only integers with `{op}`")
                    raise _NotExpressible
                return self.guarded(e, f"{lhs.text} {op} {rhs.text}")
            case ast.Call(func=ast.Member(obj=obj, name=name), args=(arg,)) if name in (
                "contains",
                "starts_with",
                "ends_with",
            ) and not isinstance(arg, ast.NamedValue):
                return self.method(e, obj, name, arg)
            case ast.ArrayLit(items=items):
                parts = [self.expr(i) for i in items if not isinstance(i, ast.NamedValue)]
                if len(parts) != len(items) or not parts:
                    raise _NotExpressible
                kinds = {p.type for p in parts}
                if len(kinds) != 1:
                    raise GuardError(e, "a list in a guard must hold values of one type")
                return _Typed("[" + ", ".join(p.text for p in parts) + "]", f"Set<{kinds.pop()}>")
        raise _NotExpressible

    # -------------------------------------------------------------- request attributes
    def reference(self, e: ast.Expr) -> tuple[str, str, str] | None:
        """(cedar var, attribute, type) for ``request.x`` / ``principal.x``, else None."""
        if not isinstance(e, ast.Member) or not isinstance(e.obj, ast.NameLit):
            return None
        root = e.obj.id
        if root in self.shadowed:
            return None
        if root == "request" and e.name in self.attrs.context:
            return "context", e.name, self.attrs.context[e.name]
        if root == "principal" and e.name in self.attrs.principal:
            return "principal", e.name, self.attrs.principal[e.name]
        return None

    def attribute(self, e: ast.Member) -> _Typed:
        ref = self.reference(e)
        if ref is None:
            raise _NotExpressible
        var, name, type_ = ref
        return _Typed(f"{var}.{name}", type_)

    def has_request_refs(self, e: ast.Expr) -> bool:
        return any(self.reference(n) is not None for n in ast.walk(e) if isinstance(n, ast.Member))

    def guarded(self, e: ast.Expr, text: str) -> _Typed:
        """``text`` preceded by ``has`` tests for every optional attribute it reads."""
        tests: list[str] = []
        for node in ast.walk(e):
            if isinstance(node, ast.Member):
                ref = self.reference(node)
                if ref is not None:
                    test = f"{ref[0]} has {ref[1]}"
                    if test not in tests:
                        tests.append(test)
        if not tests:
            return _Typed(text, "Bool")
        return _Typed("(" + " && ".join([*tests, text]) + ")", "Bool")

    def expect(self, e: ast.Expr, type_: str) -> str:
        typed = self.expr(e)
        if typed.type != type_:
            raise GuardError(e, f"expected a {type_} here, found a {typed.type}")
        return typed.text

    def equality(self, e: ast.Expr, op: str, left: ast.Expr, right: ast.Expr) -> _Typed:
        lhs, rhs = self.expr(left), self.expr(right)
        if lhs.type != rhs.type:
            raise GuardError(e, f"cannot compare a {lhs.type} with a {rhs.type}")
        return self.guarded(e, f"{lhs.text} {op} {rhs.text}")

    def membership(self, e: ast.Expr, left: ast.Expr, right: ast.Expr) -> _Typed:
        item, collection = self.expr(left), self.expr(right)
        if collection.type != f"Set<{item.type}>":
            raise GuardError(e, f"`in` needs a list of {item.type} values on its right")
        return self.guarded(e, f"{collection.text}.contains({item.text})")

    def method(self, e: ast.Expr, obj: ast.Expr, name: str, arg: ast.Expr) -> _Typed:
        target, value = self.expr(obj), self.expr(arg)
        if name == "contains" and target.type.startswith("Set<"):
            if target.type != f"Set<{value.type}>":
                raise GuardError(e, f"this set holds {target.type[4:-1]} values")
            return self.guarded(e, f"{target.text}.contains({value.text})")
        if target.type != "String" or not isinstance(arg, ast.StringLit):
            if self.has_request_refs(e):
                raise GuardError(e, f"`.{name}()` needs a string attribute and a string literal")
            raise _NotExpressible
        # Cedar's `like` pattern: `*` is the wildcard, a literal star is `\*`.
        literal = cedar_string(arg.value)[1:-1].replace("*", "\\*")
        pattern = {
            "contains": f"*{literal}*",
            "starts_with": f"{literal}*",
            "ends_with": f"*{literal}",
        }[name]
        return self.guarded(e, f'{target.text} like "{pattern}"')
