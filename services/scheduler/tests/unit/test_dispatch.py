"""Dispatch: acknowledgement deadlines, retries on other nodes, results, policy, cancel."""

from __future__ import annotations

import dataclasses

import pytest

from symbi_common.errors import FailedPrecondition, NotFound, Unavailable
from symbi_scheduler import (
    DispatchOptions,
    SchedulerOptions,
    TaskOutcome,
    TaskResult,
    TaskState,
    TransitionKind,
)

ACK = DispatchOptions().ack_timeout_s


async def test_order_carries_the_request_and_a_start_deadline(harness) -> None:
    h = harness
    await h.start(h.hb("n1", tiers=["docker", "gvisor"]))
    spec = h.spec("t", "high", tier="gvisor", mem=300, cpu=250)
    await h.core.submit(dataclasses.replace(spec, payload=b"run-spec", metadata={"k": "v"}))
    await h.cycle()
    (order,) = h.dispatcher.dispatched
    assert order.payload == b"run-spec"
    assert dict(order.metadata) == {"k": "v"}
    assert (order.dispatch_id, order.node_id, order.attempt) == ("t-1", "n1", 1)
    assert order.resources.vector == (300, 250, 0, 0)
    assert order.tier.value == "gvisor"
    assert order.not_after == h.clock.now() + ACK
    assert h.core.task("t").state is TaskState.DISPATCHED
    assert await h.ack(order)
    assert await h.ack(order)  # a duplicate acknowledgement is harmless
    assert h.state("t") == "running"
    assert [t.kind for t in h.lifecycle.transitions] == [TransitionKind.RUNNING]


async def test_missing_ack_retries_on_another_node_then_fails(harness) -> None:
    h = harness
    beats = [h.hb("n1"), h.hb("n2"), h.hb("n3"), h.hb("n4")]
    await h.start(*beats)
    await h.core.submit(h.spec("t"))
    nodes = []
    for attempt in range(1, 4):
        await h.cycle()
        order = h.dispatcher.dispatched[-1]
        assert order.dispatch_id == f"t-{attempt}"
        nodes.append(order.node_id)
        report = await h.advance(ACK, beat=beats)
    assert len(set(nodes)) == 3  # every retry went to a node that had not failed yet
    assert report.failed == ["t"]
    rec = h.core.task("t")
    assert rec.state is TaskState.FAILED
    assert rec.reason == (
        f"no start acknowledgement within {ACK:g}s after 3 dispatch attempt(s) (nodes: {', '.join(nodes)})"
    )
    assert h.lifecycle.transitions[-1].kind is TransitionKind.FAILED
    # each unacknowledged dispatch was also told to stop (in case it starts late)
    assert [s.dispatch_id for s in h.dispatcher.stopped] == ["t-1", "t-2", "t-3"]
    assert all(v.tasks == 0 for v in h.core.nodes())


async def test_retry_falls_back_to_a_tried_node_when_it_is_the_only_one(harness) -> None:
    h = harness
    await h.start(h.hb("n1"))
    await h.core.submit(h.spec("t"))
    await h.cycle()
    await h.advance(ACK, beat=[h.hb("n1")])
    assert h.core.task("t").tried_nodes == ("n1",)
    await h.cycle()
    order = h.dispatcher.dispatched[-1]
    assert (order.dispatch_id, order.node_id) == ("t-2", "n1")
    await h.ack(order)
    assert h.core.task("t").tried_nodes == ()
    assert h.core.task("t").ack_failures == 0


async def test_late_ack_of_a_superseded_dispatch_stops_that_run(harness) -> None:
    h = harness
    await h.start(h.hb("n1"), h.hb("n2"))
    await h.core.submit(h.spec("t"))
    await h.cycle()
    first = h.dispatcher.dispatched[-1]
    await h.advance(ACK, beat=[h.hb("n1"), h.hb("n2")])
    await h.cycle()
    second = h.dispatcher.dispatched[-1]
    assert second.node_id != first.node_id
    assert not await h.ack(first)
    assert h.dispatcher.stopped[-1].dispatch_id == first.dispatch_id
    assert h.dispatcher.stopped[-1].node_id == first.node_id
    assert await h.ack(second)
    assert h.node_of("t") == second.node_id


