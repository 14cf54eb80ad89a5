"""The lifecycle on the bus: task statuses (as a worker node publishes them) move agents
(C2/C3); other principals read agents with ``symbi.rpc.lifecycle.get``."""

from __future__ import annotations

import asyncio
import json
import time

import nats
import nats.js.api
import pytest

from symbi.bus.v1 import events_pb2
from symbi.lifecycle.v1 import lifecycle_pb2
from symbi.scheduler.v1 import scheduler_pb2
from symbi_common.auditing import from_proto
from symbi_common.auditing.event import verify_event_signature
from symbi_common.bus import BusEndpoint, ConsumerSpec, Received
from symbi_common.errors import NotFound, PermissionDenied, SymbiError
from symbi_testing import eventually

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

    async def recovered() -> bool:  # failed, then recovered by the restart policy
        agent = await client.get(failing.id)
        return agent.restarts == 1 and agent.state == lifecycle_pb2.AGENT_STATE_READY

    await eventually(recovered, timeout=20)
    recovery = await client.call("GetHistory", lifecycle_pb2.GetHistoryRequest(id=failing.id))
    moves = [
        (lifecycle_pb2.AgentState.Name(t.to_state)[12:], t.reason) for t in recovery.transitions
    ]
    assert [m[0] for m in moves][3:] == ["RUNNING", "FAILED", "INITIALIZING", "READY"]
    assert "oom_killed" in moves[4][1]
    assert "recovery 1 of 1" in moves[4][1]

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


async def test_get_over_the_bus(services, open_client, examples, open_node, nats_server) -> None:
    """symbi.rpc.lifecycle.get (C2): services and nodes read any agent, an agent only itself."""
    client = open_client(await start_lifecycle(services, "a", NO_POLICY))
    source = examples[0].read_text()
    mine = await client.create(source, agent_id="agent-reader")
    other = await client.create(source, agent_id="agent-other")
    node = await open_node()
    request = lifecycle_pb2.GetAgentRequest(id=other.id, include_definition=True)
    reply = await node.bus.request("symbi.rpc.lifecycle.get", request, topic="platform", timeout=5)
    agent = reply.parse(lifecycle_pb2.Agent)
    assert agent.id == other.id
    assert agent.state == lifecycle_pb2.AGENT_STATE_READY
    assert '"cedar"' in agent.definition_json
    with pytest.raises(NotFound):
        await node.bus.request(
            "symbi.rpc.lifecycle.get",
            lifecycle_pb2.GetAgentRequest(id="agent-none"),
            topic="platform",
            timeout=5,
        )

    credentials = services.authority.issue(mine.id, "agent")
    nc = await nats.connect(nats_server.url)
    endpoint = await BusEndpoint.open(nc, nc.jetstream(), credentials)
    loop = asyncio.create_task(endpoint.run())
    try:
        own = await endpoint.bus.request(
            "symbi.rpc.lifecycle.get",
            lifecycle_pb2.GetAgentRequest(id=mine.id),
            recipient="svc-lifecycle-a",
            timeout=5,
        )
        assert own.parse(lifecycle_pb2.Agent).id == mine.id
        with pytest.raises(PermissionDenied, match="may read only itself"):
            await endpoint.bus.request(
                "symbi.rpc.lifecycle.get",
                lifecycle_pb2.GetAgentRequest(id=other.id),
                recipient="svc-lifecycle-a",
                timeout=5,
            )
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await nc.close()


