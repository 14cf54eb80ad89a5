"""DSL policy blocks → Cedar: the mapping, the refusals, and the decisions it leads to.

Every compiled set is validated against the shared schema by the compiler itself (cedarpy);
the decision tests evaluate the output with cedarpy to show the meaning is the intended one.
"""

from __future__ import annotations

import json
from typing import Any

import cedarpy
import pytest

from symbi_common.cedar import ACTIONS
from symbi_common.dsl import (
    GUARD_TAG_PREFIX,
    CompiledPolicySet,
    DslValidationError,
    PolicyCompiler,
    ast,
    parse,
)
from symbi_common.dsl.policy_compiler import VERBS, WILDCARDS
from symbi_common.errors import InvalidArgument

COMPILER = PolicyCompiler()
AGENT = "researcher"


def policies(source: str) -> list[ast.PolicyDef]:
    found = [i for i in parse(source).items if isinstance(i, ast.PolicyDef)]
    assert found
    return found


def compile_block(body: str, *, shadowed: tuple[str, ...] = ()) -> CompiledPolicySet:
    return COMPILER.compile(AGENT, policies("policy p {\n" + body + "\n}"), shadowed=shadowed)


def refusal(body: str) -> list[tuple[int, int, str, str]]:
    with pytest.raises(DslValidationError) as info:
        compile_block(body)
    assert isinstance(info.value, InvalidArgument)
    return [(d.line, d.column, d.message, d.hint) for d in info.value.errors]


