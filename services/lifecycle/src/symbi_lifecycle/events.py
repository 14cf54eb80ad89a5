"""The lifecycle on the bus: subjects, transition events and audit, the ``get`` responder.

Out (contract C2): every transition as ``AgentTransition`` on
``symbi.agent.transition.<agent>`` (topic "platform") and a signed audit event
(``lifecycle.created`` / ``lifecycle.transition``). Both carry ids derived from the agent
and the transition's sequence number, so publishing one twice (a restart re-publishes the
transitions of the last ~100 s, in case it crashed between the KV write and the event)
stores it once: JetStream drops the duplicate message id, the audit log the duplicate
event id.

Publication is off the request path: :class:`TransitionPublisher` queues transitions in
bounded queues (a full queue makes the writer wait) sharded by agent, so each agent's events
leave in order.

In: ``symbi.rpc.lifecycle.get`` (GetAgentRequest → Agent) for other services; an agent
principal may read only itself.

Out, to the scheduler: suspending or terminating an agent that runs a task cancels that
task (``symbi.rpc.scheduler.cancel``); its STOPPED status then arrives like any other.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import zlib

from prometheus_client import Counter

from symbi.bus.v1 import events_pb2
from symbi.lifecycle.v1 import lifecycle_pb2
from symbi.scheduler.v1 import scheduler_pb2
from symbi_common.auditing.event import JSONValue
from symbi_common.bus import Received, SecureBus
from symbi_common.errors import NotFound, PermissionDenied
from symbi_common.jetstream.spec import Subjects
from symbi_lifecycle.convert import agent_to_proto
from symbi_lifecycle.lifecycle import AgentLifecycle
from symbi_lifecycle.record import StoredAgent

__all__ = [
    "CANCEL_SUBJECT",
    "GET_SUBJECT",
    "RESPONDER_QUEUE",
    "GetResponder",
    "SchedulerTasks",
    "TransitionPublisher",
    "transition_event",
    "transition_subject",
]

log = logging.getLogger(__name__)

GET_SUBJECT = Subjects.rpc("lifecycle", "get")
#: The scheduler's bus API (served by its leader; services only).
CANCEL_SUBJECT = Subjects.rpc("scheduler", "cancel")
RESPONDER_QUEUE = "lifecycle"

PUBLISHED = Counter(
    "symbi_lifecycle_events_total", "Transition events published, by outcome.", ["outcome"]
)
TRANSITIONS = Counter(
    "symbi_lifecycle_transitions_total", "Agent transitions stored, by target state.", ["to"]
)

_AUDIT_NAMESPACE = uuid.UUID("6f1d8a5e-3c0b-4f55-9a7e-1c2d3e4f5a6b")


def transition_subject(agent_id: str) -> str:
    return Subjects.agent("transition", agent_id)


def transition_event(stored: StoredAgent) -> events_pb2.AgentTransition:
    record = stored.record
    last = record.last
    return events_pb2.AgentTransition(
        agent_id=record.id,
        from_state=last.from_state.value if last.from_state else "",
        to_state=last.to_state.value,
        reason=last.reason,
        revision=stored.revision,
        timestamp_ms=last.at_ms,
        actor=last.actor,
    )


class TransitionPublisher:
    """:class:`~symbi_lifecycle.ports.TransitionSink`: AgentTransition + audit per transition."""

    def __init__(
        self,
        bus: SecureBus,
        *,
        shards: int = 4,
        queue_size: int = 4096,
        attempts: int = 5,
    ) -> None:
        self.bus = bus
        self.attempts = attempts
        self._queues: list[asyncio.Queue[StoredAgent]] = [
            asyncio.Queue(maxsize=queue_size) for _ in range(shards)
        ]

    async def transitioned(self, stored: StoredAgent) -> None:
        TRANSITIONS.labels(stored.record.state.value).inc()
        shard = zlib.crc32(stored.record.id.encode()) % len(self._queues)
        await self._queues[shard].put(stored)

    @property
    def pending(self) -> int:
        return sum(q.qsize() for q in self._queues)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for index, queue in enumerate(self._queues):
                group.create_task(self._drain(queue), name=f"lifecycle-events-{index}")

    async def _drain(self, queue: asyncio.Queue[StoredAgent]) -> None:
        while True:
            stored = await queue.get()
            await self._publish_with_retry(stored)

    async def _publish_with_retry(self, stored: StoredAgent) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                await self.publish(stored)
                PUBLISHED.labels("ok").inc()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if attempt == self.attempts:
                    PUBLISHED.labels("lost").inc()
                    log.error(
                        "transition %s #%d of agent %s not published after %d attempts: %s",
                        stored.record.state.value,
                        stored.record.seq,
                        stored.record.id,
                        attempt,
                        exc,
                    )
                    return
                await asyncio.sleep(min(0.2 * 2**attempt, 5.0))

    async def publish(self, stored: StoredAgent) -> None:
        record = stored.record
        last = record.last
        key = f"{record.id}:{last.seq}"
        await self.bus.publish(
            "platform",
            transition_event(stored),
            subject=transition_subject(record.id),
            msg_id=f"lifecycle:{key}",
        )
        details: dict[str, JSONValue] = {
            "from": last.from_state.value if last.from_state else "",
            "to": last.to_state.value,
            "reason": last.reason,
            "by": last.actor,
            "revision": stored.revision,
            "seq": last.seq,
        }
        if last.task_id:
            details["task_id"] = last.task_id
        if last.from_state is None:
            details.update(
                name=record.name,
                owner=record.owner,
                tier=record.tier,
                capabilities=list(record.capabilities),
                source_format=record.source_format,
            )
        if "denied by policy" in last.reason:
            details["decision"] = "deny"
        await self.bus.recorder.record(
            "lifecycle.created" if last.from_state is None else "lifecycle.transition",
            details=details,
            agent_id=record.id,
            event_id=uuid.uuid5(_AUDIT_NAMESPACE, key),
        )


class GetResponder:
    """Answers ``symbi.rpc.lifecycle.get`` for other services (and an agent about itself)."""

    def __init__(self, lifecycle: AgentLifecycle) -> None:
        self.lifecycle = lifecycle

    async def __call__(self, received: Received) -> lifecycle_pb2.Agent:
        request = received.parse(lifecycle_pb2.GetAgentRequest)
        if received.sender_role == "agent" and request.id != received.sender:
            raise PermissionDenied(
                f"agent {received.sender} may read only itself, not {request.id}",
                reason="NOT_YOUR_AGENT",
            )
        stored = await self.lifecycle.get(request.id)
        definition = (
            await self.lifecycle.definition(request.id) if request.include_definition else ""
        )
        return agent_to_proto(stored, definition_json=definition)


class SchedulerTasks:
    """:class:`~symbi_lifecycle.ports.TaskCanceller` over the scheduler's bus API."""

    def __init__(self, bus: SecureBus, *, timeout_s: float = 2.0) -> None:
        self.bus = bus
        self.timeout_s = timeout_s

    async def cancel(self, task_id: str, reason: str) -> None:
        try:
            reply = await self.bus.request(
                CANCEL_SUBJECT,
                scheduler_pb2.CancelRequest(task_id=task_id, reason=reason),
                topic="platform",
                timeout=self.timeout_s,
            )
            reply.parse(scheduler_pb2.CancelResponse)
        except NotFound:
            pass  # the task ended already
