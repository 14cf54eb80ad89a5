"""Failover and node loss with real processes.

- Two scheduler processes share the journal and the lease: killing the leader with SIGKILL
  while tasks stream in hands over to the standby within seconds; every accepted task runs,
  exactly once.
- A node that stops heartbeating is lost: its tasks are requeued and run on another node.
"""

from __future__ import annotations

import asyncio
import time

import grpc

from symbi.bus.v1 import events_pb2
from symbi.common.v1 import common_pb2
from symbi.scheduler.v1 import scheduler_pb2 as pb
from symbi_testing import eventually

from .conftest import POLL_S, Cluster, Scheduler


def request(task_id: str, memory_mb: int = 256) -> pb.ScheduleAgentRequest:
    return pb.ScheduleAgentRequest(
        task_id=task_id,
        agent_id=f"agent-{task_id}",
        limits=common_pb2.ResourceLimits(memory_mb=memory_mb, cpu_millicores=250),
        image="busybox",
    )


async def submit(scheduler: Scheduler, req: pb.ScheduleAgentRequest, deadline_s: float) -> None:
    """Submit until accepted (a failover answers UNAVAILABLE for a while); resubmitting
    the same task id is safe."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            await scheduler.stub.ScheduleAgent(req, timeout=5)
            return
        except grpc.aio.AioRpcError as exc:
            retry = exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            if not retry or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


async def test_killing_the_leader_under_load_loses_nothing_and_runs_nothing_twice(
    cluster: Cluster,
) -> None:
    for name in ("a", "b", "c"):
        await cluster.start_node(name, memory_mb=4096, run_s=1.0)
    first = await cluster.start_scheduler("a")
    second = await cluster.start_scheduler("b")
    leader = await cluster.leader()
    standby = second if leader is first else first
    await cluster.wait_nodes(standby, 3)  # the standby follows the nodes too
    assert not (await standby.status()).leader

    task_ids = [f"t{i:03d}" for i in range(80)]
    killed_at: list[float] = []

    async def stream_in() -> None:
        # Through the standby: it forwards to whoever leads.
        for i, task_id in enumerate(task_ids):
            await submit(standby, request(task_id), deadline_s=30)
            if i == 30:
                killed_at.append(time.monotonic())
                leader.process.kill()  # SIGKILL, mid-stream
                killed.set()
            await asyncio.sleep(0.03)

    killed = asyncio.Event()

    async def takeover() -> float:
        await killed.wait()

        async def leads() -> bool:
            return (await standby.status()).leader

        await eventually(leads, timeout=30, interval=0.05)
        return time.monotonic() - killed_at[0]

    took, _ = await asyncio.gather(takeover(), stream_in())
    new_leader = await cluster.leader(timeout=20)
    assert new_leader is standby
    status = await new_leader.status()
    assert status.leader_id == f"svc-scheduler-{standby.instance}"
    # The lease lives 2 s past the last renewal; renewals every 0.5 s; slack for a busy box.
    assert took < 10

    async def all_ran() -> bool:
        done = cluster.journal.succeeded()
        assert set(task_ids) <= done, sorted(set(task_ids) - done)[:10]
        return True

    await eventually(all_ran, timeout=60, interval=POLL_S)
    counts = cluster.journal.start_counts()
    assert {t: n for t, n in counts.items() if n != 1} == {}, "a task ran twice"
    assert set(counts) == set(task_ids)
    assert cluster.journal.refused == []

    async def idle() -> bool:
        status = await new_leader.status()
        assert status.queued_total == 0
        assert status.running_tasks + status.dispatched_tasks == 0
        return True

    await eventually(idle, timeout=10, interval=POLL_S)
    print(f"standby led {took:.1f} s after the leader was killed (lease ttl 2 s)")


async def test_a_graceful_stop_hands_the_lease_over_at_once(cluster: Cluster) -> None:
    await cluster.start_node("a")
    first = await cluster.start_scheduler("a")
    await cluster.leader()
    second = await cluster.start_scheduler("b")
    await cluster.wait_nodes(second, 1)
    started = time.monotonic()
    await asyncio.to_thread(first.process.stop)
    assert (await cluster.leader(timeout=10)) is second
    # Well under the lease's lifetime plus a renewal when the lease was handed over.
    assert time.monotonic() - started < 10
    await submit(second, request("after"), deadline_s=10)

    async def ran() -> bool:
        return "after" in cluster.journal.succeeded()

    await eventually(ran, timeout=20, interval=POLL_S)


async def test_a_lost_node_s_tasks_are_requeued_and_run_elsewhere(cluster: Cluster) -> None:
    doomed = await cluster.start_node("doomed", run_s=None)
    scheduler = await cluster.start_scheduler("a")
    await cluster.leader()
    await cluster.wait_nodes(scheduler, 1)
    for task_id in ("x1", "x2", "x3"):
        await scheduler.stub.ScheduleAgent(request(task_id), timeout=10)

    async def running_on(node_id: str, task_ids: list[str]) -> bool:
        for task_id in task_ids:
            task = await scheduler.task(task_id)
            assert task.state == pb.TASK_STATE_RUNNING, task
            assert task.node_id == node_id, task
        return True

    await eventually(
        lambda: running_on("node-doomed", ["x1", "x2", "x3"]), timeout=20, interval=POLL_S
    )
    spare = await cluster.start_node("spare", run_s=None)
    await cluster.wait_nodes(scheduler, 2)

    await cluster.stop_node("node-doomed")  # no more heartbeats, nothing reported
    await eventually(
        lambda: running_on("node-spare", ["x1", "x2", "x3"]), timeout=20, interval=POLL_S
    )
    for task_id in ("x1", "x2", "x3"):
        task = await scheduler.task(task_id)
        assert task.node_losses == 1
        assert task.dispatch_id == f"{task_id}-2"
        # Lifecycle hears LOST ("requeued") from the scheduler, then STARTED from the spare.
        told = [
            (s.state, s.reason)
            for sender, s in await cluster.statuses(task_id)
            if sender == "svc-scheduler-a"
        ]
        assert told == [
            (events_pb2.TaskStatus.STATE_LOST, "node node-doomed became unreachable; requeued")
        ]
    nodes = {
        n.node_id: n
        for n in (await scheduler.stub.ListNodes(pb.ListNodesRequest(), timeout=5)).nodes
    }
    assert not nodes["node-doomed"].reachable
    assert nodes["node-spare"].running_tasks == 3
    assert doomed.runs  # the doomed node never learned anything: it was gone

    for task_id in ("x1", "x2", "x3"):
        await spare.finish(task_id)

    async def done() -> bool:
        for task_id in ("x1", "x2", "x3"):
            task = await scheduler.task(task_id)
            assert task.state == pb.TASK_STATE_SUCCEEDED, task
        return True

    await eventually(done, timeout=20, interval=POLL_S)
