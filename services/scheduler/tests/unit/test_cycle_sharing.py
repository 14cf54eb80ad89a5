"""How a scheduling cycle shares the core: it does not spin on tasks that cannot be placed,
does not search again for them until room may have appeared, steps aside for waiting
events, and never makes a heartbeat that only says "still here" wait for it."""

from __future__ import annotations

import asyncio

from symbi_scheduler import (
    AllocationDecision,
    AllocationRequest,
    SchedulerOptions,
    StartReport,
    TaskOutcome,
    TaskResult,
    TaskState,
)

from .conftest import Harness


async def test_a_cycle_that_leaves_tasks_waiting_does_not_ask_for_another(harness) -> None:
    h = harness
    await h.start(h.hb("n1", mem=1024))
    await h.submit(h.spec("fits", mem=1024), h.spec("waits", mem=1024))
    await h.cycle()
    assert h.state("waits") == "queued"
    assert not h.core.needs_cycle  # no busy loop over the waiting task


class CountingPlanner:
    """The core's preemption planner, counting searches."""

    def __init__(self, planner: object) -> None:
        self.planner = planner
        self.searched: list[str] = []

    def may_preempt(self, priority: object) -> bool:
        return self.planner.may_preempt(priority)  # type: ignore[attr-defined,no-any-return]

    def plan(self, spec: object, *args: object, **kwargs: object) -> object:
        self.searched.append(spec.task_id)  # type: ignore[attr-defined]
        return self.planner.plan(spec, *args, **kwargs)  # type: ignore[attr-defined]


async def test_an_unplaceable_task_is_passed_over_cheaply(make_harness) -> None:
    h: Harness = make_harness(SchedulerOptions())
    await h.start(h.hb("n1", mem=1024))
    await h.submit(h.spec("run", "low", mem=1024, preemptible=False))
    await h.cycle()
    await h.ack_all()
    await h.submit(h.spec("crit", "critical", mem=1024))
    counting = CountingPlanner(h.core._planner)
    h.core._planner = counting  # type: ignore[assignment]
    calls = counting.searched
    await h.cycle()
    await h.core.schedule()
    await h.core.schedule()
    assert calls == ["crit"]  # searched once; the same room, no new search
    h.clock.advance(h.options.nodes.heartbeat_interval_s)
    await h.core.schedule()
    assert calls == ["crit", "crit"]  # time passed (budgets, cooldowns): searched again
    await h.finish("run")
    await h.core.schedule()
    assert h.state("crit") == "dispatched"


async def test_a_cycle_steps_aside_for_events_waiting_for_the_core(harness) -> None:
    h = harness
    await h.start(h.hb("n1", max_tasks=64))
    await h.submit(*(h.spec(f"t{i}") for i in range(20)))

    class SlowPolicy:
        async def allocate(self, request: AllocationRequest) -> AllocationDecision:
            await asyncio.sleep(0.005)
            return AllocationDecision(True)

    h.core._policy = SlowPolicy()
    cycle = asyncio.create_task(h.core.schedule())
    await asyncio.sleep(0.001)
    waiting = asyncio.create_task(
        h.core.task_finished(TaskResult("t0", "x", "n1", TaskOutcome.FAILED))
    )
    report = await cycle
    await waiting
    assert report.out_of_time
    assert 0 < report.decisions < 20
    assert h.core.needs_cycle  # the rest follows in the next cycle


async def test_still_here_heartbeats_do_not_wait_for_a_cycle(harness) -> None:
    h = harness
    await h.start(h.hb("n1"))
    async with h.core._lock:  # a long cycle holds the core
        await asyncio.wait_for(h.core.heartbeat(h.hb("n1")), timeout=1)
    # A heartbeat that changes something does wait for the core.
    async with h.core._lock:
        pending = asyncio.create_task(h.core.heartbeat(h.hb("n1", mem=8192)))
        await asyncio.sleep(0.01)
        assert not pending.done()
    await pending
    assert h.core.nodes()[0].capacity.memory_mb == 8192


async def test_node_reports_are_applied_together_in_order(harness) -> None:
    h = harness
    await h.start(h.hb("n1"))
    await h.submit(h.spec("a"), h.spec("b"))
    await h.cycle()
    orders = {o.task_id: o for o in h.dispatcher.dispatched}
    results = await h.core.node_reports(
        [
            StartReport("a", orders["a"].dispatch_id, "n1"),
            StartReport("b", orders["b"].dispatch_id, "n1"),
            TaskResult("a", orders["a"].dispatch_id, "n1", TaskOutcome.COMPLETED),
            StartReport("zz", "zz-1", "n1"),  # unknown: refused, the rest applies
        ]
    )
    assert results[:2] == [True, True]
    assert results[3] is False
    assert h.core.task("a").state is TaskState.COMPLETED
    assert h.state("b") == "running"
