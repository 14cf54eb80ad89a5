"""Node registry and node loss: heartbeats, the 3-missed-heartbeats rule, requeue, orphans."""

from __future__ import annotations

from symbi_scheduler import (
    DispatchOptions,
    NodeOptions,
    SchedulerOptions,
    TaskOutcome,
    TaskState,
    TransitionKind,
)

INTERVAL = NodeOptions().heartbeat_interval_s


async def test_node_is_lost_after_exactly_three_missed_heartbeats(harness) -> None:
    h = harness
    await h.start(h.hb("n1"), h.hb("n2"))
    report = await h.advance(3 * INTERVAL - 0.01, beat=[h.hb("n2")])
    assert report.lost_nodes == []
    report = await h.advance(0.01)
    assert report.lost_nodes == ["n1"]
    views = {v.node_id: v for v in h.core.nodes()}
    assert not views["n1"].reachable
    assert views["n2"].reachable
    report = await h.advance(0.5)
    assert report.lost_nodes == []  # reported once
    assert h.core.next_deadline() == views["n2"].last_seen + 3 * INTERVAL


async def test_lost_node_work_is_requeued_and_runs_elsewhere(harness) -> None:
    h = harness
    await h.start(h.hb("n1", max_tasks=2), h.hb("n2", max_tasks=0))
    await h.submit(h.spec("run"), h.spec("disp"))
    await h.cycle()
    await h.ack(h.pending_orders()[0])  # "run" starts, "disp" is still unacknowledged
    assert h.state("run") == "running"
    assert h.state("disp") == "dispatched"
    n2 = h.hb("n2", max_tasks=4)
    report = await h.advance(3 * INTERVAL, beat=[n2])
    assert report.lost_nodes == ["n1"]
    assert sorted(report.requeued) == ["disp", "run"]
    for t in ("run", "disp"):
        rec = h.core.task(t)
        assert rec.state is TaskState.QUEUED
        assert rec.node_losses == 1
        assert rec.reason == "node n1 became unreachable"
    assert [(t.task_id, t.kind) for t in h.lifecycle.transitions][-1] == (
        "run",
        TransitionKind.REQUEUED,
    )
    await h.cycle()
    assert h.node_of("run") == "n2"
    assert h.node_of("disp") == "n2"
    assert h.core.task("run").dispatch_id == "run-2"


async def test_a_task_that_keeps_losing_its_node_fails(make_harness) -> None:
    h = make_harness(SchedulerOptions(dispatch=DispatchOptions(max_node_losses=1)))
    await h.start(h.hb("n1"))
    await h.submit(h.spec("poison"))
    for _ in range(2):
        await h.cycle()
        await h.ack_all()
        await h.advance(3 * INTERVAL)
        await h.core.heartbeat(h.hb("n1"))  # the node comes back (rebooted, empty)
    rec = h.core.task("poison")
    assert rec.state is TaskState.FAILED
    assert "lost with its node 2 times" in rec.reason
    assert h.lifecycle.transitions[-1].kind is TransitionKind.FAILED


async def test_returning_node_is_told_to_stop_runs_it_should_not_have(harness) -> None:
    h = harness
    await h.start(h.hb("n1"), h.hb("n2"))
    await h.submit(h.spec("t"))
    await h.cycle()
    await h.ack_all()
    first = h.node_of("t")
    other = "n2" if first == "n1" else "n1"
    await h.advance(3 * INTERVAL, beat=[h.hb(other)])
    await h.cycle()
    await h.ack_all()
    assert h.node_of("t") == other
    # The lost node was only partitioned and still runs the old copy.
    await h.core.heartbeat(h.hb(first, running=["t", "unknown"]))
    stops = {(s.node_id, s.task_id, s.dispatch_id) for s in h.dispatcher.stopped}
    assert (first, "t", None) in stops
    assert (first, "unknown", None) in stops
    # The current run is not touched.
    await h.core.heartbeat(h.hb(other, running=["t"]))
    assert not any(s.node_id == other for s in h.dispatcher.stopped)


async def test_heartbeats_are_kept_on_standby_for_a_fast_takeover(harness) -> None:
    h = harness
    await h.core.heartbeat(h.hb("n1"))
    await h.core.activate()
    await h.submit(h.spec("t"))
    report = await h.cycle()
    assert [p.node_id for p in report.placements] == ["n1"]


async def test_capacity_follows_heartbeats_and_cordon(harness) -> None:
    h = harness
    await h.start(h.hb("n1", mem=1024))
    await h.submit(h.spec("a", mem=1024), h.spec("b", mem=1024))
    report = await h.cycle()
    assert [p.task_id for p in report.placements] == ["a"]
    await h.core.heartbeat(h.hb("n1", mem=2048))  # the node grew
    assert h.core.needs_cycle
    report = await h.cycle()
    assert [p.task_id for p in report.placements] == ["b"]
    await h.core.heartbeat(h.hb("n1", mem=8192, schedulable=False))
    await h.submit(h.spec("c"))
    assert (await h.cycle()).placements == []


