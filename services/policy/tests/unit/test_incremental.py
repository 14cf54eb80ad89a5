"""Incremental builds (ADR 0024): a state built change by change from the one in force is
the state a build from scratch gives — same versions, digest, documents and policies — and
decides every request as Cedar does over the whole set; a change rebuilds only the
partitions it touches."""

from __future__ import annotations

import json
from typing import Any

import cedarpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbi_policy import (
    AuthzRequest,
    Deny,
    EngineConfig,
    EntitiesDocument,
    EntityUid,
    PolicyDocument,
    PolicyEngine,
    PolicyValidationError,
    SourceSnapshot,
)
from symbi_policy.engine import StateChange
from symbi_policy.schema import symbi_schema

AGENTS = [f"a{i}" for i in range(6)]
ACTIONS = {
    "publish": ("Topic", ["t0", "t1"]),
    "subscribe": ("Topic", ["t0"]),
    "tool_call": ("Tool", ["x"]),
    "network": ("Resource", ["net"]),
    "read_context": ("Dataset", ["d"]),
}
CONTEXTS: list[dict[str, Any]] = [
    {},
    {"tags": ["blocked"]},
    {"priority": "high", "port": 443},
    {"port": 80, "destination": "api.example.com"},
]


def _agent_document(agent: str, variant: int) -> str:
    """A per-agent document as the DSL compiler writes them (every policy ``principal ==``)."""
    p = f'principal == Symbi::Agent::"{agent}"'
    variants = [
        f'@id("agent/{agent}/net") permit({p}, action == Symbi::Action::"network", resource)\n'
        "when { context has port && context.port == 443 };",
        f'@id("agent/{agent}/any") @condition("audit_full") permit({p}, action, resource)\n'
        "when { context has priority };\n"
        f'@id("agent/{agent}/no-tools") @reason("no tools for {agent}")\n'
        f'forbid({p}, action == Symbi::Action::"tool_call", resource);',
        f'@id("agent/{agent}/pub") permit({p}, action in [Symbi::Action::"publish", '
        'Symbi::Action::"read_context"], resource);\n'
        f'@id("agent/{agent}/no-t1") forbid({p}, action == Symbi::Action::"publish", '
        'resource == Symbi::Topic::"t1");',
        # No @id: ids are positional (<document>#<index>).
        f'permit({p}, action == Symbi::Action::"subscribe", resource);\n'
        f'forbid({p}, action, resource) when {{ context has tags && context.tags.contains("blocked") }};',
    ]
    return variants[variant % len(variants)]


SHARED = [
    '@id("pubsub") permit(principal, action in [Symbi::Action::"publish", '
    'Symbi::Action::"subscribe"], resource);',
    '@id("no-pub-t1") @reason("t1 is closed") forbid(principal, action == '
    'Symbi::Action::"publish", resource == Symbi::Topic::"t1");',
    '@id("agents-tools") @condition("rate_limit:5/s") permit(principal is Symbi::Agent, '
    'action == Symbi::Action::"tool_call", resource);',
    '@id("blocked") forbid(principal, action, resource) '
    'when { context has tags && context.tags.contains("blocked") };',
    '@id("role-read") permit(principal in Symbi::Role::"readers", '
    'action == Symbi::Action::"read_context", resource);',
    # Takes an agent policy's id: refused while that agent's document holds it.
    '@id("agent/a0/net") permit(principal, action == Symbi::Action::"network", resource);',
    # Invalid: refused, and the state in force stays.
    'permit(principal, action == Symbi::Action::"publish", resource) when { context.x == };',
]

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
_ENTITY_HANDLE = cedarpy.Entities.from_json_str(json.dumps(ENTITIES))


class _Discard:
    def record(self, event: object) -> None:
        pass


def _requests() -> list[AuthzRequest]:
    requests = []
    for agent in AGENTS:
        for action, (kind, resources) in ACTIONS.items():
            for resource in resources:
                for context in CONTEXTS:
                    requests.append(
                        AuthzRequest.from_mapping(
                            {
                                "principal": f'Agent::"{agent}"',
                                "action": action,
                                "resource": f'{kind}::"{resource}"',
                                "context": context,
                            }
                        )
                    )
    return requests


REQUESTS = _requests()

# One step: put an agent's document (agent, variant), delete it, put a shared document
# (slot, variant) or delete one.
_step = st.one_of(
    st.tuples(st.just("agent"), st.sampled_from(AGENTS), st.integers(0, 3)),
    st.tuples(st.just("drop-agent"), st.sampled_from(AGENTS), st.just(0)),
    st.tuples(
        st.just("shared"), st.sampled_from(["base", "extra"]), st.integers(0, len(SHARED) - 1)
    ),
    st.tuples(st.just("drop-shared"), st.sampled_from(["base", "extra"]), st.just(0)),
)


