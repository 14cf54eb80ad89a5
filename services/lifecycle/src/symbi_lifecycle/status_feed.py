"""Task statuses in, in stream order (contract C3 → C2).

Every lifecycle replica pulls from one shared durable consumer on
``symbi.task.status.*`` (EVENTS stream), so each status is handled once. Ordering across
replicas comes from the stream sequence: the record keeps the sequence of the newest status
applied, and an older one is stale wherever it lands (ADR 0042). That sequence is in the
JetStream metadata, which :meth:`SecureBus.consume` does not hand to its handler, so this
module pulls and opens envelopes itself with the bus's own opener, reject reporting and key
directory (the same checks: signature, freshness, certificate, destination, decryption).

Within a fetched batch, statuses of different agents are handled concurrently and those of
one agent in order; each is acknowledged once handled. A store failure naks the status (and
the agent's later ones in the batch) for redelivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

import nats.errors
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from prometheus_client import Counter

from symbi.bus.v1 import events_pb2
from symbi_common.bus import ConsumerSpec, SecureBus
from symbi_common.crypto.envelope import OpenedEnvelope
from symbi_common.crypto.rejects import EnvelopeRejected, RejectReason
from symbi_common.errors import InvalidArgument, SymbiError
from symbi_lifecycle.lifecycle import AgentLifecycle
from symbi_lifecycle.task_status import TaskEvent, TaskPhase

__all__ = ["STATUS_DURABLE", "STATUS_SUBJECT", "TaskStatusFeed", "task_event"]

log = logging.getLogger(__name__)

STATUS_SUBJECT = "symbi.task.status.*"
STATUS_DURABLE = "lifecycle-task-status"

HANDLED = Counter(
    "symbi_lifecycle_task_status_total",
    "Task statuses handled, by outcome (applied, recorded, ignored, retry, refused).",
    ["outcome"],
)

_PHASES = {
    events_pb2.TaskStatus.STATE_STARTED: TaskPhase.STARTED,
    events_pb2.TaskStatus.STATE_SUCCEEDED: TaskPhase.SUCCEEDED,
    events_pb2.TaskStatus.STATE_FAILED: TaskPhase.FAILED,
    events_pb2.TaskStatus.STATE_OOM_KILLED: TaskPhase.OOM_KILLED,
    events_pb2.TaskStatus.STATE_TIMED_OUT: TaskPhase.TIMED_OUT,
    events_pb2.TaskStatus.STATE_STOPPED: TaskPhase.STOPPED,
    events_pb2.TaskStatus.STATE_REFUSED: TaskPhase.REFUSED,
    events_pb2.TaskStatus.STATE_LOST: TaskPhase.LOST,
}


def task_event(status: events_pb2.TaskStatus, *, stream_seq: int, sender: str) -> TaskEvent:
    """The domain's view of a status; InvalidArgument when it cannot be one."""
    phase = _PHASES.get(status.state)
    if phase is None:
        raise InvalidArgument(f"task status {status.state} is not a state", reason="BAD_STATUS")
    if not status.agent_id or not status.task_id:
        raise InvalidArgument("task status without agent_id or task_id", reason="BAD_STATUS")
    return TaskEvent(
        agent_id=status.agent_id,
        task_id=status.task_id,
        phase=phase,
        stream_seq=stream_seq,
        reason=status.reason,
        exit_code=status.exit_code,
        dispatch_id=status.dispatch_id,
        node_id=status.node_id,
        sender=sender,
    )


