"""Random operation sequences against the core's bookkeeping invariants, and rebuilding from
the journal after each sequence gives the same state."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbi_common.errors import FailedPrecondition
from symbi_scheduler import (
    DispatchOptions,
    PreemptionOptions,
    SchedulerOptions,
    TaskOutcome,
    TaskResult,
    TaskState,
)

NODES = ("n1", "n2")

action = st.one_of(
    st.tuples(
        st.just("submit"),
        st.sampled_from(["critical", "high", "normal", "low"]),
        st.sampled_from([256, 1024, 2048, 3072]),
        st.sampled_from(["docker", "gvisor"]),
    ),
    st.tuples(st.just("cycle")),
    st.tuples(st.just("ack"), st.integers(0, 50)),
    st.tuples(st.just("ack-all")),
    st.tuples(
        st.just("finish"),
        st.integers(0, 50),
        st.sampled_from(list(TaskOutcome)),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(
        st.just("time"),
        st.sampled_from([0.5, 3.0, 7.0]),
        st.sets(st.sampled_from(NODES)) | st.just(set(NODES)),
    ),
)


def beat(h, node_id):
    tiers = ["docker", "gvisor"] if node_id == "n1" else ["docker"]
    return h.hb(node_id, mem=4096, max_tasks=2, tiers=tiers)


def check(h) -> None:
    core = h.core
    tasks = {r.task_id: r for r in core.tasks()}
    queued = list(core._queue)
    assert sorted(queued) == sorted(t for t, r in tasks.items() if r.state is TaskState.QUEUED)
    for node in core._nodes:
        charged = {t for t in node.tasks}
        expected = {
            t
            for t, r in tasks.items()
            if r.node_id == node.node_id and r.state in (TaskState.DISPATCHED, TaskState.RUNNING)
        }
        if node.reachable:
            assert charged == expected, (node.node_id, charged, expected)
        alloc = [0, 0, 0, 0]
        for t in charged:
            for i, v in enumerate(tasks[t].spec.resources.vector):
                alloc[i] += v
        assert node.allocated == alloc
        for i in range(4):
            assert node.allocated[i] <= node.capacity.vector[i] or not node.confirmed
        assert len(node.tasks) <= node.capacity.max_tasks or not node.confirmed
    for t, r in tasks.items():
        if r.state is TaskState.STOPPING:
            assert core._stopping[t] == r.node_id
        assert h.journal.record(t) == r
    assert len(h.journal) == len(tasks)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(action, min_size=10, max_size=80))
def test_bookkeeping_holds_under_random_operations(make_harness, actions) -> None:
    async def run() -> None:
        h = make_harness(
            SchedulerOptions(
                preemption=PreemptionOptions(cooldown_s=1.0),
                dispatch=DispatchOptions(ack_timeout_s=5.0),
            )
        )
        await h.start(*(beat(h, n) for n in NODES))
        n = 0
        for act in actions:
            kind = act[0]
            live = h.core.tasks()
            if kind == "submit":
                n += 1
                try:
                    await h.core.submit(h.spec(f"t{n}", act[1], mem=act[2], tier=act[3]))
                except FailedPrecondition:
                    assert act[3] == "gvisor" or not h.core.status().nodes_reachable
            elif kind == "cycle":
                await h.cycle()
            elif kind == "ack-all":
                await h.ack_all()
            elif kind == "ack":
                pending = h.pending_orders()
                if pending:
                    await h.ack(pending[act[1] % len(pending)])
            elif kind == "finish":
                on_node = [r for r in live if r.state.on_node]
                if on_node:
                    r = on_node[act[1] % len(on_node)]
                    await h.core.task_finished(
                        TaskResult(r.task_id, r.dispatch_id, r.node_id, act[2])
                    )
            elif kind == "cancel":
                if live:
                    await h.core.cancel(live[act[1] % len(live)].task_id)
            else:
                await h.advance(act[1], beat=[beat(h, x) for x in sorted(act[2])])
            check(h)

        # A second core rebuilt from the same journal sees the same tasks and queue order.
        b = make_harness(clock=h.clock, journal=h.journal)
        for x in NODES:
            await b.core.heartbeat(beat(b, x))
        await b.core.activate()
        assert b.core.tasks() == h.core.tasks()
        assert [r.task_id for r in b.core.queued(1000)] == [r.task_id for r in h.core.queued(1000)]
        check(b)

    asyncio.run(run())