ENTITIES = json.dumps(
    [
        {
            "uid": {"type": "Symbi::Agent", "id": AGENT},
            "attrs": {"trust": "trusted"},
            "parents": [],
        },
        {"uid": {"type": "Symbi::Agent", "id": "other"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Symbi::Resource", "id": "r"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Symbi::Topic", "id": "alerts"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Symbi::Topic", "id": "noise"}, "attrs": {}, "parents": []},
    ]
)


def decide(
    compiled: CompiledPolicySet,
    action: str,
    *,
    resource: str = 'Symbi::Resource::"r"',
    principal: str = AGENT,
    **context: Any,
) -> tuple[str, set[str]]:
    """Cedar's decision and the ids of the determining policies."""
    request = {
        "principal": f'Symbi::Agent::"{principal}"',
        "action": f'Symbi::Action::"{action}"',
        "resource": resource,
        "context": context,
    }
    result = cedarpy.is_authorized(request, compiled.text, ENTITIES)
    assert not result.diagnostics.errors, result.diagnostics.errors
    ids = {compiled.policies[int(r.removeprefix("policy"))].id for r in result.diagnostics.reasons}
    return ("allow" if result.allowed else "deny"), ids


# ------------------------------------------------------------------------------ mapping


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_mapped_verb_compiles_to_its_schema_action(verb: str) -> None:
    compiled = compile_block(f"allow: {verb}")
    (policy,) = compiled.policies
    action = VERBS[verb].action
    assert action in ACTIONS
    assert f'Symbi::Action::"{action}"' in policy.text
    assert decide(compiled, action, path="/x", mode=VERBS[verb].mode or "read")[0] == "allow"


def test_other_verbs_become_use_capability_with_the_verb_as_capability() -> None:
    compiled = compile_block('allow: ["analyze", summarize]')
    (policy,) = compiled.policies
    assert 'action == Symbi::Action::"use_capability"' in policy.text
    assert decide(compiled, "use_capability", capability="analyze")[0] == "allow"
    assert decide(compiled, "use_capability", capability="summarize")[0] == "allow"
    assert decide(compiled, "use_capability", capability="export")[0] == "deny"
    assert decide(compiled, "use_capability")[0] == "deny"


@pytest.mark.parametrize("word", sorted(WILDCARDS - {"*"}))
def test_wildcards_cover_every_action(word: str) -> None:
    compiled = compile_block(f"deny: {word}")
    assert "    action,\n" in compiled.policies[0].text


def test_every_policy_is_scoped_to_the_agent() -> None:
    compiled = compile_block('allow: network\n deny: "execute"\n require: approval')
    for policy in compiled.policies:
        assert f'principal == Symbi::Agent::"{AGENT}"' in policy.text
    assert decide(compiled, "network", principal="other")[0] == "deny"
    assert decide(compiled, "network")[0] == "allow"


def test_literal_arguments_constrain_the_request() -> None:
    compiled = compile_block(
        'allow: network("https://api.example.com/v1")\n'
        'allow: network("*.trusted.org")\n'
        'allow: read_file("/data/*")\n'
        'allow: publish("topic://alerts")\n'
        'allow: tool("web_search")'
    )
    assert decide(compiled, "network", destination="api.example.com")[0] == "allow"
    assert decide(compiled, "network", destination="evil.com")[0] == "deny"
    assert decide(compiled, "network", destination="docs.trusted.org")[0] == "allow"
    assert decide(compiled, "file_access", path="/data/a.csv", mode="read")[0] == "allow"
    assert decide(compiled, "file_access", path="/data/a.csv", mode="write")[0] == "deny"
    assert decide(compiled, "file_access", path="/etc/passwd", mode="read")[0] == "deny"
    assert decide(compiled, "publish", resource='Symbi::Topic::"alerts"')[0] == "allow"
    assert decide(compiled, "publish", resource='Symbi::Topic::"noise"')[0] == "deny"
    assert decide(compiled, "tool_call", tool="web_search")[0] == "allow"
    assert decide(compiled, "tool_call", tool="shell")[0] == "deny"


def test_name_arguments_narrow_allows_but_not_denies() -> None:
    allow = compile_block("allow: read(input)")
    assert decide(allow, "read_context", target="input")[0] == "allow"
    assert decide(allow, "read_context", target="other")[0] == "deny"
    both = compile_block("allow: write\n deny: write(transaction.details)")
    # The deny cannot know which value `transaction.details` is: it covers every write.
    assert decide(both, "write_context", target="anything")[0] == "deny"


def test_deny_overrides_allow_and_carries_a_reason() -> None:
    compiled = compile_block('allow: all\n deny: ["execute_code", "network_access"]')
    forbid = next(p for p in compiled.policies if p.effect == "forbid")
    assert (
        '@reason("denied by policy p of agent researcher: deny [\\"execute_code\\"' in forbid.text
    )
    decision, ids = decide(compiled, "execute")
    assert decision == "deny"
    assert ids == {forbid.id}
    assert decide(compiled, "network", destination="x")[0] == "deny"
    assert decide(compiled, "file_access", path="/x")[0] == "allow"


# ------------------------------------------------------------------------------ guards


def test_request_guards_become_when_clauses() -> None:
    compiled = compile_block(
        'allow: network if request.destination.ends_with(".example.com") && request.hour >= 9'
        '\n deny: network if request.port in [22, 23] || !(principal.trust == "trusted")'
    )
    assert not compiled.runtime_guards
    assert 'context.destination like "*.example.com"' in compiled.text
    ok = {"destination": "api.example.com", "hour": 10, "port": 443}
    assert decide(compiled, "network", **ok)[0] == "allow"
    assert decide(compiled, "network", **{**ok, "hour": 3})[0] == "deny"
    assert decide(compiled, "network", **{**ok, "port": 22})[0] == "deny"
    assert decide(compiled, "network", destination="api.example.com")[0] == "deny"  # no hour


def test_set_attributes_and_contains() -> None:
    compiled = compile_block(
        'allow: analyze if request.tags.contains("approved") && principal.capabilities.contains("x")'
    )
    assert 'context.tags.contains("approved")' in compiled.text
    assert not compiled.runtime_guards


def test_agent_data_guards_become_fail_closed_runtime_guards() -> None:
    compiled = compile_block(
        'allow: ["read_data"] if data.source.trusted == true && data.records.length <= 100000\n'
        "deny: store if data.contains_pii"
    )
    allow_guard, _deny_guard = compiled.runtime_guards
    assert allow_guard.expression == "data.source.trusted == true && data.records.length <= 100000"
    assert allow_guard.true_tag == f"{GUARD_TAG_PREFIX}agent/researcher/p/1=true"
    # Allow: only when the runtime says the guard holds.
    assert decide(compiled, "read_context")[0] == "deny"
    assert decide(compiled, "read_context", tags=[allow_guard.false_tag])[0] == "deny"
    assert decide(compiled, "read_context", tags=[allow_guard.true_tag])[0] == "allow"
    # Deny: applies unless the runtime says the guard is false.
    both = [allow_guard.true_tag]
    assert decide(compiled, "write_context", tags=both)[0] == "deny"


def test_runtime_deny_guard_lifts_only_when_known_false() -> None:
    compiled = compile_block("allow: write\n deny: write if data.contains_pii")
    (guard,) = compiled.runtime_guards
    assert decide(compiled, "write_context")[0] == "deny"
    assert decide(compiled, "write_context", tags=[guard.true_tag])[0] == "deny"
    assert decide(compiled, "write_context", tags=[guard.false_tag])[0] == "allow"


def test_parameters_named_like_request_are_agent_data() -> None:
    compiled = compile_block('allow: network if request.destination == "x"', shadowed=("request",))
    assert len(compiled.runtime_guards) == 1


def test_constant_guards_fold() -> None:
    compiled = compile_block("allow: read if true\n allow: write if false")
    assert len(compiled.policies) == 1
    assert any("always false" in w.message for w in compiled.warnings)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('allow: read if vault://db/password == "x"', "cannot read a secret"),
        ("allow: read if verify(user)", "cannot call `verify()`"),
        ("allow: read if user.delete()", "cannot call `.delete()`"),
        ("allow: read if agent checker.ok(x)", "cannot call another agent"),
        ('allow: read if request.hour == "nine"', "cannot compare a Long with a String"),
        ('allow: read if request.hour < "a"', "compares only integers"),
        ("allow: read if request.destination", "must be true or false"),
        ("allow: read(x) for ops on data", "`for ... on ...` cannot be expressed"),
        ("allow: 1 + 2", "a policy rule names actions"),
        ("allow: read(f(x))", "argument must be a name"),
        ('require: { rate_limiting: "lots" }', "cannot read the rate limit"),
    ],
)
def test_refusals_name_the_position(body: str, message: str) -> None:
    errors = refusal(body)
    assert any(message in m for _, _, m, _ in errors), errors
    line, column, *_ = errors[0]
    assert line == 2  # the rule's line inside `policy p {`
    assert column >= 1