class TaskStatusFeed:
    """Pulls task statuses and hands them to :meth:`AgentLifecycle.apply_status`."""

    def __init__(
        self,
        bus: SecureBus,
        lifecycle: AgentLifecycle,
        *,
        stream: str,
        durable: str = STATUS_DURABLE,
        batch: int = 128,
    ) -> None:
        self.bus = bus
        self.lifecycle = lifecycle
        self.batch = batch
        self.spec = ConsumerSpec.subscription(
            stream, (STATUS_SUBJECT,), durable, deliver_policy=DeliverPolicy.ALL
        )

    async def run(self) -> None:
        await self.bus.ensure_consumer(self.spec)
        sub = await self.bus.js.pull_subscribe_bind(self.spec.durable, self.spec.stream)
        try:
            while True:
                try:
                    messages = await sub.fetch(self.batch, timeout=1.0)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
                finally:
                    _settle_pending(sub)
                await self.handle_batch(messages)
        finally:
            with contextlib.suppress(Exception):  # the connection may already be draining
                await sub.unsubscribe()

    async def handle_batch(self, messages: list[Msg]) -> None:
        opened = await asyncio.to_thread(self._open_all, messages)
        per_agent: dict[str, list[tuple[Msg, TaskEvent]]] = defaultdict(list)
        for msg, outcome in zip(messages, opened, strict=True):
            event = await self._admit(msg, outcome)
            if event is not None:
                per_agent[event.agent_id].append((msg, event))
        if per_agent:
            async with asyncio.TaskGroup() as group:
                for items in per_agent.values():
                    group.create_task(self._handle_agent(items))

    def _open_all(self, messages: list[Msg]) -> list[OpenedEnvelope | EnvelopeRejected]:
        results: list[OpenedEnvelope | EnvelopeRejected] = []
        for msg in messages:
            try:
                results.append(self.bus.opener.open(msg.data, subject=msg.subject))
            except EnvelopeRejected as rejected:
                results.append(rejected)
        return results

    async def _admit(
        self, msg: Msg, outcome: OpenedEnvelope | EnvelopeRejected
    ) -> TaskEvent | None:
        delivered = msg.metadata.num_delivered if msg.metadata else 1
        if isinstance(outcome, EnvelopeRejected):
            outcome = await self._retry_unknown_sender(msg, outcome)
        if isinstance(outcome, EnvelopeRejected):
            if (
                outcome.reject_reason == RejectReason.REJECT_REASON_NOT_AUTHORIZED
                and delivered < self.bus.config.max_deliver
            ):
                await msg.nak(delay=min(0.5 * 2**delivered, 10.0))  # a group key in flight
                return None
            await msg.term()
            await self.bus.rejects.report(outcome, subject=msg.subject, consumer=self.spec.label)
            HANDLED.labels("refused").inc()
            return None
        envelope = outcome.envelope
        try:
            if outcome.sender.role not in ("node", "service"):
                raise InvalidArgument(
                    f"task statuses come from nodes and services, not {outcome.sender.role}s",
                    reason="NOT_A_STATUS_SENDER",
                )
            if envelope.content_type != _STATUS_CONTENT_TYPE:
                raise InvalidArgument(
                    f"expected a TaskStatus, got {envelope.content_type!r}",
                    reason="UNEXPECTED_PAYLOAD",
                )
            status = events_pb2.TaskStatus.FromString(outcome.payload)
            stream_seq = msg.metadata.sequence.stream if msg.metadata else 0
            return task_event(status, stream_seq=stream_seq, sender=envelope.sender)
        except (InvalidArgument, ValueError) as exc:
            await msg.term()
            HANDLED.labels("refused").inc()
            log.warning("refused task status %s from %s: %s", envelope.id, envelope.sender, exc)
            return None

    async def _retry_unknown_sender(
        self, msg: Msg, rejected: EnvelopeRejected
    ) -> OpenedEnvelope | EnvelopeRejected:
        # The sender's certificate may be newer than our copy of the keyring: look it up once.
        directory = self.bus.directory
        if rejected.reject_reason != RejectReason.REJECT_REASON_UNKNOWN_SENDER or directory is None:
            return rejected
        try:
            envelope = self.bus.opener.parse(msg.data)
            if not await directory.fetch_certificate(envelope.sender, envelope.sender_key_id):
                return rejected
            return self.bus.opener.open(msg.data, subject=msg.subject)
        except EnvelopeRejected as again:
            return again

    async def _handle_agent(self, items: list[tuple[Msg, TaskEvent]]) -> None:
        for index, (msg, event) in enumerate(items):
            try:
                outcome = await self.lifecycle.apply_status(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                retry = not isinstance(exc, SymbiError) or exc.retryable
                if not retry:
                    log.error(
                        "task status %s of %s refused: %s", event.task_id, event.agent_id, exc
                    )
                    await msg.term()
                    HANDLED.labels("refused").inc()
                    continue
                log.warning("task status of %s will be retried: %s", event.agent_id, exc)
                for later, _ in items[index:]:  # keep this agent's statuses in order
                    delivered = later.metadata.num_delivered if later.metadata else 1
                    await later.nak(delay=min(0.5 * 2**delivered, 30.0))
                HANDLED.labels("retry").inc(len(items) - index)
                return
            log.debug(
                "task status %s %s of %s: %s (%s)",
                event.task_id,
                event.phase.value,
                event.agent_id,
                outcome.outcome,
                outcome.note,
            )
            HANDLED.labels(outcome.outcome).inc()
            await msg.ack()


_STATUS_CONTENT_TYPE = f"application/x-protobuf; type={events_pb2.TaskStatus.DESCRIPTOR.full_name}"


def _settle_pending(sub: object) -> None:
    """Mark the messages nats-py's ``fetch`` took from the subscription's queue as done.

    ``fetch`` first takes leftover messages (late status replies of expired pulls) with
    ``get_nowait()`` and never calls ``task_done()``, so the queue's unfinished count only
    grows, and a connection drain — which joins that queue — then waits until the process's
    shutdown deadline. Right after a fetch no other reader is active, so every unfinished
    item not in the queue any more has been consumed.
    """
    queue = getattr(getattr(sub, "_sub", None), "_pending_queue", None)
    if not isinstance(queue, asyncio.Queue):
        return
    unfinished = getattr(queue, "_unfinished_tasks", 0)
    for _ in range(max(0, unfinished - queue.qsize())):
        queue.task_done()