async def test_results_free_capacity_and_end_tasks(harness) -> None:
    h = harness
    await h.start(h.hb("n1", max_tasks=1))
    await h.submit(h.spec("a"), h.spec("b"), h.spec("c"))
    await h.cycle()
    await h.ack_all()
    assert await h.finish("a", TaskOutcome.FAILED) is not None
    assert h.core.task("a").state is TaskState.FAILED
    assert h.core.task("a").reason == "failed"
    assert h.core.needs_cycle
    await h.cycle()
    await h.ack_all()
    rec = await h.finish("b", TaskOutcome.STOPPED)
    assert rec.state is TaskState.FAILED
    assert rec.reason == "stopped by its node"
    await h.cycle()
    await h.ack_all()
    # A stale result (an older dispatch id) changes nothing.
    stale = TaskResult("c", "c-0", "n1", TaskOutcome.COMPLETED)
    assert await h.core.task_finished(stale) is None
    assert h.state("c") == "running"
    final = await h.core.task_finished(
        TaskResult("c", "c-1", "n1", TaskOutcome.COMPLETED, exit_code=0)
    )
    assert final.exit_code == 0
    assert h.core.status().running == 0
    assert h.journal.position == h.core.status().journal_position
    assert len(h.journal) == 0  # finished tasks leave the journal


async def test_policy_deny_fails_the_task_with_the_reason(harness) -> None:
    h = harness
    h.policy.deny = ["agent-bad"]
    h.policy.reason = "agent may not use gvisor nodes at night"
    await h.start(h.hb("n1"))
    await h.submit(h.spec("bad"), h.spec("good"))
    report = await h.cycle()
    assert report.failed == ["bad"]
    assert [p.task_id for p in report.placements] == ["good"]
    rec = h.core.task("bad")
    assert rec.state is TaskState.FAILED
    assert (
        rec.reason == "policy denied allocate on node n1: agent may not use gvisor nodes at night"
    )
    assert [(t.task_id, t.kind) for t in h.lifecycle.transitions] == [
        ("bad", TransitionKind.FAILED)
    ]
    assert [o.task_id for o in h.dispatcher.dispatched] == ["good"]


async def test_policy_unavailable_leaves_tasks_queued_in_place(harness) -> None:
    h = harness
    await h.start(h.hb("n1"))
    await h.submit(h.spec("a"), h.spec("b"))
    h.policy.unavailable = True
    report = await h.cycle()
    assert report.stalled.startswith("policy: policy service unavailable")
    assert report.placements == []
    assert [r.task_id for r in h.core.queued()] == ["a", "b"]
    h.policy.unavailable = False
    report = await h.cycle()
    assert [p.task_id for p in report.placements] == ["a", "b"]


async def test_dispatcher_down_stalls_and_the_deadline_retries(harness) -> None:
    h = harness
    await h.start(h.hb("n1"), h.hb("n2"))
    await h.submit(h.spec("a"), h.spec("b"))
    h.dispatcher.unavailable = True
    report = await h.cycle()
    assert report.stalled == "dispatcher: the order could not be sent"
    assert [p.task_id for p in report.placements] == ["a"]
    assert h.state("a") == "dispatched"  # journaled before sending
    assert h.state("b") == "queued"
    h.dispatcher.unavailable = False
    report = await h.advance(ACK, beat=[h.hb("n1"), h.hb("n2")])
    assert report.requeued == ["a"]
    report = await h.cycle()
    assert sorted(p.task_id for p in report.placements) == ["a", "b"]


async def test_cancel_anywhere(harness) -> None:
    h = harness
    await h.start(h.hb("n1", max_tasks=1))
    await h.submit(h.spec("run"), h.spec("wait"))
    await h.cycle()
    await h.ack_all()
    final = await h.core.cancel("wait", "user asked")
    assert final.state is TaskState.CANCELLED
    assert "wait" not in [r.task_id for r in h.core.queued()]
    await h.core.cancel("run")
    assert h.dispatcher.stopped[-1].task_id == "run"
    assert h.core.nodes()[0].tasks == 0
    with pytest.raises(FailedPrecondition, match="already ended"):
        await h.core.cancel("run")
    with pytest.raises(NotFound):
        await h.core.cancel("never")
    assert [e.state.value for e in h.events if e.task_id == "wait"] == ["queued", "cancelled"]
    # Lifecycle hears of both cancellations (contract C2: STOPPED "cancelled").
    cancelled = [t for t in h.lifecycle.transitions if t.kind is TransitionKind.CANCELLED]
    assert [(t.task_id, t.reason) for t in cancelled] == [
        ("wait", "user asked"),
        ("run", "cancelled"),
    ]


async def test_inactive_core_refuses_work(harness) -> None:
    h = harness
    with pytest.raises(Unavailable, match="not the active one"):
        await h.core.submit(h.spec("t"))
    await h.start()
    await h.core.deactivate()
    with pytest.raises(Unavailable):
        await h.core.schedule()
    assert h.core.next_deadline() is None


async def test_custom_attempt_bound(make_harness) -> None:
    h = make_harness(SchedulerOptions(dispatch=DispatchOptions(max_attempts=1, ack_timeout_s=2)))
    await h.start(h.hb("n1"))
    await h.core.submit(h.spec("t"))
    await h.cycle()
    report = await h.advance(2, beat=[h.hb("n1")])
    assert report.failed == ["t"]
    assert "after 1 dispatch attempt(s)" in h.core.task("t").reason