async def test_status_reports_nodes_and_utilisation(harness) -> None:
    h = harness
    await h.start(h.hb("n1", mem=4096, cpu=4000), h.hb("n2", mem=4096, cpu=4000))
    await h.submit(h.spec("a", "high", mem=2048, cpu=1000), h.spec("b", "low", mem=2048, cpu=1000))
    await h.submit(*(h.spec(f"q{i}", "low", mem=8000) for i in range(3)))
    await h.cycle()
    await h.ack_all()
    s = h.core.status()
    assert s.active
    assert s.running == 2
    assert s.queued_total == 3
    assert s.queued[h.spec("x", "low").priority] == 3
    assert (s.nodes_total, s.nodes_reachable, s.nodes_accepting) == (2, 2, 2)
    assert s.capacity[:2] == (8192, 8000)
    assert s.utilisation["memory_mb"] == 0.5
    assert s.utilisation["cpu_millicores"] == 0.25
    assert s.decisions_total == 2
    assert s.decisions_per_s == 2 / h.options.rate_window_s
    h.clock.advance(h.options.rate_window_s + 1)
    assert h.core.status().decisions_per_s == 0


async def test_removed_node_work_is_requeued_and_it_is_forgotten(harness) -> None:
    h = harness
    await h.start(h.hb("n1"), h.hb("n2", max_tasks=0))
    await h.submit(h.spec("t"))
    await h.cycle()
    await h.ack_all()
    report = await h.core.remove_node("n1")
    assert report.requeued == ["t"]
    assert h.core.task("t").reason == "node n1 was removed"
    assert [v.node_id for v in h.core.nodes()] == ["n2"]
    await h.core.heartbeat(h.hb("n1"))  # it may come back
    assert (await h.cycle()).placements[0].node_id == "n1"


async def test_long_unreachable_nodes_are_forgotten(make_harness) -> None:
    h = make_harness(SchedulerOptions(nodes=NodeOptions(forget_after_s=60)))
    await h.start(h.hb("gone"), h.hb("alive"))
    await h.advance(3 * INTERVAL, beat=[h.hb("alive")])
    assert len(h.core.nodes()) == 2
    for _ in range(30):
        await h.advance(INTERVAL, beat=[h.hb("alive")])
    assert [v.node_id for v in h.core.nodes()] == ["alive"]


async def test_status_counts_tasks_a_cycle_is_looking_at(harness) -> None:
    h = harness
    await h.start(h.hb("n1"))
    await h.submit(h.spec("a", "high"), h.spec("b", "low"))
    seen = []
    original = h.policy.allocate

    async def allocate(request):
        seen.append(h.core.status().queued_total)  # mid-cycle, "a" is out of the heap
        return await original(request)

    h.policy.allocate = allocate
    await h.cycle()
    assert seen == [2, 1]
    assert h.core.status().queued_total == 0


async def test_a_run_the_node_reports_lost_is_requeued_and_runs_again(harness) -> None:
    h = harness
    await h.start(h.hb("n1"), h.hb("n2"))
    await h.submit(h.spec("t"))
    await h.cycle()
    await h.ack_all()
    first = h.node_of("t")
    rec = await h.finish("t", TaskOutcome.LOST)
    assert rec.state is TaskState.QUEUED
    assert rec.node_losses == 1
    assert h.lifecycle.transitions[-1].kind is TransitionKind.REQUEUED
    assert "lost the run" in h.lifecycle.transitions[-1].reason
    await h.cycle()
    assert h.core.task("t").dispatch_id == "t-2"
    assert h.node_of("t") in ("n1", "n2")
    assert first is not None


async def test_an_old_heartbeat_counts_from_when_it_was_sent(harness) -> None:
    h = harness
    await h.start()
    await h.core.heartbeat(h.hb("n1"), age_s=2.5)
    # Sent 2.5 s ago: it counts as silent for the timeout 2.5 s sooner.
    report = await h.advance(3 * INTERVAL - 2.4)
    assert report.lost_nodes == ["n1"]


async def test_a_heartbeat_crossing_a_cancel_or_a_result_provokes_no_stop(harness) -> None:
    h = harness
    await h.start(h.hb("n1"))
    await h.submit(h.spec("c"), h.spec("d"))
    await h.cycle()
    await h.ack_all()
    await h.core.cancel("c", "test")
    await h.finish("d")
    assert [(s.task_id, s.dispatch_id is None) for s in h.dispatcher.stopped] == [("c", False)]
    # Sent before the node heard of the cancel and before its own result: both still listed.
    await h.core.heartbeat(h.hb("n1", running=["c", "d"]))
    assert [s.task_id for s in h.dispatcher.stopped] == ["c"]
    # Still reported a node timeout later: runs the node should not have.
    h.clock.advance(3 * INTERVAL)
    await h.core.heartbeat(h.hb("n1", running=["c", "d"]))
    unassigned = {(s.task_id, s.dispatch_id) for s in h.dispatcher.stopped[1:]}
    assert unassigned == {("c", None), ("d", None)}
