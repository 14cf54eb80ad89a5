"""Task statuses published on the bus (as a worker node does) move agents (C2/C3)."""

from __future__ import annotations

import time

from symbi.bus.v1 import events_pb2
from symbi.lifecycle.v1 import lifecycle_pb2
from symbi_common.bus import BusEndpoint

from .conftest import FAST, NO_POLICY, start_lifecycle, wait_state

TS = events_pb2.TaskStatus


async def publish(node: BusEndpoint, agent_id: str, task_id: str, state: int, **kw: object) -> None:
    status = TS(
        task_id=task_id,
        agent_id=agent_id,
        node_id=node.bus.principal_id,
        state=state,  # type: ignore[arg-type]
        timestamp_ms=int(time.time() * 1000),
        **kw,  # type: ignore[arg-type]
    )
    await node.bus.publish("platform", status, subject=f"symbi.task.status.{task_id}")


async def test_statuses_drive_the_state_machine(services, open_client, examples, open_node) -> None:
    client = open_client(
        await start_lifecycle(
            services, "a", {**NO_POLICY, **FAST, "SYMBI_LIFECYCLE__MAX_RESTARTS": "1"}
        )
    )
    node_bus = await open_node()
    source = next(p for p in examples if p.name == "code_runner.symbi").read_text()
    scheduled = next(p for p in examples if p.name == "nightly_digest.symbi").read_text()
    done = await client.create(source, agent_id="agent-ts-done")
    failing = await client.create(source, agent_id="agent-ts-fail")
    preempted = await client.create(source, agent_id="agent-ts-preempt")
    nightly = await client.create(scheduled, agent_id="agent-ts-nightly")

    await publish(node_bus, done.id, "task-1", TS.STATE_STARTED, dispatch_id="task-1-1")
    await wait_state(client, done.id, "RUNNING")
    assert (await client.get(done.id)).task_id == "task-1"
    await publish(node_bus, done.id, "task-1", TS.STATE_SUCCEEDED, exit_code=0)
    await wait_state(client, done.id, "COMPLETED")

    await publish(node_bus, failing.id, "task-2", TS.STATE_STARTED)
    await publish(
        node_bus, failing.id, "task-2", TS.STATE_OOM_KILLED, exit_code=137, reason="memory"
    )
    await wait_state(client, failing.id, "FAILED")
    failed = await client.get(failing.id)
    assert "oom_killed" in failed.reason
    assert failed.restart_at_ms > 0
    await wait_state(client, failing.id, "READY")  # recovered by the restart policy
    assert (await client.get(failing.id)).restarts == 1

    await publish(node_bus, preempted.id, "task-3", TS.STATE_STARTED, dispatch_id="task-3-1")
    await wait_state(client, preempted.id, "RUNNING")
    await publish(node_bus, preempted.id, "task-3", TS.STATE_STOPPED, reason="preempted")
    await wait_state(client, preempted.id, "SUSPENDED")
    await publish(node_bus, preempted.id, "task-3", TS.STATE_STARTED, dispatch_id="task-3-2")
    await wait_state(client, preempted.id, "RUNNING")
    await publish(node_bus, preempted.id, "task-3", TS.STATE_LOST)
    await publish(node_bus, preempted.id, "task-3", TS.STATE_STOPPED, reason="cancelled")
    await wait_state(client, preempted.id, "READY")

    await publish(node_bus, nightly.id, "task-4", TS.STATE_STARTED)
    await publish(node_bus, nightly.id, "task-4", TS.STATE_SUCCEEDED)
    await wait_state(client, nightly.id, "WAITING")

    history = await client.call("GetHistory", lifecycle_pb2.GetHistoryRequest(id=preempted.id))
    names = [lifecycle_pb2.AgentState.Name(t.to_state)[12:] for t in history.transitions]
    assert names == [
        "CREATED",
        "INITIALIZING",
        "READY",
        "RUNNING",
        "SUSPENDED",
        "RUNNING",
        "READY",
    ]
    started = history.transitions[3]
    assert started.actor == node_bus.bus.principal_id
    assert started.task_id == "task-3"