def _whole_set_answer(engine: PolicyEngine, request: AuthzRequest) -> tuple[bool, list[str]]:
    """Cedar's own answer over every policy of the engine's state in one set."""
    policies = engine.state.policy_set.policies
    whole = cedarpy.PolicySet.from_json_str(
        json.dumps(
            {
                "staticPolicies": {i: json.loads(p.est_json) for i, p in policies.items()},
                "templates": {},
                "templateLinks": [],
            }
        )
    )
    result = cedarpy.is_authorized(
        {
            "principal": request.principal.as_cedar(),
            "action": {"type": "Symbi::Action", "id": request.action},
            "resource": request.resource.as_cedar(),
            "context": request.context,
        },
        whole,
        _ENTITY_HANDLE,
        symbi_schema(),
    )
    assert not result.diagnostics.errors
    return result.allowed, sorted(result.diagnostics.reasons)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps=st.lists(_step, min_size=1, max_size=14), sample=st.randoms(use_true_random=False))
def test_changes_applied_one_by_one_equal_a_build_from_scratch(steps, sample) -> None:
    # A tiny principal-handle cache: decisions keep rebuilding evicted handles too.
    engine = PolicyEngine(audit=_Discard(), config=EngineConfig(cache_size=0, principal_sets=2))
    engine.apply(SourceSnapshot((), EntitiesDocument(json.dumps(ENTITIES), 1), 0))
    desired: dict[str, PolicyDocument] = {}
    for revision, (kind, which, variant) in enumerate(steps, start=2):
        if kind == "agent":
            name, text = f"agents/{which}", _agent_document(which, variant)
            changed: PolicyDocument | None = PolicyDocument(name, text, revision)
        elif kind == "shared":
            name, changed = which, PolicyDocument(which, SHARED[variant], revision)
        else:
            name = f"agents/{which}" if kind == "drop-agent" else which
            changed = None
        wanted = dict(desired)
        if changed is None:
            wanted.pop(name, None)
        else:
            wanted[name] = changed
        snapshot = SourceSnapshot(
            tuple(wanted[n] for n in sorted(wanted)),
            EntitiesDocument(json.dumps(ENTITIES), 1),
            revision,
        )
        fresh = PolicyEngine(audit=_Discard(), config=EngineConfig(cache_size=0))
        before = engine.state
        try:
            fresh.apply(snapshot)
        except PolicyValidationError as exc:
            expected = exc.problems
        else:
            expected = None
        if expected is not None:
            with pytest.raises(PolicyValidationError) as caught:
                engine.prepare_change(StateChange(revision, 1, {name: changed}))
            assert caught.value.problems == expected
            assert engine.state is before
            continue
        state = engine.prepare_change(StateChange(revision, 1, {name: changed}))
        assert engine.install(state)
        desired = wanted
        assert (engine.version, engine.entities_version) == (fresh.version, fresh.entities_version)
        ours, theirs = engine.status(), fresh.status()
        assert ours.digest == theirs.digest
        assert ours.documents == theirs.documents == tuple(sorted(desired))
        assert dict(engine.state.policy_set.policies) == dict(fresh.state.policy_set.policies)
        for request in sample.sample(REQUESTS, 24):
            decision = engine.evaluate(request)
            assert decision == fresh.evaluate(request), request.describe()
            allowed, reasons = _whole_set_answer(engine, request)
            assert decision.allowed is allowed, request.describe()
            assert sorted(decision.policies) == reasons, request.describe()
            if isinstance(decision, Deny):
                assert not decision.fail_closed


def _agents(count: int) -> dict[str, str]:
    return {f"agents/a{i}": _agent_document(f"a{i}", i) for i in range(count)}


def _snapshot(documents: dict[str, str], version: int) -> SourceSnapshot:
    entities = [
        *ENTITIES,
        *(
            {"uid": {"type": "Symbi::Agent", "id": f"a{i}"}, "attrs": {}, "parents": []}
            for i in range(len(AGENTS), 200)
        ),
    ]
    return SourceSnapshot(
        tuple(PolicyDocument(n, t, version) for n, t in sorted(documents.items())),
        EntitiesDocument(json.dumps(entities), 1),
        version,
    )


