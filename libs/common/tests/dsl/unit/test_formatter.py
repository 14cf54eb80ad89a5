"""The canonical formatter: exact layout, comments kept, and the round-trip property."""

from __future__ import annotations

import keyword
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbi_common.dsl import ast, format_program, format_source, parse
from symbi_common.dsl.grammar import KEYWORDS, UNIT_WORDS


def fmt(source: str) -> str:
    return format_program(parse(source))


def test_canonical_layout() -> None:
    source = """metadata { version: "1.0", tags: ["a","b"], }
agent  a( x : int )->Out{capabilities:[read,"write"]
policy p{allow:read(x) if x.ok==true deny:["a","b"]}
with memory="ephemeral",sandbox=tier1{let y=not x.ok;if y{return 30.seconds;}else{f(a,limit:1);}}}"""
    assert (
        fmt(source)
        == """metadata {
    version = "1.0"
    tags = ["a", "b"]
}

agent a(x: int) -> Out {
    capabilities = ["read", "write"]
    policy p {
        allow: read(x) if x.ok == true
        deny: ["a", "b"]
    }
    with memory = "ephemeral", sandbox = tier1 {
        let y = !x.ok;
        if y {
            return 30s;
        } else {
            f(a, limit: 1);
        }
    }
}
"""
    )


def test_long_constructs_break_one_element_per_line() -> None:
    source = (
        'agent a { with { audit_log("operation_started", { "operation": "data_processing", '
        '"user": user.id, "timestamp": now() }); } }'
    )
    assert (
        fmt(source)
        == """agent a {
    with {
        audit_log("operation_started", {
            "operation": "data_processing",
            "user": user.id,
            "timestamp": now()
        });
    }
}
"""
    )


def test_long_with_attributes_and_rules_break() -> None:
    source = (
        'agent a { policy p { allow: ["read_data", "validate_schema", "quality_check", "more"] '
        "if data.source.trusted == true && data.records.length <= 100000 }\n"
        'with memory = "ephemeral", privacy = "high", security = "high", sandbox = "Tier1", '
        "timeout = 30000 { } }"
    )
    assert (
        fmt(source)
        == """agent a {
    policy p {
        allow: ["read_data", "validate_schema", "quality_check", "more"]
            if data.source.trusted == true && data.records.length <= 100000
    }
    with
        memory = "ephemeral",
        privacy = "high",
        security = "high",
        sandbox = "Tier1",
        timeout = 30000
    {}
}
"""
    )


def test_comments_and_blank_lines_are_kept() -> None:
    source = """// header

# about a
agent a {
    capabilities = ["x"]  // trailing


    /* block
       comment */
    with {
        let x = [
            1,  // one
            2
        ];
        f(x); # end
        // last
    }
}
"""
    out = fmt(source)
    assert (
        out
        == """// header

# about a
agent a {
    capabilities = ["x"]  // trailing

    /* block
       comment */
    with {
        let x = [
            1,  // one
            2
        ];
        f(x);  # end
        // last
    }
}
"""
    )
    assert fmt(out) == out


def test_parentheses_only_where_needed() -> None:
    out = fmt("agent a { with { x = (a + b) * (c - (d - e)); y = ((a * b)) + c; z = -(a.b); } }")
    assert "x = (a + b) * (c - (d - e));" in out
    assert "y = a * b + c;" in out
    assert "z = -a.b;" in out


def test_brace_literals_in_conditions_and_statements_get_parentheses() -> None:
    tree = ast.Program(
        (
            ast.AgentDef(
                "a",
                (
                    ast.WithBlock(
                        (),
                        ast.Block(
                            (
                                ast.ExprStmt(
                                    ast.If(
                                        ast.Binary("==", ast.NameLit("x"), ast.RecordLit(())),
                                        ast.Block(),
                                    )
                                ),
                                ast.ExprStmt(ast.Member(ast.RecordLit(()), "k")),
                            ),
                            ast.Match(ast.NameLit("x"), ()),
                        ),
                    ),
                ),
            ),
        )
    )
    out = format_program(tree)
    assert "if (x == {}) {}" in out
    assert "({}.k);" in out
    assert "(match x {})" in out
    assert parse(out) == tree


def test_format_source_refuses_text_that_does_not_parse() -> None:
    from symbi_common.dsl import DslSyntaxError

    with pytest.raises(DslSyntaxError):
        format_source("agent {")


# ------------------------------------------------------------------------------ round trip

