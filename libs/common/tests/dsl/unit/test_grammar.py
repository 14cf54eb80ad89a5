"""Every construct of the language parses to the tree it means; bad text gets a clear error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symbi_common.dsl import DslSyntaxError, ast, parse, parse_expression, parse_rule
from symbi_common.errors import InvalidArgument


def body_of(source: str) -> ast.Block:
    """The block of the single `with` in a single agent."""
    agent = parse(source).agents()[0]
    (block,) = [i for i in agent.items if isinstance(i, ast.WithBlock)]
    return block.body


def stmts(code: str) -> tuple[ast.Stmt, ...]:
    return body_of("agent a { with { " + code + " } }").stmts


def expr(code: str) -> ast.Expr:
    return parse_expression(code)


N = ast.NameLit
S = ast.StringLit


def num(v: int | float) -> ast.NumberLit:
    return ast.NumberLit(v)


# ------------------------------------------------------------------------------ top level


def test_metadata_accepts_both_separators_and_trailing_commas() -> None:
    program = parse(
        'metadata {\n  version = "1.0"\n  author: "x",\n  tags = ["a", "b"]\n  count: 3; }'
    )
    (meta,) = program.items
    assert isinstance(meta, ast.Metadata)
    assert [e.key for e in meta.entries] == ["version", "author", "tags", "count"]
    assert meta.entries[2] == ast.Setting("tags", ast.ArrayLit((S("a"), S("b"))))


def test_agent_header_forms() -> None:
    a1, a2, a3 = parse(
        "agent a {}\nagent b() -> Result {}\n"
        "agent c(x: int, m: Map<String, Array<Value>>,) -> Maybe<Alert> {}"
    ).agents()
    assert a1.params is None
    assert a1.returns is None
    assert a2.params == ()
    assert a2.returns == ast.TypeRef("Result")
    assert a3.params == (
        ast.Param("x", ast.TypeRef("int")),
        ast.Param(
            "m",
            ast.TypeRef(
                "Map", (ast.TypeRef("String"), ast.TypeRef("Array", (ast.TypeRef("Value"),)))
            ),
        ),
    )
    assert a3.returns == ast.TypeRef("Maybe", (ast.TypeRef("Alert"),))


def test_agent_items() -> None:
    (agent,) = parse(
        """agent a(input: Data) -> Out {
            capabilities = ["read", analyze]
            policy p { allow: read(input) if true  deny: write(any) }
            function helper(x: int) -> int { return x + 1; }
            with memory = "ephemeral", sandbox = "tier1", flag { result = process(input); return result; }
            let direct = 1;
        }"""
    ).agents()
    kinds = [type(i).__name__ for i in agent.items]
    assert kinds == ["Capabilities", "PolicyDef", "FunctionDef", "WithBlock", "Let"]
    caps, policy, func, with_block, _ = agent.items
    assert isinstance(caps, ast.Capabilities)
    assert caps.names == ("read", "analyze")
    assert isinstance(policy, ast.PolicyDef)
    assert [r.kind for r in policy.rules] == ["allow", "deny"]
    assert isinstance(func, ast.FunctionDef)
    assert func.returns == ast.TypeRef("int")
    assert isinstance(with_block, ast.WithBlock)
    assert [(a.name, a.value) for a in with_block.attrs] == [
        ("memory", S("ephemeral")),
        ("sandbox", S("tier1")),
        ("flag", None),
    ]


def test_capabilities_with_colon_and_comments() -> None:
    (agent,) = parse("agent a {\n capabilities: [\n  x, // one\n  y  # two\n ]\n}").agents()
    assert agent.items[0] == ast.Capabilities(("x", "y"))


def test_policy_rule_clauses() -> None:
    rule = parse_rule("audit: all_operations with digital_signature")
    assert rule == ast.PolicyRule("audit", N("all_operations"), modifier=N("digital_signature"))
    rule = parse_rule('require: approval("supervisor") for operations on sensitive_data')
    assert rule.scope == N("operations")
    assert rule.scope_target == N("sensitive_data")
    rule = parse_rule('allow: ["a", "b"]\n    if x.y == true && n <= 10')
    assert rule.action == ast.ArrayLit((S("a"), S("b")))
    assert isinstance(rule.condition, ast.Binary)
    assert rule.condition.op == "&&"


def test_require_list_with_settings() -> None:
    rule = parse_rule('require: [user.clearance >= "x", audit_trail = true]')
    assert isinstance(rule.action, ast.ArrayLit)
    assert rule.action.items[1] == ast.NamedValue("audit_trail", ast.BoolLit(True))


def test_type_definitions() -> None:
    struct, alias = parse("type FileInfo = { path: String, size: int, }\ntype Id = String;").items
    assert struct == ast.TypeDef(
        "FileInfo",
        ast.StructType(
            (
                ast.TypeField("path", ast.TypeRef("String")),
                ast.TypeField("size", ast.TypeRef("int")),
            )
        ),
    )
    assert alias == ast.TypeDef("Id", ast.TypeRef("String"))


def test_settings_blocks_with_and_without_separators() -> None:
    program = parse(
        """memory store {
            store     markdown
            path      "data/x"
            retention 730d
            search { vector_weight 0.5 keyword_weight: 0.5 }
        }
        webhook hook { agent handler  secret "vault://w/s"  filter { json_path "$.a" } }
        schedule { name: "daily" cron: "0 9 * * *" policy { require_approval: false max_runtime: "5m" } }
        channel chat { topic = "alerts" policy guard { deny: send("x") } }"""
    )
    memory, webhook, schedule, channel = program.items
    assert isinstance(memory, ast.MemoryDef)
    assert memory.name == "store"
    assert memory.entries[0] == ast.Setting("store", N("markdown"))
    assert memory.entries[2] == ast.Setting("retention", ast.DurationLit(730, "d"))
    assert memory.entries[3] == ast.Setting(
        "search",
        ast.Section(
            (ast.Setting("vector_weight", num(0.5)), ast.Setting("keyword_weight", num(0.5)))
        ),
    )
    assert isinstance(webhook, ast.WebhookDef)
    assert webhook.entries[0] == ast.Setting("agent", N("handler"))
    assert isinstance(schedule, ast.ScheduleDef)
    assert schedule.name is None
    policy = schedule.entries[2]
    assert isinstance(policy, ast.Setting)
    assert policy.key == "policy"
    assert isinstance(channel, ast.ChannelDef)
    assert isinstance(channel.entries[1], ast.PolicyDef)


# ------------------------------------------------------------------------------ statements


def test_let_with_and_without_type() -> None:
    a, b = stmts('let x = 1; let m: Map<String, String> = { "k": "v" };')
    assert a == ast.Let("x", num(1))
    assert b == ast.Let(
        "m",
        ast.RecordLit((ast.Field("k", S("v"), quoted=True),)),
        ast.TypeRef("Map", (ast.TypeRef("String"), ast.TypeRef("String"))),
    )


@pytest.mark.parametrize("op", ["=", "+=", "-=", "*=", "/=", "%="])
def test_assignment_operators(op: str) -> None:
    (s,) = stmts(f"report.items[0] {op} 1;")
    assert s == ast.Assign(ast.Index(ast.Member(N("report"), "items"), num(0)), op, num(1))


def test_return_forms_and_expression_statements() -> None:
    a, b, c = stmts("return; return f(x); g();")
    assert a == ast.Return()
    assert b == ast.Return(ast.Call(N("f"), (N("x"),)))
    assert c == ast.ExprStmt(ast.Call(N("g"), ()))


def test_if_else_chain_and_if_let() -> None:
    (s,) = stmts("if a { x(); } else if let Some(v) = b { y(); } else { z(); }")
    assert isinstance(s, ast.ExprStmt)
    assert isinstance(s.expr, ast.If)
    first = s.expr
    assert first.cond == N("a")
    second = first.orelse
    assert isinstance(second, ast.If)
    assert second.pattern == ast.CtorPattern(("Some",), (ast.NamePattern(("v",)),))
    assert isinstance(second.orelse, ast.Block)


def test_if_condition_is_never_a_struct_literal() -> None:
    (s,) = stmts("if valid { go(); }")
    assert isinstance(s, ast.ExprStmt)
    assert isinstance(s.expr, ast.If)
    assert s.expr.cond == N("valid")


def test_if_as_expression_with_trailing_values() -> None:
    (s,) = stmts("q = if total > 0 { a / total } else { 0.0 };")
    assert isinstance(s, ast.Assign)
    assert isinstance(s.value, ast.If)
    assert s.value.then.tail == ast.Binary("/", N("a"), N("total"))
    assert isinstance(s.value.orelse, ast.Block)
    assert s.value.orelse.tail == num(0.0)


def test_for_match_and_arms() -> None:
    (loop,) = stmts(
        'for t in tasks { match t { "a" | "b" => { x(); }, n if n > 1 => y(n), Some(_) => z, _ => {} } }'
    )
    assert isinstance(loop, ast.For)
    assert loop.var == "t"
    assert loop.iterable == N("tasks")
    (m,) = loop.body.stmts
    assert isinstance(m, ast.ExprStmt)
    assert isinstance(m.expr, ast.Match)
    arms = m.expr.arms
    assert arms[0].patterns == (
        ast.LiteralPattern(S("a")),
        ast.LiteralPattern(S("b")),
    )
    assert arms[1].guard == ast.Binary(">", N("n"), num(1))
    assert arms[1].body == ast.Call(N("y"), (N("n"),))
    assert arms[2].patterns == (ast.CtorPattern(("Some",), (ast.WildcardPattern(),)),)
    assert arms[3].patterns == (ast.WildcardPattern(),)
    assert arms[3].body == ast.Block()


def test_try_with_several_catch_forms() -> None:
    (t,) = stmts("try { a(); } catch (ValidationError e) { b(); } catch (err) { } catch { }")
    assert isinstance(t, ast.Try)
    assert [(c.type_name, c.name) for c in t.catches] == [
        ("ValidationError", "e"),
        (None, "err"),
        (None, None),
    ]


def test_block_trailing_expression() -> None:
    (agent,) = parse("agent a { function f() -> int { let x = 1; x + 1 } }").agents()
    func = agent.items[0]
    assert isinstance(func, ast.FunctionDef)
    assert func.body.tail == ast.Binary("+", N("x"), num(1))


# ------------------------------------------------------------------------------ expressions


@pytest.mark.parametrize(
    ("code", "tree"),
    [
        ("a || b && c", ast.Binary("||", N("a"), ast.Binary("&&", N("b"), N("c")))),
        ("a == b in c", ast.Binary("in", ast.Binary("==", N("a"), N("b")), N("c"))),
        (
            "a < b + c * d",
            ast.Binary("<", N("a"), ast.Binary("+", N("b"), ast.Binary("*", N("c"), N("d")))),
        ),
        ("a - b - c", ast.Binary("-", ast.Binary("-", N("a"), N("b")), N("c"))),
        ("!a.b", ast.Unary("!", ast.Member(N("a"), "b"))),
        ("not a", ast.Unary("!", N("a"))),
        ("-x % 2", ast.Binary("%", ast.Unary("-", N("x")), num(2))),
        ("(a || b) && c", ast.Binary("&&", ast.Binary("||", N("a"), N("b")), N("c"))),
    ],
)
def test_precedence(code: str, tree: ast.Expr) -> None:
    assert expr(code) == tree


def test_calls_members_index_and_named_arguments() -> None:
    e = expr('memory_search(store, q, limit: 10, mode = "x").items[0].id')
    call = ast.Call(
        N("memory_search"),
        (
            N("store"),
            N("q"),
            ast.NamedValue("limit", num(10)),
            ast.NamedValue("mode", S("x")),
        ),
    )
    assert e == ast.Member(ast.Index(ast.Member(call, "items"), num(0)), "id")


def test_literals() -> None:
    assert expr('"a\\n\\"b\\" \\u{1F600}"') == S('a\n"b" 😀')
    assert expr("1_000") == num(1000)
    assert expr("3.14") == num(3.14)
    assert expr("true") == ast.BoolLit(True)
    assert expr("vault://api/keys") == ast.VaultRef("api/keys")
    assert expr("vault://api/keys[k]") == ast.Index(ast.VaultRef("api/keys"), N("k"))


@pytest.mark.parametrize(
    ("code", "amount", "unit"),
    [
        ("30s", 30, "s"),
        ("5m", 5, "m"),
        ("2h", 2, "h"),
        ("7d", 7, "d"),
        ("1w", 1, "w"),
        ("6months", 6, "months"),
        ("1y", 1, "y"),
        ("3000ms", 3000, "ms"),
        ("30.seconds", 30, "s"),
        ("500.milliseconds", 500, "ms"),
        ("2.hours", 2, "h"),
    ],
)
def test_durations(code: str, amount: int, unit: str) -> None:
    assert expr(code) == ast.DurationLit(amount, unit)


def test_collections_records_sets_and_structs() -> None:
    assert expr("[1, 2,]") == ast.ArrayLit((num(1), num(2)))
    assert expr('{ "a": 1, b: 2 }') == ast.RecordLit(
        (ast.Field("a", num(1), quoted=True), ast.Field("b", num(2)))
    )
    assert expr('{"x", "y"}') == ast.SetLit((S("x"), S("y")))
    assert expr("{}") == ast.RecordLit(())
    assert expr("Event { type: e.type, agent: a }") == ast.StructLit(
        "Event", (ast.Field("type", ast.Member(N("e"), "type")), ast.Field("agent", N("a")))
    )


def test_lambdas_paths_and_agent_references() -> None:
    assert expr("xs.map(s => s.endpoint)") == ast.Call(
        ast.Member(N("xs"), "map"), (ast.Lambda("s", ast.Member(N("s"), "endpoint")),)
    )
    assert expr("PrivateData::new(v, epsilon=1.0)") == ast.Call(
        ast.Path(("PrivateData", "new")), (N("v"), ast.NamedValue("epsilon", num(1.0)))
    )
    assert expr("agent analyzer.check(t)") == ast.Call(
        ast.Member(ast.AgentRef("analyzer"), "check"), (N("t"),)
    )


def test_keywords_are_names_where_no_keyword_fits() -> None:
    program = parse(
        'webhook w { agent handler type "x" }\n'
        "agent a(type: String) { with { let t = event.type; let m = { type: 1 }; } }"
    )
    webhook = program.items[0]
    assert isinstance(webhook, ast.WebhookDef)
    assert [e.key for e in webhook.entries if isinstance(e, ast.Setting)] == ["agent", "type"]


def test_comments_of_all_styles_are_collected() -> None:
    program = parse("// one\n# two\n/* three\n four */\nagent a {} // five\n")
    assert [c.text for c in program.comments] == [
        "// one",
        "# two",
        "/* three\n four */",
        "// five",
    ]
    assert program.comments[3].pos.line == 5


def test_positions_are_recorded() -> None:
    program = parse("\n\nagent a {\n  with {\n    foo(1);\n  }\n}\n")
    (agent,) = program.agents()
    assert (agent.pos.line, agent.pos.column) == (3, 1)
    block = agent.items[0]
    assert isinstance(block, ast.WithBlock)
    stmt = block.body.stmts[0]
    assert (stmt.pos.line, stmt.pos.column, stmt.pos.end_line) == (5, 5, 5)


def test_equality_ignores_positions() -> None:
    assert parse("agent a { with { f(1); } }") == parse("agent a {\n with {\n\n  f( 1 ) ;\n }\n}")


# ------------------------------------------------------------------------------ errors


def diagnostics(source: str) -> list[tuple[int, int, str, str]]:
    with pytest.raises(DslSyntaxError) as info:
        parse(source, file="x.symbi")
    assert isinstance(info.value, InvalidArgument)
    return [(d.line, d.column, d.message, d.hint) for d in info.value.diagnostics]


def test_missing_semicolon_points_at_the_statement() -> None:
    ((line, col, message, hint),) = diagnostics("agent a {\n with {\n  let x = 1\n  f(x);\n }\n}")
    assert (line, col) == (3, 12)
    assert "missing `;`" in message
    assert "line 4" in message
    assert "end with `;`" in hint


def test_unclosed_brace_names_where_it_opened() -> None:
    ((_line, _col, message, hint),) = diagnostics("agent a {\n  with {\n    f(1);\n")
    assert "end of file" in message
    assert "line 2, column 8" in hint


def test_mismatched_bracket() -> None:
    ((_, _, message, hint),) = diagnostics("agent a { with { f(a]; } }")
    assert "unexpected `]`" in message
    assert "`(` opened at line 1, column 19" in hint


@pytest.mark.parametrize(
    ("source", "hint"),
    [
        ("agent a { with { while (x) { f(); } } }", "no `while` loop"),
        ("agent a { with { f(a and b); } }", "`&&` and `||`"),
        ("agent a { with { if a = b { } } }", "compare with `==`"),
        ("agent a { policy p { permit: x } }", "`allow:`, `deny:`"),
        ("import x;", "`import` is not part of the language"),
        ("struct X {}", "write `type Name = { field: Type }`"),
        ("let x = 1;", "top-level items"),
        ("agent a { with { let s = 'x'; } }", "double quotes"),
    ],
)
def test_hints(source: str, hint: str) -> None:
    found = diagnostics(source)
    assert hint in found[0][3], found


def test_unterminated_string() -> None:
    ((line, col, message, _),) = diagnostics('agent a {\n with { let s = "abc; }\n}')
    assert (line, col, message) == (2, 17, "unterminated string")


def test_bad_escape_and_bad_assignment_target() -> None:
    ((_, col, message, _),) = diagnostics('agent a { with { let s = "a\\qb"; } }')
    assert message == "unknown escape `\\q` in a string"
    assert col == 28
    ((_, _, message, _),) = diagnostics("agent a { with { f() = 3; } }")
    assert message == "cannot assign to this expression"


def test_several_errors_in_one_pass() -> None:
    found = diagnostics(
        "agent a {\n  with { let x = 1 }\n}\n\n"
        "agent b {\n  policy p { permit: x }\n}\n\n"
        "agent c {\n  with { f( }\n}\n\n"
        "agent d { }\n"
    )
    assert [line for line, *_ in found] == [2, 6, 10]


def test_error_message_format() -> None:
    with pytest.raises(DslSyntaxError) as info:
        parse("agent a { with { let x = 1 } }", file="dir/agent.symbi")
    text = str(info.value.diagnostics[0])
    assert text == "dir/agent.symbi:1:28: error: unexpected `}`; expected `;`"
    assert info.value.details["line"] == "1"
    assert info.value.details["file"] == "dir/agent.symbi"


def test_oversized_text_is_refused_before_parsing() -> None:
    with pytest.raises(InvalidArgument, match="limit"):
        parse("#" * (1 << 20 + 1))


@pytest.mark.parametrize(
    "code",
    [
        "!" * 3000 + "x",
        " + ".join(["a"] * 3000),
        "[" * 300 + "]" * 300,
    ],
)
def test_deep_nesting_is_an_error_not_a_crash(code: str) -> None:
    with pytest.raises(DslSyntaxError, match="nested"):
        parse("agent a { with { x = " + code + "; } }")


def test_parentheses_nest_but_not_without_bound() -> None:
    assert parse_expression("(" * 150 + "1" + ")" * 150) == num(1)
    with pytest.raises(DslSyntaxError, match="nested too deeply"):
        parse_expression("(" * 3000 + "1" + ")" * 3000)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list('agent{}()[];:=,."#/\\x1 \nifwith<>-!&|')), max_size=80)
)
def test_garbage_never_escapes_as_a_parser_exception(text: str) -> None:
    errors: list[DslSyntaxError] = []
    try:
        parse(text)
    except DslSyntaxError as exc:
        errors.append(exc)
    for exc in errors:
        assert exc.diagnostics
        for d in exc.diagnostics:
            assert d.line >= 1
            assert d.column >= 1