def test_a_change_rebuilds_only_the_partitions_it_touches() -> None:
    engine = PolicyEngine(audit=_Discard())
    documents = {"base": SHARED[0] + "\n" + SHARED[4], **_agents(200)}
    engine.apply(_snapshot(documents, 1))
    stats = engine.stats
    assert stats.documents_built == 201
    first_shared = stats.shared_partitions_built

    # One agent's document: that document, that principal; no shared partition.
    before = (
        stats.documents_built,
        stats.shared_partitions_built,
        stats.principal_partitions_built,
    )
    engine.install(
        engine.prepare_change(
            StateChange(
                2, 1, {"agents/a7": PolicyDocument("agents/a7", _agent_document("a7", 2), 2)}
            )
        )
    )
    after = (stats.documents_built, stats.shared_partitions_built, stats.principal_partitions_built)
    assert after == (before[0] + 1, before[1], before[2] + 1)
    built_on_use = engine.principal_sets.built_on_use
    decision = engine.evaluate(
        AuthzRequest.from_mapping(
            {"principal": 'Agent::"a7"', "action": "publish", "resource": 'Topic::"t1"'}
        )
    )
    assert decision.policies == ("agent/a7/no-t1",)
    assert engine.principal_sets.built_on_use == built_on_use  # built with the change

    # A shared document: only the actions its policies name.
    engine.install(
        engine.prepare_change(StateChange(3, 1, {"extra": PolicyDocument("extra", SHARED[2], 3)}))
    )
    assert stats.shared_partitions_built == first_shared + 1  # tool_call only
    assert stats.documents_built == before[0] + 2

    # The same text again: a new version, nothing compiled or rebuilt.
    engine.install(
        engine.prepare_change(StateChange(4, 1, {"extra": PolicyDocument("extra", SHARED[2], 4)}))
    )
    assert engine.version == 4
    assert stats.documents_built == before[0] + 2
    assert stats.shared_partitions_built == first_shared + 1


def test_a_state_built_on_a_replaced_state_is_not_installed() -> None:
    engine = PolicyEngine(audit=_Discard())
    engine.apply(_snapshot({"base": SHARED[0]}, 1))
    first = engine.prepare_change(StateChange(2, 1, {"a": PolicyDocument("a", SHARED[1], 2)}))
    second = engine.prepare_change(StateChange(3, 1, {"b": PolicyDocument("b", SHARED[2], 3)}))
    assert engine.install(second)
    # ``first`` holds version 2 without b's document: installing it would lose b.
    assert not engine.install(first)
    assert engine.status().documents == ("b", "base")


def test_digest_depends_on_the_documents_not_on_the_order_they_came_in() -> None:
    documents = _agents(40)
    one = PolicyEngine(audit=_Discard())
    one.apply(_snapshot(documents, 1))
    other = PolicyEngine(audit=_Discard())
    names = sorted(documents, reverse=True)
    for version, name in enumerate(names, start=1):
        other.install(
            other.prepare_change(
                StateChange(version, 1, {name: PolicyDocument(name, documents[name], version)})
            )
        )
    assert one.status().digest == other.status().digest
    other.install(other.prepare_change(StateChange(99, 1, {"agents/a3": None})))
    assert other.status().digest != one.status().digest
    one.apply(_snapshot({n: t for n, t in documents.items() if n != "agents/a3"}, 2))
    assert other.status().digest == one.status().digest


def _entity(agent: str, trust: str) -> str:
    return json.dumps(
        {"uid": {"type": "Symbi::Agent", "id": agent}, "attrs": {"trust": trust}, "parents": []},
        sort_keys=True,
        separators=(",", ":"),
    )


_TRUSTED = (
    '@id("trusted") permit(principal is Symbi::Agent, action == Symbi::Action::"publish", '
    'resource) when { principal has trust && principal.trust == "trusted" };'
)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.sampled_from(["trusted", "untrusted", None]),
        ),
        min_size=1,
        max_size=10,
    )
)
def test_entity_changes_equal_a_whole_parse(steps) -> None:
    topic = json.dumps({"uid": {"type": "Symbi::Topic", "id": "t"}, "attrs": {}, "parents": []})
    engine = PolicyEngine(audit=_Discard(), config=EngineConfig(cache_size=0))
    by_uid: dict[EntityUid, str] = {EntityUid("Symbi::Topic", "t"): topic}
    engine.apply(
        SourceSnapshot(
            (PolicyDocument("p", _TRUSTED, 1),),
            EntitiesDocument("[" + topic + "]", 1, by_uid=dict(by_uid)),
            1,
        )
    )
    for version, (agent, trust) in enumerate(steps, start=2):
        uid = EntityUid("Symbi::Agent", agent)
        text = None if trust is None else _entity(agent, trust)
        if text is None:
            by_uid.pop(uid, None)
        else:
            by_uid[uid] = text
        engine.install(engine.prepare_change(StateChange(1, version, entity_changes={uid: text})))
        fresh = PolicyEngine(audit=_Discard(), config=EngineConfig(cache_size=0))
        fresh.apply(
            SourceSnapshot(
                (PolicyDocument("p", _TRUSTED, 1),),
                EntitiesDocument("[" + ",".join(by_uid[u] for u in sorted(by_uid)) + "]", version),
                1,
            )
        )
        assert set(engine.state.entities.uids) == set(fresh.state.entities.uids)
        for name in ("a", "b", "c", "d"):
            request = AuthzRequest.from_mapping(
                {"principal": f'Agent::"{name}"', "action": "publish", "resource": 'Topic::"t"'}
            )
            assert engine.evaluate(request) == fresh.evaluate(request)
