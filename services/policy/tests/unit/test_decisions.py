"""Decision tables: what the engine answers, and why."""

from __future__ import annotations

import pytest

from symbi_policy import (
    EVENT_DECISION,
    Allow,
    AllowWithConditions,
    Condition,
    Deny,
    EngineConfig,
    decision_to_dict,
)

A, B = 'Agent::"a"', 'Agent::"b"'


@pytest.mark.parametrize(
    ("principal", "action", "resource", "kind", "policies"),
    [
        # allow: one satisfied permit
        (A, "publish", 'Topic::"t"', Allow, ("trusted-publish",)),
        # default deny: the permit's condition is false for b
        (B, "publish", 'Topic::"t"', Deny, ()),
        # forbid overrides permit: a is trusted, but the topic is forbidden
        (A, "publish", 'Topic::"secret"', Deny, ("no-secret",)),
        (B, "publish", 'Topic::"secret"', Deny, ("no-secret",)),
        # no policy for this action at all
        (A, "subscribe", 'Topic::"t"', Deny, ()),
        # conditions from the satisfied permits
        (B, "tool_call", 'Tool::"grep"', AllowWithConditions, ("tools-guarded",)),
        (A, "tool_call", 'Tool::"rm"', AllowWithConditions, ("tools-audited",)),
        (B, "tool_call", 'Tool::"rm"', Deny, ()),
        (A, "read_context", 'Dataset::"pub"', Allow, ("read-public",)),
        (A, "read_context", 'Dataset::"sec"', Deny, ()),
    ],
)
def test_decision_table(engine, req, principal, action, resource, kind, policies):
    decision = engine.evaluate(req(principal, action, resource))
    assert type(decision) is kind
    assert decision.policies == policies
    assert decision.version == 1
    assert decision.entities_version == 1
    assert decision.allowed is (kind is not Deny)


def test_default_deny_says_so(engine, req):
    decision = engine.evaluate(req(B, "publish", 'Topic::"t"'))
    assert isinstance(decision, Deny)
    assert not decision.fail_closed
    assert "no policy permits" in decision.reasons[0]
    assert "default deny" in decision.reasons[0]


def test_forbid_reason_comes_from_annotation(engine, req):
    decision = engine.evaluate(req(A, "publish", 'Topic::"secret"'))
    assert isinstance(decision, Deny)
    assert decision.reasons == ("topic secret is off limits",)


def test_forbid_without_reason_names_the_policy(make_engine, snapshot, req):
    snap = snapshot(
        {
            "p": 'permit(principal, action, resource);\nforbid(principal, action == Symbi::Action::"publish", resource);'
        }
    )
    decision = make_engine(snap=snap).evaluate(req(A, "publish", 'Topic::"t"'))
    assert isinstance(decision, Deny)
    assert decision.policies == ("p#1",)
    assert decision.reasons == ("forbidden by policy p#1",)


def test_conditions_are_parsed_and_accumulate(engine, req):
    decision = engine.evaluate(req(A, "tool_call", 'Tool::"grep"'))
    assert isinstance(decision, AllowWithConditions)
    # both permits matched: every condition of every satisfied permit applies
    assert set(decision.policies) == {"tools-guarded", "tools-audited"}
    assert set(decision.conditions) == {
        Condition("require_approval"),
        Condition("rate_limit", "10/m"),
        Condition("audit_full"),
    }
    limit = next(c for c in decision.conditions if c.name == "rate_limit").rate_limit
    assert limit is not None
    assert (limit.count, limit.period_seconds) == (10, 60)


@pytest.mark.parametrize(
    ("request_fields", "fragment"),
    [
        ({"action": "launch_missiles"}, "unknown action 'launch_missiles'"),
        ({"principal": 'Bogus::"x"'}, "unknown principal type 'Symbi::Bogus'"),
        ({"resource": 'Bogus::"x"'}, "unknown resource type 'Symbi::Bogus'"),
        ({"principal": 'Agent::"ghost"'}, 'unknown principal Symbi::Agent::"ghost"'),
        ({"resource": 'Topic::"nowhere"'}, 'unknown resource Symbi::Topic::"nowhere"'),
        ({"context": {"tier": 3}}, "request rejected"),
        ({"context": {"teir": "docker"}}, "teir"),
        ({"resource": 'Dataset::"pub"'}, "request rejected"),  # publish does not apply to Dataset
    ],
)
def test_unknown_or_invalid_input_is_denied_with_a_reason(engine, req, request_fields, fragment):
    fields = {"principal": A, "action": "publish", "resource": 'Topic::"t"', **request_fields}
    decision = engine.evaluate(
        req(fields.pop("principal"), fields.pop("action"), fields.pop("resource"), **fields)
    )
    assert isinstance(decision, Deny)
    assert not decision.fail_closed
    assert any(fragment in r for r in decision.reasons), decision.reasons


