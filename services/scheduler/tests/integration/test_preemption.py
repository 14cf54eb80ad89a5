"""Preemption end to end: a full cluster, a Critical task arrives; exactly the minimal set of
lower-priority tasks is stopped through TaskStop, lifecycle hears "preempted", and the
preempted work runs again later."""

from __future__ import annotations

from symbi.bus.v1 import events_pb2
from symbi.common.v1 import common_pb2
from symbi.scheduler.v1 import scheduler_pb2 as pb
from symbi_testing import eventually

from .conftest import POLL_S, Cluster

LOW = common_pb2.PRIORITY_LOW
HIGH = common_pb2.PRIORITY_HIGH
CRITICAL = common_pb2.PRIORITY_CRITICAL
STOPPED = events_pb2.TaskStatus.STATE_STOPPED


def request(
    task_id: str, priority: int, memory_mb: int, pool: str | None = None
) -> pb.ScheduleAgentRequest:
    return pb.ScheduleAgentRequest(
        task_id=task_id,
        agent_id=f"agent-{task_id}",
        priority=priority,  # type: ignore[arg-type]
        limits=common_pb2.ResourceLimits(memory_mb=memory_mb, cpu_millicores=250),
        node_selector={"pool": pool} if pool else {},
        image="busybox",
    )


async def test_a_critical_task_preempts_exactly_the_minimal_set(cluster: Cluster) -> None:
    # Tasks run until the test ends them, so the cluster stays full.
    a = await cluster.start_node("a", memory_mb=4096, labels={"pool": "a"}, run_s=None)
    b = await cluster.start_node("b", memory_mb=4096, labels={"pool": "b"}, run_s=None)
    scheduler = await cluster.start_scheduler("a")
    await cluster.leader()
    await cluster.wait_nodes(scheduler, 2)
    # node-a: two 1 GiB Low tasks and one 2 GiB Low task; node-b: two 2 GiB High tasks.
    fill = [
        request("l1", LOW, 1024, "a"),
        request("l2", LOW, 1024, "a"),
        request("l3", LOW, 2048, "a"),
        request("h1", HIGH, 2048, "b"),
        request("h2", HIGH, 2048, "b"),
    ]
    for req in fill:
        await scheduler.stub.ScheduleAgent(req, timeout=10)

    async def running(task_ids: list[str]) -> bool:
        for task_id in task_ids:
            task = await scheduler.task(task_id)
            assert task.state == pb.TASK_STATE_RUNNING, task
        return True

    await eventually(lambda: running(["l1", "l2", "l3", "h1", "h2"]), timeout=20, interval=POLL_S)
    status = await scheduler.status()
    assert status.memory_utilisation == 1.0

    # 2 GiB for a Critical task: one Low victim on node-a beats two Lows there, and beats one
    # High on node-b.
    await scheduler.stub.ScheduleAgent(request("crit", CRITICAL, 2048), timeout=10)
    await eventually(lambda: running(["crit"]), timeout=20, interval=POLL_S)
    crit = await scheduler.task("crit")
    assert crit.node_id == "node-a"
    assert list(crit.preempts) == ["l3"]

    # Exactly l3 was told to stop (TaskStop, reason "preempted"), and nothing else stopped.
    assert [(s.task_id, s.reason) for s in a.stop_orders] == [("l3", "preempted")]
    assert b.stop_orders == []
    assert cluster.journal.stopped() == [("node-a", "l3")]
    (start,) = cluster.journal.started("crit")
    assert start.preempts == ("l3",)
    # The victim's end was reported before the urgent task's start acknowledgement.
    assert cluster.journal.ends[0][1] == "l3"

    l3 = await scheduler.task("l3")
    assert l3.state == pb.TASK_STATE_QUEUED
    assert l3.preemptions == 1
    for task_id in ("l1", "l2", "h1", "h2"):
        assert len(cluster.journal.started(task_id)) == 1

    # Lifecycle hears STOPPED "preempted" for the victim from the scheduler (contract C2).
    told = [
        (status.state, status.reason)
        for sender, status in await cluster.statuses("l3")
        if sender == "svc-scheduler-a"
    ]
    assert told == [(STOPPED, "preempted")]

    # The urgent task ends; the preempted one runs again (a new dispatch) and every task
    # completes.
    await a.finish("crit")

    async def l3_again() -> bool:
        assert len(cluster.journal.started("l3")) == 2
        return True

    await eventually(l3_again, timeout=20, interval=POLL_S)
    assert [s.dispatch_id for s in cluster.journal.started("l3")] == ["l3-1", "l3-2"]
    for node, task_ids in ((a, ["l1", "l2", "l3"]), (b, ["h1", "h2"])):
        for task_id in task_ids:
            await node.finish(task_id)

    async def all_done() -> bool:
        for task_id in ("l1", "l2", "l3", "h1", "h2", "crit"):
            task = await scheduler.task(task_id)
            assert task.state == pb.TASK_STATE_SUCCEEDED, task
        return True

    await eventually(all_done, timeout=20, interval=POLL_S)
    status = await scheduler.status()
    assert status.preemptions_total == 1
    assert status.queued_total == 0