_RESERVED = KEYWORDS | set(UNIT_WORDS) | {"null", "_"}
_idents = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda s: s not in _RESERVED and not keyword.iskeyword(s)
)
_type_names = st.from_regex(r"[A-Z][A-Za-z0-9]{0,6}", fullmatch=True)
_text = st.text(alphabet=st.sampled_from([*list(string.printable), "é", "😀", "\x01"]), max_size=12)


def _literals() -> st.SearchStrategy[ast.Expr]:
    return st.one_of(
        st.builds(ast.StringLit, _text),
        st.builds(ast.NumberLit, st.integers(0, 10**12)),
        st.builds(
            ast.NumberLit,
            st.floats(0, 1e6, allow_nan=False, allow_infinity=False).filter(
                lambda f: "e" not in repr(f)
            ),
        ),
        st.builds(ast.BoolLit, st.booleans()),
        st.builds(
            ast.DurationLit,
            st.integers(0, 10_000),
            st.sampled_from(["ms", "s", "m", "h", "d", "w", "months", "y"]),
        ),
        st.builds(ast.VaultRef, st.from_regex(r"[a-z]{1,5}(/[a-z_]{1,5}){0,2}", fullmatch=True)),
        st.builds(ast.NameLit, _idents),
        st.builds(ast.Path, st.lists(_idents, min_size=2, max_size=3).map(tuple)),
        st.builds(ast.AgentRef, _idents),
    )