def test_unknown_resource_allowed_when_configured(make_engine, snapshot, req):
    snap = snapshot({"p": 'permit(principal, action == Symbi::Action::"subscribe", resource);'})
    strict = make_engine(snap=snap)
    lenient = make_engine(EngineConfig(require_known_resource=False), snap)
    request = req(A, "subscribe", 'Topic::"ad-hoc"')
    assert isinstance(strict.evaluate(request), Deny)
    assert isinstance(lenient.evaluate(request), Allow)
    # the principal must be known either way
    assert isinstance(lenient.evaluate(req('Agent::"ghost"', "subscribe", 'Topic::"t"')), Deny)


def test_request_entities_add_to_the_base_set(engine, req):
    tool = {"uid": {"type": "Tool", "id": "new"}, "attrs": {"name": "new", "verified": True}}
    decision = engine.evaluate(req(B, "tool_call", 'Tool::"new"', entities=[tool]))
    assert isinstance(decision, AllowWithConditions)
    unverified = {
        "uid": {"type": "Tool", "id": "new2"},
        "attrs": {"name": "new2", "verified": False},
    }
    assert isinstance(
        engine.evaluate(req(B, "tool_call", 'Tool::"new2"', entities=[unverified])), Deny
    )


def test_request_entities_may_not_restate_stored_ones(engine, req):
    # b restating itself as trusted would grant itself publish: refused
    forged = {"uid": {"type": "Agent", "id": "b"}, "attrs": {"trust": "trusted"}}
    decision = engine.evaluate(req(B, "publish", 'Topic::"t"', entities=[forged]))
    assert isinstance(decision, Deny)
    assert "may only add entities" in decision.reasons[0]


def test_request_entities_are_checked_against_the_schema(engine, req):
    bad = {"uid": {"type": "Tool", "id": "x"}, "attrs": {"name": 7}}
    decision = engine.evaluate(req(B, "tool_call", 'Tool::"x"', entities=[bad]))
    assert isinstance(decision, Deny)
    assert "rejected by the schema" in decision.reasons[0]


def test_batch_matches_single_decisions(make_engine, req):
    requests = [
        req(A, "publish", 'Topic::"t"'),
        req(B, "publish", 'Topic::"t"'),
        req(A, "publish", 'Topic::"secret"'),
        req(B, "tool_call", 'Tool::"grep"'),
        req(A, "launch", 'Topic::"t"'),
        req(
            B,
            "tool_call",
            'Tool::"n"',
            entities=[
                {"uid": {"type": "Tool", "id": "n"}, "attrs": {"name": "n", "verified": True}}
            ],
        ),
        req(A, "publish", 'Topic::"t"', context={"tier": 3}),
    ]
    single = [make_engine().evaluate(r) for r in requests]
    batch = make_engine().evaluate_batch(requests)
    assert [decision_to_dict(d) for d in batch] == [decision_to_dict(d) for d in single]


def test_batch_over_the_limit_is_refused(make_engine, req):
    from symbi_common.errors import InvalidArgument

    engine = make_engine(EngineConfig(max_batch=2))
    with pytest.raises(InvalidArgument, match="over the limit of 2"):
        engine.evaluate_batch([req(A, "publish", 'Topic::"t"')] * 3)


def test_every_deny_is_audited_allows_only_when_asked(engine, sink, req):
    engine.evaluate(req(A, "publish", 'Topic::"t"'))  # plain allow: not audited
    engine.evaluate(req(B, "publish", 'Topic::"t"'))  # deny
    engine.evaluate(req(A, "tool_call", 'Tool::"rm"'))  # allow with audit_full
    decisions = sink.of_type(EVENT_DECISION)
    assert [e.decision for e in decisions] == ["deny", "conditional"]
    deny = decisions[0]
    assert deny.actor == 'Symbi::Agent::"b"'
    assert deny.agent_id == "b"
    assert deny.details["request"]["action"] == "publish"
    assert deny.details["result"]["version"] == 1
    assert decisions[1].details["result"]["policies"] == ["tools-audited"]


def test_allows_audited_when_configured(make_engine, sink, req):
    engine = make_engine(EngineConfig(audit_allows=True))
    engine.evaluate(req(A, "publish", 'Topic::"t"'))
    engine.evaluate(req(A, "publish", 'Topic::"t"'))  # a cache hit is audited too
    events = sink.of_type(EVENT_DECISION)
    assert [e.decision for e in events] == ["allow", "allow"]
    assert [e.details["result"]["cached"] for e in events] == [False, True]
    assert events[0].details["result"]["policies"] == ["trusted-publish"]


def test_decision_json_shape(engine, req):
    as_dict = decision_to_dict(engine.evaluate(req(B, "tool_call", 'Tool::"grep"')))
    assert as_dict == {
        "decision": "AllowWithConditions",
        "reasons": [],
        "conditions": ["require_approval", "rate_limit:10/m"],
        "policies": ["tools-guarded"],
        "version": 1,
        "entities_version": 1,
    }
