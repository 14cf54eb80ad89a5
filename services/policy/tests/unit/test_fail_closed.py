"""Fail closed: engine errors, timeouts and unauditable allows all become denies."""

from __future__ import annotations

import cedarpy
import pytest

from symbi_policy import (
    EVENT_DECISION,
    EVENT_ENGINE_FAILURE,
    Allow,
    Deny,
    EngineConfig,
    PolicyEngine,
)

A = 'Agent::"a"'


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.step = 0.0  # added on every read: makes "evaluation took" long

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_engine_exception_denies_and_audits(engine, sink, req, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(cedarpy, "is_authorized", explode)
    decision = engine.evaluate(req(A, "publish", 'Topic::"t"'))
    assert isinstance(decision, Deny)
    assert decision.fail_closed
    assert "engine error: RuntimeError: boom" in decision.reasons[0]
    failures = sink.of_type(EVENT_ENGINE_FAILURE)
    assert len(failures) == 1
    assert "boom" in failures[0].details["cause"]
    assert engine.stats.fail_closed == 1


def test_engine_panic_is_caught_too(engine, req, monkeypatch):
    class PanicLike(BaseException):  # pyo3's PanicException derives from BaseException
        pass

    def panic(*args, **kwargs):
        raise PanicLike("rust panicked")

    monkeypatch.setattr(cedarpy, "is_authorized", panic)
    decision = engine.evaluate(req(A, "publish", 'Topic::"t"'))
    assert isinstance(decision, Deny)
    assert decision.fail_closed


def test_fail_closed_denies_are_not_cached(engine, req, monkeypatch):
    request = req(A, "publish", 'Topic::"t"')
    with monkeypatch.context() as patch:
        patch.setattr(
            cedarpy, "is_authorized", lambda *a, **k: (_ for _ in ()).throw(ValueError("x"))
        )
        assert isinstance(engine.evaluate(request), Deny)
    assert isinstance(engine.evaluate(request), Allow)


def test_cancellation_is_not_turned_into_a_decision(engine, req, monkeypatch):
    import asyncio

    def cancelled(*args, **kwargs):
        raise asyncio.CancelledError

    monkeypatch.setattr(cedarpy, "is_authorized", cancelled)
    with pytest.raises(asyncio.CancelledError):
        engine.evaluate(req(A, "publish", 'Topic::"t"'))


def test_batch_failure_falls_back_to_single_decisions(engine, req, monkeypatch):
    original = cedarpy.is_authorized_batch

    def explode_on_many(requests, *args, **kwargs):
        if len(requests) > 1:
            raise RuntimeError("batch boom")
        return original(requests, *args, **kwargs)

    # cedarpy's single call goes through is_authorized_batch with one request
    monkeypatch.setattr(cedarpy, "is_authorized_batch", explode_on_many)
    decisions = engine.evaluate_batch(
        [req(A, "publish", 'Topic::"t"'), req('Agent::"b"', "publish", 'Topic::"t"')]
    )
    assert [type(d) for d in decisions] == [Allow, Deny]


def test_deadline_already_passed(sink, snapshot, req):
    clock = FakeClock()
    engine = PolicyEngine(audit=sink, clock=clock)
    engine.apply(snapshot())
    decision = engine.evaluate(req(A, "publish", 'Topic::"t"'), deadline=clock.now - 1)
    assert isinstance(decision, Deny)
    assert decision.fail_closed
    assert "deadline passed before evaluation" in decision.reasons[0]
    assert sink.of_type(EVENT_ENGINE_FAILURE)


def test_slow_evaluation_is_a_timeout(sink, snapshot, req):
    clock = FakeClock()
    engine = PolicyEngine(audit=sink, clock=clock, config=EngineConfig(max_evaluation_seconds=0.01))
    engine.apply(snapshot())
    clock.step = 0.05
    decision = engine.evaluate(req(A, "publish", 'Topic::"t"'))
    assert isinstance(decision, Deny)
    assert decision.fail_closed
    assert "timed out" in decision.reasons[0]
    clock.step = 0.0
    assert isinstance(engine.evaluate(req(A, "publish", 'Topic::"t"')), Allow)


def test_deadline_during_batch(sink, snapshot, req):
    clock = FakeClock()
    engine = PolicyEngine(audit=sink, clock=clock)
    engine.apply(snapshot())
    clock.step = 0.5
    decisions = engine.evaluate_batch(
        [req(A, "publish", 'Topic::"t"')] * 2, deadline=clock.now + 0.6
    )
    assert all(isinstance(d, Deny) and d.fail_closed for d in decisions)


def test_policy_runtime_error_fails_closed(make_engine, snapshot, req):
    # A forbid that errors at run time (integer overflow) must not let the permit through.
    policies = {
        "p": (
            'permit(principal, action == Symbi::Action::"publish", resource);\n'
            'forbid(principal, action == Symbi::Action::"publish", resource)\n'
            "when { context has memory_mb && context.memory_mb * 4611686018427387904 > 0 };"
        )
    }
    snap = snapshot(policies)
    strict = make_engine(snap=snap)
    big = {"memory_mb": 4}
    decision = strict.evaluate(req(A, "publish", 'Topic::"t"', context=big))
    assert isinstance(decision, Deny)
    assert decision.fail_closed
    assert "policy evaluation error" in decision.reasons[0]
    # Cedar's own semantics (skip the erroring policy) only when explicitly chosen
    lenient = make_engine(EngineConfig(fail_on_policy_errors=False), snap)
    assert isinstance(lenient.evaluate(req(A, "publish", 'Topic::"t"', context=big)), Allow)


def test_unauditable_allow_becomes_deny(make_engine, sink, req):
    engine = make_engine(EngineConfig(audit_allows=True))
    sink.refuse = True
    decision = engine.evaluate(req(A, "publish", 'Topic::"t"'))
    assert isinstance(decision, Deny)
    assert decision.fail_closed
    assert "audit unavailable" in decision.reasons[0]
    assert engine.stats.audit_failures == 1
    sink.refuse = False
    # the cached allow is still an allow once audit works again
    assert isinstance(engine.evaluate(req(A, "publish", 'Topic::"t"')), Allow)


def test_audit_full_allow_is_withdrawn_without_audit(engine, sink, req):
    sink.refuse = True
    decision = engine.evaluate(req(A, "tool_call", 'Tool::"rm"'))  # audit_full
    assert isinstance(decision, Deny)
    assert decision.fail_closed
    # a plain allow (audit not required) is unaffected
    assert isinstance(engine.evaluate(req(A, "publish", 'Topic::"t"')), Allow)


def test_unauditable_deny_stays_deny(engine, sink, req):
    sink.refuse = True
    decision = engine.evaluate(req('Agent::"b"', "publish", 'Topic::"t"'))
    assert isinstance(decision, Deny)
    assert not decision.fail_closed
    assert engine.stats.audit_failures == 1
    assert not sink.of_type(EVENT_DECISION)


def test_empty_engine_denies_everything(sink, req):
    engine = PolicyEngine(audit=sink)
    decision = engine.evaluate(req(A, "publish", 'Topic::"t"'))
    assert isinstance(decision, Deny)
    assert decision.version == 0