def test_several_refusals_at_once() -> None:
    errors = refusal("allow: read if verify(x)\n allow: 1\n deny: x if vault://a == 1")
    assert [line for line, *_ in errors] == [2, 3, 4]


# ------------------------------------------------------------------------------ require / audit


def test_require_and_audit_become_conditions_on_the_blocks_permits() -> None:
    compiled = compile_block(
        "allow: network\n"
        'require: { rate_limiting: "100/minute", scan_approval_required: true, tls: true }\n'
        "audit: all_operations with digital_signature"
    )
    (permit,) = compiled.policies
    assert permit.conditions == ("rate_limit:100/m", "require_approval", "audit_full")
    assert '@condition("rate_limit:100/m,require_approval,audit_full")' in permit.text
    keys = {(o.kind, o.key, o.value) for o in compiled.obligations}
    assert ("require", "tls", "true") in keys
    assert ("audit", "with", "digital_signature") in keys


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ('"10/second"', "rate_limit:10/s"),
        ('"1000/hour"', "rate_limit:1000/h"),
        ('"5 per day"', "rate_limit:5/d"),
        ('"30/min"', "rate_limit:30/m"),
    ],
)
def test_rate_limit_units(text: str, condition: str) -> None:
    compiled = compile_block(f"allow: read\n require: rate_limit({text})")
    assert compiled.policies[0].conditions == (condition,)