async def test_every_transition_is_an_event_and_an_audit_record(
    services, open_client, examples, nats_server
) -> None:
    """AgentTransition on symbi.agent.transition.<agent> and a signed audit event per
    transition, read back through the bus as a platform service reads them."""
    client = open_client(await start_lifecycle(services, "a", NO_POLICY))
    # The observer joins first: topic keys rotate when members join, and a newcomer cannot
    # read what was sealed before it joined.
    credentials = services.authority.issue("svc-observer-t", "service")
    nc = await nats.connect(nats_server.url)
    endpoint = await BusEndpoint.open(nc, nc.jetstream(), credentials, manage_topics=())
    loop = asyncio.create_task(endpoint.run())
    await eventually(lambda: endpoint.bus.groups.latest("platform") is not None, timeout=15)
    agent_id = "agent-events"
    transitions: list[events_pb2.AgentTransition] = []
    audits: list[events_pb2.AuditEvent] = []

    async def on_transition(message: Received) -> None:
        transitions.append(message.parse(events_pb2.AgentTransition))

    async def on_audit(message: Received) -> None:
        event = message.parse(events_pb2.AuditEvent)
        if event.agent_id == agent_id:
            audits.append(event)

    consumers = [
        asyncio.create_task(
            endpoint.bus.consume(
                ConsumerSpec.subscription(
                    "SYMBI_EVENTS",
                    (f"symbi.agent.transition.{agent_id}",),
                    "observer-transitions",
                    deliver_policy=nats.js.api.DeliverPolicy.ALL,
                ),
                on_transition,
            )
        ),
        asyncio.create_task(
            endpoint.bus.consume(
                ConsumerSpec.subscription(
                    "SYMBI_AUDIT",
                    ("symbi.audit.lifecycle_created", "symbi.audit.lifecycle_transition"),
                    "observer-audit",
                    deliver_policy=nats.js.api.DeliverPolicy.ALL,
                ),
                on_audit,
            )
        ),
    ]
    expected = ["CREATED", "INITIALIZING", "READY", "SUSPENDED", "TERMINATING", "TERMINATED"]
    try:
        # The lifecycle may publish with a key generation from before the observer joined
        # for a moment: wait until the observer's membership has reached it.
        await eventually(lambda: endpoint.bus.groups.latest("platform") is not None, timeout=15)
        agent = await client.create(examples[0].read_text(), agent_id=agent_id)
        await client.call("Suspend", lifecycle_pb2.TransitionRequest(id=agent.id, reason="pause"))
        await client.call("Terminate", lifecycle_pb2.TransitionRequest(id=agent.id))
        await eventually(lambda: len(transitions) >= 6 and len(audits) >= 6, timeout=30)
    finally:
        for task in (*consumers, loop):
            task.cancel()
        await asyncio.gather(*consumers, loop, return_exceptions=True)
        await nc.close()
    assert [t.to_state for t in transitions] == expected
    assert [t.from_state for t in transitions] == ["", *expected[:-1]]
    assert transitions[3].reason == "pause"
    revisions = [t.revision for t in transitions]
    assert revisions == sorted(revisions)
    assert [a.event_type for a in audits] == ["lifecycle.created"] + ["lifecycle.transition"] * 5
    lifecycle_keys = endpoint.bus.keyring.current("svc-lifecycle-a")
    assert lifecycle_keys is not None
    for record in audits:
        event = from_proto(record)
        assert event.actor == "svc-lifecycle-a"
        assert verify_event_signature(event, lifecycle_keys.proto.ed25519_public_key)
    details = [json.loads(a.details_json) for a in audits]
    assert [d["to"] for d in details] == expected
    assert details[0]["name"]


async def test_terminating_a_running_agent_cancels_its_task(
    services, open_client, examples, open_node, nats_server
) -> None:
    """The lifecycle asks the scheduler's bus API (``symbi.rpc.scheduler.cancel``) to stop
    the task; here a stand-in for the scheduler's leader answers it, as the scheduler does."""
    client = open_client(
        await start_lifecycle(
            services, "a", {**NO_POLICY, "SYMBI_LIFECYCLE__SCHEDULER_TIMEOUT_S": "15"}
        )
    )
    node = await open_node()
    cancelled: list[tuple[str, scheduler_pb2.CancelRequest]] = []

    async def cancel(message: Received) -> scheduler_pb2.CancelResponse:
        request = message.parse(scheduler_pb2.CancelRequest)
        cancelled.append((message.sender, request))
        if request.task_id != "probe":
            await publish(
                node, "agent-cancel", request.task_id, TS.STATE_STOPPED, reason="cancelled"
            )
        return scheduler_pb2.CancelResponse()

    credentials = services.authority.issue("svc-scheduler-standin", "service")
    nc = await nats.connect(nats_server.url)
    scheduler = await BusEndpoint.open(nc, nc.jetstream(), credentials, manage_topics=())
    tasks = [asyncio.create_task(scheduler.run())]
    try:
        await eventually(lambda: scheduler.bus.groups.latest("platform") is not None, timeout=15)
        tasks.append(
            asyncio.create_task(
                scheduler.bus.serve("symbi.rpc.scheduler.cancel", cancel, queue="scheduler")
            )
        )

        async def serving() -> bool:
            try:
                await scheduler.bus.request(
                    "symbi.rpc.scheduler.cancel",
                    scheduler_pb2.CancelRequest(task_id="probe"),
                    topic="platform",
                    timeout=2,
                )
            except SymbiError:
                return False
            return True

        await eventually(serving, timeout=15)
        agent = await client.create(examples[0].read_text(), agent_id="agent-cancel")
        await publish(node, agent.id, "task-c1", TS.STATE_STARTED)
        await wait_state(client, agent.id, "RUNNING")
        ended = await client.call("Terminate", lifecycle_pb2.TransitionRequest(id=agent.id))
        assert ended.state == lifecycle_pb2.AGENT_STATE_TERMINATED
        asked = [(sender, c.task_id, c.reason) for sender, c in cancelled if c.task_id != "probe"]
        assert asked == [("svc-lifecycle-a", "task-c1", "agent terminated")]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await nc.close()
