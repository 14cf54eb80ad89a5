"""The driver: leadership drives activation; time and wake-ups drive ticks and cycles."""

from __future__ import annotations

import asyncio
import time

from symbi_scheduler import (
    LeaderElection,
    ManualClock,
    SchedulerCore,
    SchedulerDriver,
    SystemClock,
)
from symbi_scheduler.memory import (
    InMemoryJournal,
    InMemoryLeaseStore,
    RecordingDispatcher,
    RecordingLifecycle,
    StaticPolicy,
)


def driver(name, clock, journal, kv, dispatcher=None) -> SchedulerDriver:
    core = SchedulerCore(
        journal=journal,
        dispatcher=dispatcher or RecordingDispatcher(),
        policy=StaticPolicy(),
        lifecycle=RecordingLifecycle(),
        clock=clock,
    )
    election = LeaderElection(kv, clock, holder=name, ttl_s=3.0, renew_interval_s=1.0)
    return SchedulerDriver(core, election, clock)


async def test_standby_takes_over_with_the_queue_intact(harness) -> None:
    h = harness
    clock = ManualClock()
    journal = InMemoryJournal()
    kv = InMemoryLeaseStore(clock, ttl_s=3.0)
    a, b = driver("a", clock, journal, kv), driver("b", clock, journal, kv)
    first = await a.step()
    assert first.leading
    assert first.activated
    assert not (await b.step()).leading
    await a.core.submit(h.spec("t1"))
    await a.core.submit(h.spec("t2"))
    # a dies; b keeps stepping on its own schedule
    died = clock.monotonic()
    while True:
        clock.advance(0.25)
        r = await b.step()
        if r.leading:
            break
    assert r.activated
    assert clock.monotonic() - died <= 4.0
    assert [t.task_id for t in b.core.queued()] == ["t1", "t2"]
    # a comes back from a pause, still believing it leads: its lease view has expired, so
    # it deactivates instead of acting
    r = await a.step()
    assert not r.leading
    assert r.deactivated
    assert not a.core.active


async def test_step_ticks_and_schedules_while_leading(harness) -> None:
    h = harness
    clock = ManualClock()
    d = driver("a", clock, InMemoryJournal(), InMemoryLeaseStore(clock, ttl_s=3.0))
    await d.step()
    await d.core.heartbeat(h.hb("n1"))
    await d.core.submit(h.spec("t"))
    r = await d.step()
    assert r.decisions == 1
    assert d.core.task("t").state.value == "dispatched"
    assert r.next_at <= clock.monotonic() + 1.0


async def test_run_reacts_to_wake_and_stops_cleanly(harness) -> None:
    h = harness
    clock = SystemClock()
    dispatcher = RecordingDispatcher()
    d = driver("a", clock, InMemoryJournal(), InMemoryLeaseStore(clock, ttl_s=3.0), dispatcher)
    task = asyncio.create_task(d.run())
    try:
        deadline = time.monotonic() + 10
        while not d.core.active:
            assert time.monotonic() < deadline, "never became leader"
            await asyncio.sleep(0.01)
        await d.core.heartbeat(h.hb("n1"))
        await d.core.submit(h.spec("t"))
        d.wake()
        while not dispatcher.dispatched:
            assert time.monotonic() < deadline, "never dispatched"
            await asyncio.sleep(0.01)
        assert dispatcher.dispatched[0].task_id == "t"
        await d.stop()
        await asyncio.wait_for(task, 5)
        assert not d.core.active
        assert not d.election.is_leader
    finally:
        task.cancel()
