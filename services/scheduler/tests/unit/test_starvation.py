"""Starvation through the core: aging lets low priority through a stream of high-priority
work; held-back capacity keeps small tasks from starving a large one; a blocked pinned task
does not block work that can run elsewhere."""

from __future__ import annotations

from symbi_scheduler import QueueOptions, SchedulerOptions


async def test_low_priority_runs_despite_a_constant_stream_of_high_work(make_harness) -> None:
    aging = 10.0
    h = make_harness(SchedulerOptions(queue=QueueOptions(aging_interval_s=aging)))
    await h.start(h.hb("n1", max_tasks=1))
    await h.core.submit(h.spec("low", "low"))
    await h.core.submit(h.spec("high0", "high"))
    started = {}
    for second in range(1, 200):
        # every second: a new High task arrives, the running task finishes, one more starts
        await h.core.submit(h.spec(f"high{second}", "high"))
        for rec in h.core.tasks():
            if rec.state.value == "running":
                await h.finish(rec.task_id)
        for p in (await h.cycle()).placements:
            started[p.task_id] = second
        await h.ack_all()
        if "low" in started:
            break
        await h.advance(1.0, beat=[h.hb("n1", max_tasks=1)])
    # Low ranks with a High task that arrived 2 x aging later; it starts once those are done.
    assert "low" in started
    assert started["low"] <= 2 * aging + 2
    assert started["high0"] == 1


async def test_small_tasks_do_not_starve_a_large_one(harness) -> None:
    h = harness
    await h.start(h.hb("n1", mem=4096))
    await h.submit(*(h.spec(f"s{i}", mem=1024) for i in range(4)))
    await h.cycle()
    await h.ack_all()
    await h.core.submit(h.spec("big", mem=4096))
    for i in range(4):
        # one small task finishes, a new one arrives: without holding back, the newcomer
        # would always take the freed room and "big" would wait forever
        await h.finish(f"s{i}")
        await h.core.submit(h.spec(f"late{i}", mem=1024))
        report = await h.cycle()
        if i < 3:
            assert report.placements == []
    assert [p.task_id for p in report.placements] == ["big"]
    await h.ack_all()
    await h.finish("big")
    report = await h.cycle()
    assert sorted(p.task_id for p in report.placements) == [f"late{i}" for i in range(4)]


async def test_blocked_pinned_task_does_not_block_other_nodes(harness) -> None:
    h = harness
    await h.start(
        h.hb("iso", tiers=["gvisor"], mem=1024), h.hb("plain", tiers=["docker"], mem=4096)
    )
    await h.submit(h.spec("g1", "high", tier="gvisor", mem=1024))
    await h.cycle()
    await h.submit(h.spec("g2", "high", tier="gvisor", mem=1024), h.spec("d1", "low", mem=512))
    report = await h.cycle()
    assert [p.task_id for p in report.placements] == ["d1"]
    assert report.waiting == 1
    assert h.state("g2") == "queued"
