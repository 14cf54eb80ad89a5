"""Validation errors name the document, the policy, the line and the column."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symbi_policy import Condition, PolicyCompiler, PolicyValidationError
from symbi_policy.cedar_text import position_at, tokenize

compiler = PolicyCompiler()


def problems(name: str, text: str) -> list[tuple[int, int, str, str]]:
    with pytest.raises(PolicyValidationError) as caught:
        compiler.compile(name, text)
    return [(p.line, p.column, p.policy, p.message) for p in caught.value.problems]


def at(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    offset = -1
    for _ in range(occurrence):
        offset = text.index(needle, offset + 1)
    pos = position_at(text, offset)
    return pos.line, pos.column


@pytest.mark.parametrize(
    ("text", "needle", "fragment"),
    [
        # the parser rejects a token: it is located exactly
        (
            "permit(principal, action, resource);\n\npermit(principal,\n  action, resource)\n  when { context.x == };",
            "};",
            "unexpected token `}`",
        ),
        ("permit(principal, action, resource) when { 1 + + };", "+ }", "unexpected token `+`"),
        ("permit(principal action, resource);", "action", "unexpected token"),
        # the lexer rejects text
        (
            'permit(principal, action, resource) when {\n  context.reason == "abc };',
            '"abc',
            "unterminated string",
        ),
        (
            "permit(principal, action, resource) when { context.x == 1 # };",
            "#",
            "unexpected character",
        ),
        # the parser accepts the shape, Cedar rejects a part: the quoted part is found
        (
            "permit(principal, action, resource)\n when { foo(1) };",
            "foo",
            "`foo` is not a valid function",
        ),
        (
            '@id("a")\n@id("b") permit(principal, action, resource);',
            '@id("b")',
            "duplicate annotation",
        ),
        ("\n  permitx(principal, action, resource);", "permitx", "invalid policy effect"),
        ("permit(principal, action, resource) when {\n   x };", "x };", "invalid variable: x"),
    ],
)
def test_parse_errors_are_located(text, needle, fragment):
    found = problems("doc", text)
    assert len(found) == 1
    line, column, _, message = found[0]
    assert (line, column) == at(text, needle)
    assert fragment in message


def test_missing_semicolon_points_at_the_end():
    text = "permit(principal, action, resource)\n"
    [(line, column, _, message)] = problems("doc", text)
    assert (line, column) == (1, len("permit(principal, action, resource)") + 1)
    assert "missing `;`" in message


def test_every_broken_statement_is_reported():
    text = (
        "permit(principal, action, resource) when { 1 + };\n"
        "permit(principal, action, resource);\n"
        "forbid(principal, action resource);\n"
    )
    found = problems("doc", text)
    assert [(line, policy) for line, _, policy, _ in found] == [(1, "doc#0"), (3, "doc#2")]


def test_schema_errors_name_policy_and_position():
    text = (
        'permit(principal, action == Symbi::Action::"publish", resource)\n'
        '  when { principal.foo == "x" };\n'
        '@id("x") permit(principal,\n'
        ' action == Symbi::Action::"publishx", resource);'
    )
    found = problems("doc", text)
    attribute = [f for f in found if "attribute `foo`" in f[3]]
    assert attribute
    assert all((f[0], f[1], f[2]) == (*at(text, "foo"), "doc#0") for f in attribute)
    action = [f for f in found if "unrecognized action" in f[3]]
    assert [(f[0], f[1], f[2]) for f in action] == [(*at(text, 'Symbi::Action::"publishx"'), "x")]
    assert not any(f[3].startswith("for policy") for f in found)


def test_unguarded_optional_attribute_is_a_schema_error():
    text = 'permit(principal, action == Symbi::Action::"publish", resource)\n  when { context.tier == "docker" };'
    found = problems("doc", text)
    assert any(
        "optional attribute `tier`" in m and (line, col) == at(text, "tier")
        for line, col, _, m in found
    )


@pytest.mark.parametrize(
    ("text", "fragment", "needle"),
    [
        (
            '@condition("require_aproval") permit(principal, action, resource);',
            "unknown condition 'require_aproval'",
            "@condition",
        ),
        (
            '@condition("rate_limit:0/m") permit(principal, action, resource);',
            "bad rate limit",
            "@condition",
        ),
        (
            '@condition("rate_limit:10/w") permit(principal, action, resource);',
            "bad rate limit",
            "@condition",
        ),
        (
            '@condition("audit_full:yes") permit(principal, action, resource);',
            "takes no argument",
            "@condition",
        ),
        (
            '@condition("audit_full,") permit(principal, action, resource);',
            "empty condition",
            "@condition",
        ),
        (
            'permit(principal, action, resource);\n@condition("audit_full") forbid(principal, action, resource);',
            "permit policies only",
            "@condition",
        ),
        ('@id("has space") permit(principal, action, resource);', "invalid @id", "@id"),
        ('@id("a#1") permit(principal, action, resource);', "invalid @id", "@id"),
        (
            '@id("a") permit(principal, action, resource);\n@id("a") permit(principal, action, resource);',
            "duplicate policy id 'a'",
            '@id("a") permit(principal, action, resource);\n@id',
        ),
        ("permit(principal == ?principal, action, resource);", "templates", "?principal"),
    ],
)
def test_annotation_and_template_errors(text, fragment, needle):
    found = problems("doc", text)
    assert len(found) == 1
    line, column, _, message = found[0]
    assert fragment in message
    expected = at(text, needle) if not needle.endswith("\n@id") else at(text, "@id", 2)
    assert (line, column) == expected


def test_empty_document_and_bad_names():
    assert problems("doc", "// only a comment\n")[0][3] == "document contains no policies"
    assert (
        "invalid document name"
        in problems("bad name", "permit(principal, action, resource);")[0][3]
    )
    assert "invalid document name" in problems("/abs", "permit(principal, action, resource);")[0][3]


def test_compiled_document_carries_ids_conditions_reasons_and_positions():
    text = (
        "// header\n"
        '@id("p1") @condition("audit_full, rate_limit:10/m, audit_full")\n'
        'permit(principal, action == Symbi::Action::"publish", resource);\n'
        '@reason("no") @description("people only")\n'
        'forbid(principal, action, resource) when { context has tier && context.tier == "docker" };\n'
    )
    document = compiler.compile("agents/a-1", text)
    first, second = document.policies
    assert (first.id, first.effect, first.line, first.column) == ("p1", "permit", 2, 1)
    assert first.conditions == (Condition("audit_full"), Condition("rate_limit", "10/m"))
    assert (second.id, second.effect, second.reason, second.line) == (
        "agents/a-1#1",
        "forbid",
        "no",
        4,
    )
    assert len(document.digest) == 64
    assert compiler.compile("agents/a-1", text) is document  # cached


def test_error_carries_structured_details():
    with pytest.raises(PolicyValidationError) as caught:
        compiler.compile("doc", "permit(principal, action, resource) when { 1 + };")
    error = caught.value
    assert error.reason == "POLICY_INVALID"
    assert error.details["document"] == "doc"
    assert error.details["line"] == "1"
    assert error.details["column"] == str(
        at("permit(principal, action, resource) when { 1 + };", "}")[1]
    )
    assert str(error).startswith("doc:1:")


_VALID = [
    'permit(principal is Symbi::Agent, action == Symbi::Action::"publish", resource)\nwhen { principal has trust && principal.trust == "trusted" };',
    'forbid(principal, action in [Symbi::Action::"network", Symbi::Action::"file_access"], resource)\nunless { context has destination && context.destination like "*.internal" };',
    '@id("x") permit(principal == Symbi::Agent::"a", action == Symbi::Action::"tool_call", resource is Symbi::Tool)\nwhen { resource has verified && resource.verified };',
]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_VALID), st.data())
def test_unexpected_token_is_reported_where_that_token_is(valid, data):
    """Delete one token from a valid policy: a reported `unexpected token X` points at an X."""
    tokens, _ = tokenize(valid)
    victim = data.draw(st.integers(0, len(tokens) - 1))
    text = valid[: tokens[victim].start] + valid[tokens[victim].end :]
    try:
        compiler.compile("doc", text)
    except PolicyValidationError as exc:
        for problem in exc.problems:
            if problem.message.startswith("unexpected token `"):
                token = problem.message.split("`")[1]
                line_start = sum(len(line) + 1 for line in text.split("\n")[: problem.line - 1])
                assert text[line_start + problem.column - 1 :].startswith(token), (text, problem)
