"""The action/principal index never changes a decision: checked against the whole set."""

from __future__ import annotations

import json

import cedarpy
from hypothesis import given, settings
from hypothesis import strategies as st

from symbi_policy import (
    Allow,
    AllowWithConditions,
    AuthzRequest,
    Deny,
    EngineConfig,
    EntitiesDocument,
    PolicyCompiler,
    PolicyDocument,
    PolicyEngine,
    SourceSnapshot,
)
from symbi_policy.schema import symbi_schema

AGENTS = ["a0", "a1", "a2", "a3"]
ACTIONS = ["publish", "subscribe", "tool_call", "network", "read_context"]
POLICIES = """\
@id("any-action-forbid") forbid(principal == Symbi::Agent::"a3", action, resource)
when { context has tags && context.tags.contains("blocked") };
@id("pubsub") permit(principal, action in [Symbi::Action::"publish", Symbi::Action::"subscribe"], resource);
@id("no-pub-t1") forbid(principal, action == Symbi::Action::"publish", resource == Symbi::Topic::"t1");
@id("a0-net") permit(principal == Symbi::Agent::"a0", action == Symbi::Action::"network", resource);
@id("a1-net") @condition("audit_full") permit(principal == Symbi::Agent::"a1", action == Symbi::Action::"network", resource)
when { context has port && context.port == 443 };
@id("a1-everything") permit(principal == Symbi::Agent::"a1", action, resource) when { context has priority };
@id("agents-tools") @condition("rate_limit:5/s") permit(principal is Symbi::Agent, action == Symbi::Action::"tool_call", resource);
@id("a2-no-tools") forbid(principal == Symbi::Agent::"a2", action == Symbi::Action::"tool_call", resource);
@id("role-read") permit(principal in Symbi::Role::"readers", action == Symbi::Action::"read_context", resource);
"""
ENTITIES = [
    *(
        {
            "uid": {"type": "Symbi::Agent", "id": a},
            "attrs": {},
            "parents": [{"type": "Symbi::Role", "id": "readers"}] if a in ("a0", "a3") else [],
        }
        for a in AGENTS
    ),
    {"uid": {"type": "Symbi::Role", "id": "readers"}, "attrs": {}, "parents": []},
    *({"uid": {"type": "Symbi::Topic", "id": t}, "attrs": {}, "parents": []} for t in ("t0", "t1")),
    {"uid": {"type": "Symbi::Tool", "id": "x"}, "attrs": {"name": "x"}, "parents": []},
    {"uid": {"type": "Symbi::Resource", "id": "net"}, "attrs": {}, "parents": []},
    {"uid": {"type": "Symbi::Dataset", "id": "d"}, "attrs": {}, "parents": []},
]
RESOURCE_FOR = {
    "publish": ["t0", "t1"],
    "subscribe": ["t0", "t1"],
    "tool_call": ["x"],
    "network": ["net"],
    "read_context": ["d"],
}
TYPE_FOR = {
    "publish": "Topic",
    "subscribe": "Topic",
    "tool_call": "Tool",
    "network": "Resource",
    "read_context": "Dataset",
}

_document = PolicyCompiler().compile("p", POLICIES)
_whole = cedarpy.PolicySet.from_json_str(
    json.dumps(
        {
            "staticPolicies": {p.id: json.loads(p.est_json) for p in _document.policies},
            "templates": {},
            "templateLinks": [],
        }
    )
)
_entities = cedarpy.Entities.from_json_str(json.dumps(ENTITIES))


class _Discard:
    def record(self, event: object) -> None:
        pass


# A generous evaluation budget: this test is about equal decisions, not time (a loaded
# machine can stall one call past the default 250 ms and deny it, fail closed).
_engine = PolicyEngine(
    audit=_Discard(), config=EngineConfig(cache_size=0, max_evaluation_seconds=60.0)
)
_engine.apply(
    SourceSnapshot(
        (PolicyDocument("p", POLICIES, 1),), EntitiesDocument(json.dumps(ENTITIES), 1), 1
    )
)


@settings(max_examples=200, deadline=None)
@given(
    agent=st.sampled_from(AGENTS),
    action=st.sampled_from(ACTIONS),
    data=st.data(),
    tags=st.sampled_from([None, ["blocked"], ["ok"]]),
    port=st.sampled_from([None, 443, 80]),
    priority=st.booleans(),
)
def test_sliced_decisions_equal_whole_set_decisions(agent, action, data, tags, port, priority):
    resource = data.draw(st.sampled_from(RESOURCE_FOR[action]))
    context: dict[str, object] = {}
    if tags is not None:
        context["tags"] = tags
    if port is not None:
        context["port"] = port
    if priority:
        context["priority"] = "high"
    decision = _engine.evaluate(
        AuthzRequest.from_mapping(
            {
                "principal": f'Agent::"{agent}"',
                "action": action,
                "resource": f'{TYPE_FOR[action]}::"{resource}"',
                "context": context,
            }
        )
    )
    expected = cedarpy.is_authorized(
        {
            "principal": {"type": "Symbi::Agent", "id": agent},
            "action": {"type": "Symbi::Action", "id": action},
            "resource": {"type": f"Symbi::{TYPE_FOR[action]}", "id": resource},
            "context": context,
        },
        _whole,
        _entities,
        symbi_schema(),
    )
    assert not expected.diagnostics.errors
    assert decision.allowed is expected.allowed
    assert sorted(decision.policies) == sorted(expected.diagnostics.reasons)
    if isinstance(decision, Deny):
        assert not decision.fail_closed
    else:
        assert isinstance(decision, Allow | AllowWithConditions)