def test_guarded_condition_rides_on_a_copy_of_the_permit() -> None:
    compiled = compile_block(
        "allow: network\n require: approval if request.risk_score > 50\n"
        "audit: everything if user.flagged"
    )
    base, approval, audit = compiled.policies
    assert base.conditions == ()
    assert approval.conditions == ("require_approval",)
    assert approval.id.endswith(".c1")
    assert audit.conditions == ("audit_full",)
    (flag,) = compiled.runtime_guards
    # Risky request: the approval copy applies too, so the engine sees its condition.
    _, ids = decide(compiled, "network", risk_score=80, tags=[flag.false_tag])
    assert ids == {base.id, approval.id}
    _, ids = decide(compiled, "network", risk_score=10, tags=[flag.false_tag])
    assert ids == {base.id}
    # An audit guard the runtime did not report is treated as holding (fail closed).
    _, ids = decide(compiled, "network", risk_score=10)
    assert ids == {base.id, audit.id}


def test_predicate_requirements_forbid_unless_they_hold() -> None:
    compiled = compile_block(
        'allow: ["read", "analyze"]\n'
        "require: [session.mfa_verified == true, request.risk_score < 50, audit_trail = true]"
    )
    mfa = compiled.runtime_guards[0]
    assert mfa.expression == "session.mfa_verified == true"
    forbids = [p for p in compiled.policies if p.effect == "forbid"]
    assert len(forbids) == 2
    assert all(
        'action in [Symbi::Action::"read_context", Symbi::Action::"use_capability"]' in p.text
        for p in forbids
    )
    ok = {"risk_score": 10, "tags": [mfa.true_tag], "capability": "analyze"}
    assert decide(compiled, "use_capability", **ok)[0] == "allow"
    assert decide(compiled, "use_capability", **{**ok, "tags": []})[0] == "deny"
    assert decide(compiled, "use_capability", **{**ok, "risk_score": 90})[0] == "deny"
    assert compiled.policies[0].conditions == ("audit_full",)


def test_modifiers_that_mean_nothing_are_warned_about() -> None:
    compiled = compile_block("allow: read with care\n deny: write for all on everything")
    messages = [w.message for w in compiled.warnings]
    assert any("`with ...` has no meaning" in m for m in messages)
    assert any("the deny applies to every target" in m for m in messages)


def test_duplicate_policy_names_and_bad_agent_ids() -> None:
    with pytest.raises(DslValidationError, match="defined twice"):
        COMPILER.compile(AGENT, policies("policy p { allow: read }\npolicy p { deny: write }"))
    with pytest.raises(InvalidArgument, match="invalid agent id"):
        COMPILER.compile('bad"id', policies("policy p { allow: read }"))


def test_compiled_ids_follow_the_policy_engine_id_pattern() -> None:
    import re

    pattern = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}")
    long_name = "p" + "x" * 150
    compiled = COMPILER.compile("a.b-c_1", policies(f"policy {long_name} {{ allow: [read, x] }}"))
    for policy in compiled.policies:
        assert pattern.fullmatch(policy.id), policy.id


def test_output_validates_against_the_schema() -> None:
    compiled = compile_block(
        'allow: [network("a.com"), read_file("/x"), publish("t"), send("other"), analyze(d)]\n'
        "deny: [execute, spawn_agent, modify_agent]\n"
        'require: { approval: true, rate: "1/s" }'
    )
    schema = cedarpy.Schema.from_str(__import__("symbi_common.cedar").cedar.schema_text())
    result = cedarpy.validate_policies(compiled.text, schema)
    assert result.validation_passed, [str(e) for e in result.errors]
    assert compiled.document == "agents/researcher"


def test_strict_compiler_refuses_guards_the_engine_cannot_decide() -> None:
    strict = PolicyCompiler(runtime_guards=False)
    source = 'policy p {\n    allow: publish if body.type == "alert"\n    allow: read if request.hour > 8\n}'
    with pytest.raises(DslValidationError) as info:
        strict.compile(AGENT, policies(source))
    (error,) = info.value.errors
    assert (error.line, error.column) == (2, 23)
    assert 'does not see (`body.type == "alert"`)' in error.message
    assert "request.<attribute>" in error.hint
    ok = strict.compile(AGENT, policies("policy p { allow: read if request.hour > 8 }"))
    assert not ok.runtime_guards