def _fields(children: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[tuple[ast.Field, ...]]:
    plain = st.builds(ast.Field, _idents | st.just("agent"), children, st.just(False))
    quoted = st.builds(ast.Field, _text, children, st.just(True))
    return st.lists(plain | quoted, max_size=3).map(tuple)


def _args(
    children: st.SearchStrategy[ast.Expr],
) -> st.SearchStrategy[tuple[ast.Expr | ast.NamedValue, ...]]:
    return st.lists(children | st.builds(ast.NamedValue, _idents, children), max_size=3).map(tuple)


def _compound(children: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
    ops = ["||", "&&", "==", "!=", "in", "<", ">", "<=", ">=", "+", "-", "*", "/", "%"]
    member_names = _idents | st.sampled_from(["type", "agent", "match", "if"])
    return st.one_of(
        st.builds(ast.Binary, st.sampled_from(ops), children, children),
        st.builds(ast.Unary, st.sampled_from(["!", "-"]), children),
        st.builds(
            ast.Member, children.filter(lambda e: not isinstance(e, ast.NumberLit)), member_names
        ),
        st.builds(ast.Index, children, children),
        st.builds(ast.Call, children, _args(children)),
        st.builds(ast.ArrayLit, _args(children)),
        st.builds(ast.RecordLit, _fields(children)),
        st.builds(ast.SetLit, st.lists(children, min_size=1, max_size=3).map(tuple)),
        st.builds(ast.StructLit, _type_names, _fields(children)),
        st.builds(ast.Lambda, _idents, children),
        st.builds(
            ast.If,
            children,
            st.builds(ast.Block, st.just(()), children),
            st.none() | st.builds(ast.Block, st.just(()), children),
        ),
    )


exprs = st.recursive(_literals(), _compound, max_leaves=12)

_patterns = st.one_of(
    st.builds(ast.WildcardPattern),
    st.builds(ast.LiteralPattern, st.builds(ast.StringLit, _text)),
    st.builds(ast.LiteralPattern, st.builds(ast.NumberLit, st.integers(0, 99))),
    st.builds(ast.NamePattern, st.lists(_idents, min_size=1, max_size=2).map(tuple)),
    st.builds(
        ast.CtorPattern,
        st.lists(_type_names, min_size=1, max_size=2).map(tuple),
        st.lists(st.builds(ast.NamePattern, _idents.map(lambda n: (n,))), max_size=2).map(tuple),
    ),
)


def _stmts(depth: int) -> st.SearchStrategy[ast.Stmt]:
    block = _blocks(depth - 1) if depth > 0 else st.just(ast.Block())
    targets = st.one_of(
        st.builds(ast.NameLit, _idents),
        st.builds(ast.Member, exprs, _idents),
        st.builds(ast.Index, exprs, exprs),
    )
    options = [
        st.builds(ast.Let, _idents, exprs, st.none() | st.builds(ast.TypeRef, _type_names)),
        st.builds(ast.Assign, targets, st.sampled_from(["=", "+=", "-=", "*=", "/=", "%="]), exprs),
        st.builds(ast.Return, st.none() | exprs),
        st.builds(ast.ExprStmt, exprs),
        st.builds(ast.For, _idents, exprs, block),
        st.builds(
            ast.Try,
            block,
            st.lists(
                st.one_of(
                    st.builds(ast.Catch, block),
                    st.builds(ast.Catch, block, _idents),
                    st.builds(ast.Catch, block, _idents, _type_names),
                ),
                min_size=1,
                max_size=2,
            ).map(tuple),
        ),
        st.builds(
            ast.ExprStmt, st.builds(ast.If, exprs, block, st.none() | block, st.none() | _patterns)
        ),
        st.builds(
            ast.ExprStmt,
            st.builds(
                ast.Match,
                exprs,
                st.lists(
                    st.builds(
                        ast.MatchArm,
                        st.lists(_patterns, min_size=1, max_size=2).map(tuple),
                        block | exprs,
                        st.none() | exprs,
                    ),
                    max_size=3,
                ).map(tuple),
            ),
        ),
    ]
    return st.one_of(options)


def _blocks(depth: int) -> st.SearchStrategy[ast.Block]:
    return st.builds(ast.Block, st.lists(_stmts(depth), max_size=3).map(tuple), st.none() | exprs)


_settings_values = st.deferred(
    lambda: (
        exprs
        | st.builds(
            ast.Section,
            st.lists(st.builds(ast.Setting, _idents, _settings_values), max_size=2).map(tuple),
        )
    )
)
_settings = st.lists(st.builds(ast.Setting, _idents, _settings_values), max_size=3).map(tuple)
_types = st.builds(
    ast.TypeRef, _type_names, st.lists(st.builds(ast.TypeRef, _type_names), max_size=2).map(tuple)
)
_params = st.lists(st.builds(ast.Param, _idents, _types), max_size=3).map(tuple)
_rules = st.builds(
    ast.PolicyRule,
    st.sampled_from(["allow", "deny", "require", "audit"]),
    exprs,
    st.none() | exprs,
    st.none() | exprs,
    st.none() | exprs,
).flatmap(
    lambda r: st.builds(
        lambda target: ast.PolicyRule(
            r.kind, r.action, r.condition, r.modifier, r.scope, target if r.scope else None
        ),
        st.none() | exprs,
    )
)
_policies = st.builds(ast.PolicyDef, _idents, st.lists(_rules, max_size=3).map(tuple))
_agent_items = st.one_of(
    st.builds(ast.Capabilities, st.lists(_text, max_size=3).map(tuple)),
    _policies,
    st.builds(ast.FunctionDef, _idents, _params, _blocks(1), st.none() | _types),
    st.builds(
        ast.WithBlock,
        st.lists(st.builds(ast.WithAttr, _idents, st.none() | exprs), max_size=3).map(tuple),
        _blocks(1),
    ),
    _stmts(1),
)
items = st.one_of(
    st.builds(ast.Metadata, _settings),
    st.builds(
        ast.AgentDef,
        _idents,
        st.lists(_agent_items, max_size=4).map(tuple),
        st.none() | _params,
        st.none() | _types,
    ),
    _policies,
    st.builds(
        ast.TypeDef,
        _type_names,
        _types
        | st.builds(
            ast.StructType,
            st.lists(st.builds(ast.TypeField, _idents, _types), max_size=3).map(tuple),
        ),
    ),
    st.builds(ast.FunctionDef, _idents, _params, _blocks(1), st.none() | _types),
    st.builds(ast.ScheduleDef, st.none() | _idents, _settings),
    st.builds(ast.ChannelDef, _idents, _settings),
    st.builds(ast.MemoryDef, _idents, _settings),
    st.builds(ast.WebhookDef, _idents, _settings),
)
programs = st.builds(ast.Program, st.lists(items, max_size=3).map(tuple))


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
@given(programs)
def test_round_trip_over_generated_programs(program: ast.Program) -> None:
    text = format_program(program)
    parsed = parse(text)
    # parse(format(parse(x))) == parse(x), with x the printed generated program.
    again = parse(format_program(parsed))
    assert again == parsed
    # The generated tree itself survives printing (it uses only canonical forms).
    assert parsed == program, text
    # Formatting is idempotent.
    assert format_program(again) == format_program(parsed)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
@given(programs)
def test_checking_any_program_never_raises(program: ast.Program) -> None:
    # Whatever a (well-formed) file says, validation and policy compilation answer with
    # diagnostics, never with an exception.
    from symbi_common.dsl import Diagnostic, check_source

    for diagnostic in check_source(format_program(program), file="generated.symbi"):
        assert isinstance(diagnostic, Diagnostic)
        assert diagnostic.message
