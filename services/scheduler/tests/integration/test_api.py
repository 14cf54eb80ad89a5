"""The gRPC API of the process: WatchQueue, Cancel, ListTasks, RemoveNode, a standby that
forwards to the leader, and the metrics endpoint."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

from symbi.bus.v1 import events_pb2
from symbi.common.v1 import common_pb2
from symbi.scheduler.v1 import scheduler_pb2 as pb
from symbi_common.errors import FailedPrecondition, NotFound, Unavailable
from symbi_testing import eventually

from .conftest import POLL_S, Cluster, rpc_error


async def scrape(scheduler: Any) -> str:
    url = f"http://{scheduler.process.metrics_address}/metrics"
    return await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())


def request(task_id: str) -> pb.ScheduleAgentRequest:
    return pb.ScheduleAgentRequest(
        task_id=task_id,
        agent_id=f"agent-{task_id}",
        limits=common_pb2.ResourceLimits(memory_mb=256, cpu_millicores=250),
    )


async def test_watch_cancel_list_and_remove(cluster: Cluster) -> None:
    node = await cluster.start_node("a", run_s=None)
    scheduler = await cluster.start_scheduler("a")
    await cluster.leader()
    await cluster.wait_nodes(scheduler, 1)

    events: list[tuple[str, str]] = []
    watch = scheduler.stub.WatchQueue(pb.WatchQueueRequest(agent_id="agent-w1"))

    async def follow() -> None:
        async for event in watch:
            events.append((event.task.task_id, event.event))

    follower = asyncio.create_task(follow())

    async def watching() -> bool:
        assert "symbi_scheduler_watchers 1.0" in await scrape(scheduler), "watch not open yet"
        return True

    await eventually(watching, timeout=10, interval=POLL_S)
    await scheduler.stub.ScheduleAgent(request("w1"), timeout=10)
    await scheduler.stub.ScheduleAgent(request("other"), timeout=10)

    async def started() -> bool:
        assert ("w1", "started") in events, events
        return True

    await eventually(started, timeout=20, interval=POLL_S)
    assert events[:3] == [("w1", "queued"), ("w1", "placed"), ("w1", "started")]

    listed = await scheduler.stub.ListTasks(
        pb.ListTasksRequest(state=pb.TASK_STATE_RUNNING), timeout=5
    )
    assert sorted(t.task_id for t in listed.tasks) == ["other", "w1"]
    assert listed.total == 2

    # Cancelling a running task stops it on its node and tells lifecycle.
    answer = await scheduler.stub.Cancel(pb.CancelRequest(task_id="w1", reason="test"), timeout=5)
    assert answer.task.state == pb.TASK_STATE_CANCELLED

    async def stopped() -> bool:
        assert [(s.task_id, s.reason) for s in node.stop_orders] == [("w1", "cancelled")]
        assert ("w1", "cancelled") in events
        return True

    await eventually(stopped, timeout=10, interval=POLL_S)
    told = [
        (s.state, s.reason)
        for sender, s in await cluster.statuses("w1")
        if sender == "svc-scheduler-a"
    ]
    assert told == [(events_pb2.TaskStatus.STATE_STOPPED, "cancelled")]
    error = await rpc_error(scheduler.stub.Cancel(pb.CancelRequest(task_id="w1"), timeout=5))
    assert isinstance(error, FailedPrecondition)
    error = await rpc_error(scheduler.stub.GetTask(pb.GetTaskRequest(task_id="nope"), timeout=5))
    assert isinstance(error, NotFound)

    # Removing the node requeues what ran there.
    removed = await scheduler.stub.RemoveNode(pb.RemoveNodeRequest(node_id="node-a"), timeout=5)
    assert list(removed.requeued) == ["other"]
    follower.cancel()
    await asyncio.gather(follower, return_exceptions=True)

    metrics = await scrape(scheduler)
    assert "symbi_scheduler_leader 1.0" in metrics
    assert "symbi_scheduler_decision_seconds_count" in metrics
    assert 'symbi_scheduler_orders_total{kind="dispatch"}' in metrics


async def test_a_standby_forwards_to_the_leader(cluster: Cluster) -> None:
    await cluster.start_node("a")
    first = await cluster.start_scheduler("a")
    await cluster.leader()
    standby = await cluster.start_scheduler("b")
    await cluster.wait_nodes(standby, 1)
    status = await standby.status()
    assert not status.leader
    assert status.leader_id == "svc-scheduler-a"
    assert status.instance_id == "b"

    answer = await standby.stub.ScheduleAgent(request("fwd"), timeout=10)
    assert answer.task.task_id == "fwd"
    assert (await first.task("fwd")).task_id == "fwd"  # it lives on the leader

    async def done() -> bool:
        return (await standby.task("fwd")).state == pb.TASK_STATE_SUCCEEDED

    await eventually(done, timeout=20, interval=POLL_S)
    nodes = await standby.stub.ListNodes(pb.ListNodesRequest(), timeout=5)
    assert [n.node_id for n in nodes.nodes] == ["node-a"]

    async def drain_watch() -> None:
        async for _ in standby.stub.WatchQueue(pb.WatchQueueRequest()):
            raise AssertionError("a standby streamed events")

    error = await rpc_error(drain_watch())
    assert isinstance(error, Unavailable)
    assert "svc-scheduler-a" in error.message
    error = await rpc_error(standby.stub.GetTask(pb.GetTaskRequest(task_id="bad id!"), timeout=5))
    assert not isinstance(error, Unavailable)  # forwarded and refused by the leader
