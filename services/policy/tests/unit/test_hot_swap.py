"""Hot swap and the decision cache: a bad set never replaces a good one; changes invalidate."""

from __future__ import annotations

import pytest

from symbi_policy import EVENT_SET_INSTALLED, EVENT_SET_REJECTED, Allow, Deny, PolicyValidationError

A = 'Agent::"a"'
GOOD = 'permit(principal, action == Symbi::Action::"publish", resource);'
BAD = 'permit(principal, action == Symbi::Action::"publish", resource) when { context.x == };'


def test_bad_set_never_replaces_the_good_one(make_engine, snapshot, sink, req):
    engine = make_engine(snap=snapshot({"p": GOOD}, version=1))
    before = engine.state
    with pytest.raises(PolicyValidationError) as caught:
        engine.apply(snapshot({"p": GOOD, "q": BAD}, version=2))
    problem = caught.value.problems[0]
    assert (problem.document, problem.line, problem.column) == ("q", 1, BAD.index("}") + 1)
    assert engine.state is before
    assert engine.version == 1
    assert isinstance(engine.evaluate(req(A, "publish", 'Topic::"t"')), Allow)
    status = engine.status()
    assert status.last_rejection is not None
    assert status.last_rejection.version == 2
    rejected = sink.of_type(EVENT_SET_REJECTED)
    assert rejected[0].details["in_force"] == 1
    assert f"q:1:{BAD.index('}') + 1}" in rejected[0].details["problems"][0]


def test_bad_entities_never_replace_good_ones(make_engine, snapshot, req):
    engine = make_engine(snap=snapshot({"p": GOOD}))
    with pytest.raises(PolicyValidationError, match="entities"):
        engine.apply(
            snapshot(
                {"p": GOOD},
                [{"uid": {"type": "Agent", "id": "a"}, "attrs": {"trust": 5}}],
                entities_version=2,
            )
        )
    assert engine.entities_version == 1


def test_colliding_ids_across_documents_are_rejected(make_engine, snapshot):
    engine = make_engine(snap=snapshot({"p": GOOD}))
    doc = '@id("x") permit(principal, action, resource);'
    with pytest.raises(PolicyValidationError, match="already used in document 'a'"):
        engine.apply(snapshot({"a": doc, "b": doc}, version=2))
    assert engine.version == 1


def test_version_is_in_every_decision_and_changes_take_effect(make_engine, snapshot, sink, req):
    engine = make_engine(snap=snapshot({"p": GOOD}, version=1))
    request = req(A, "publish", 'Topic::"t"')
    assert engine.evaluate(request).version == 1
    engine.apply(snapshot({"p": "forbid(principal, action, resource);"}, version=5))
    decision = engine.evaluate(request)
    assert isinstance(decision, Deny)
    assert decision.version == 5
    assert [e.details["version"] for e in sink.of_type(EVENT_SET_INSTALLED)] == [1, 5]


def test_cache_hits_and_invalidation_on_any_change(make_engine, snapshot, req):
    engine = make_engine(snap=snapshot({"p": GOOD}, version=1))
    request = req(A, "publish", 'Topic::"t"')
    first = engine.evaluate(request)
    assert engine.evaluate(request) is first
    assert engine.stats.cache_hits == 1
    # an entities-only change invalidates too
    engine.apply(snapshot({"p": GOOD}, version=1, entities_version=2))
    again = engine.evaluate(request)
    assert again is not first
    assert again.entities_version == 2
    assert engine.stats.cache_hits == 1
    # a context difference is a different request
    engine.evaluate(req(A, "publish", 'Topic::"t"', context={"priority": "high"}))
    assert engine.stats.cache_hits == 1


def test_cache_is_bounded(make_engine, snapshot, req):
    from symbi_policy import EngineConfig

    engine = make_engine(EngineConfig(cache_size=2), snapshot({"p": GOOD}))
    for topic in ("t", "secret", "t"):
        engine.evaluate(req(A, "publish", f'Topic::"{topic}"'))
    assert engine.stats.cache_hits == 1
    engine.evaluate(req('Agent::"b"', "publish", 'Topic::"t"'))  # evicts "secret"
    engine.evaluate(req(A, "publish", 'Topic::"secret"'))
    assert engine.stats.cache_hits == 1


def test_older_state_is_not_installed(make_engine, snapshot):
    engine = make_engine(snap=snapshot({"p": GOOD}, version=3))
    older = engine.prepare(snapshot({"p": "forbid(principal, action, resource);"}, version=2))
    assert engine.install(older) is False
    assert engine.version == 3


def test_status_reports_what_is_in_force(make_engine, snapshot):
    engine = make_engine(snap=snapshot({"b": GOOD, "a": GOOD}, version=4))
    status = engine.status()
    assert status.version == 4
    assert status.documents == ("a", "b")
    assert status.policy_count == 2
    assert status.entity_count == 9
    assert len(status.digest) == 64
    assert status.last_rejection is None


def test_cache_tells_true_from_one(make_engine, snapshot, req):
    policy = 'permit(principal, action == Symbi::Action::"publish", resource) when { context has port && context.port == 1 };'
    engine = make_engine(snap=snapshot({"p": policy}))
    assert isinstance(engine.evaluate(req(A, "publish", 'Topic::"t"', context={"port": 1})), Allow)
    # a Bool where the schema wants a Long is rejected, not served from the cache
    assert isinstance(
        engine.evaluate(req(A, "publish", 'Topic::"t"', context={"port": True})), Deny
    )
