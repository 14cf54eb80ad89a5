"""The secure bus: signed, encrypted envelopes over NATS JetStream.

Patterns (subjects in :mod:`symbi_common.jetstream.spec`):

- **direct** — :meth:`SecureBus.send` to a principal; durable on the DIRECT stream; the
  recipient's :meth:`SecureBus.consume` of :meth:`ConsumerSpec.direct` gets each message at
  least once, with explicit acks.
- **publish/subscribe** — :meth:`SecureBus.publish` to a topic (group key) on any subject of a
  stream; each subscriber has its own consumer (:meth:`ConsumerSpec.subscription`).
- **work queue** — publish (direct or topic) onto a work-queue stream; consumers sharing one
  durable (:meth:`ConsumerSpec.work_queue`) each take a message exactly once.
- **request/reply** — :meth:`SecureBus.request` over core NATS with a deadline; responders
  :meth:`SecureBus.serve` in a queue group and reply directly to the requester.

Consumption (:meth:`SecureBus.consume`): each message is opened (signature, freshness, sender
certificate, destination, decryption — see :mod:`symbi_common.crypto.envelope`), then
de-duplicated against the consumer's seen-set and rate-limited per sender. A refused envelope
is terminated (never redelivered, never acted on), counted and audited. A handler that raises
a retryable :class:`~symbi_common.errors.SymbiError` gets the message again after a delay
(``nak``); a non-retryable one terminates it and audits the refusal; success acks it.

Following (:meth:`SecureBus.follow` of a :class:`FollowSpec`): for latest-value streams
(heartbeats, states) where a missed message is superseded by the next one — an ordered push
consumer (ephemeral, no acknowledgements; first the latest message per subject, then each new
one), bounded by its pending limits, re-created by nats-py on a gap or a silent server. Every
message goes through the same opening and checks as in ``consume`` (one code path,
``_check``); refusals are counted, reported and audited the same way, and the loop lives on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js import api as js_api
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from symbi.bus.v1 import envelope_pb2, events_pb2
from symbi.common.v1 import common_pb2
from symbi_common.auditing import AuditRecorder
from symbi_common.bus.directory import KeyDirectory
from symbi_common.bus.limits import SeenSet, SenderRateLimiter
from symbi_common.bus.rejects import RejectReporter
from symbi_common.config import BusSection
from symbi_common.crypto.envelope import (
    EnvelopeLimits,
    EnvelopeOpener,
    EnvelopeSealer,
    OpenedEnvelope,
)
from symbi_common.crypto.groupkeys import GroupKeyring
from symbi_common.crypto.identity import PrincipalKeys
from symbi_common.crypto.keyring import Keyring
from symbi_common.crypto.rejects import EnvelopeRejected, RejectReason
from symbi_common.errors import (
    DeadlineExceeded,
    ErrorCode,
    InvalidArgument,
    SymbiError,
    Unavailable,
    error_for_code,
)
from symbi_common.jetstream.spec import Subjects
from symbi_common.telemetry import current_trace, extract_trace

__all__ = ["ConsumerSpec", "FollowOutcome", "FollowSpec", "Handler", "Received", "SecureBus"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

_TRACER = trace.get_tracer("symbi.bus")

PROTOBUF_CONTENT_TYPE = "application/x-protobuf"
ERROR_CONTENT_TYPE = "application/x-symbi-error"

PUBLISHED = Counter("symbi_bus_published_total", "Envelopes published, by pattern.", ["pattern"])
CONSUMED = Counter(
    "symbi_bus_consumed_total",
    "Envelopes handled, by consumer and outcome.",
    ["consumer", "outcome"],
)
#: Children looked up once: ``labels()`` on every publish costs more than the increment.
_PUBLISHED_BY_PATTERN = {p: PUBLISHED.labels(p) for p in ("direct", "topic", "request")}
HANDLE_SECONDS = Histogram(
    "symbi_bus_handle_seconds",
    "Time to open and handle one envelope.",
    ["consumer"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5),
)


#: Envelopes opened between yields to the event loop (~2.5 ms of it at ~75 µs each).
_OPEN_CHUNK = 32


def content_type_of(message: Message) -> str:
    return f"{PROTOBUF_CONTENT_TYPE}; type={message.DESCRIPTOR.full_name}"


def _raise_if_cancelling() -> None:
    """nats-py's fetch waits with asyncio.wait_for, which on Python 3.11 can swallow a
    cancellation that arrives as it times out; a loop that asked to stop must still stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _delivery(msg: Msg) -> tuple[int, int]:
    """(delivery count, stream sequence) of a JetStream message, parsed once."""
    try:
        metadata = msg.metadata
    except Exception:  # not a JetStream message
        return 1, 0
    return metadata.num_delivered or 1, int(metadata.sequence.stream) if msg.reply else 0


@dataclass(frozen=True)
class Received:
    """A verified, decrypted message."""

    subject: str
    sender: str
    sender_role: str
    payload: bytes
    content_type: str
    msg_id: str
    envelope: envelope_pb2.Envelope
    delivered: int = 1
    #: Position in its JetStream stream (0 for core NATS requests).
    stream_seq: int = 0

    @property
    def trace(self) -> dict[str, str]:
        return dict(self.envelope.trace)

    def parse(self, cls: type[M]) -> M:
        """The payload as protobuf message ``cls``; InvalidArgument if it is something else."""
        expected = f"{PROTOBUF_CONTENT_TYPE}; type={cls.DESCRIPTOR.full_name}"
        if self.content_type != expected:
            raise InvalidArgument(
                f"expected {cls.DESCRIPTOR.full_name}, got content type {self.content_type!r}",
                reason="UNEXPECTED_PAYLOAD",
            )
        message = cls()
        try:
            message.ParseFromString(self.payload)
        except DecodeError:
            raise InvalidArgument(
                f"malformed {cls.DESCRIPTOR.full_name} payload", reason="MALFORMED_PAYLOAD"
            ) from None
        return message


Handler = Callable[[Received], Awaitable[None]]
#: Handles a whole fetched batch; every message of it is acked once the handler returns.
BatchHandler = Callable[[list[Received]], Awaitable[None]]
Responder = Callable[[Received], Awaitable[Message | bytes]]
#: How :meth:`SecureBus.follow` settled one message: handled, refused by the bus (counted,
#: reported, audited), refused by the handler (audited ``bus.refused``), sealed under a group
#: key generation not held yet (skipped: the next message supersedes it), or the handler failed.
FollowOutcome = Literal["ok", "rejected", "refused", "key_pending", "error"]
_FOLLOW_OUTCOMES: tuple[FollowOutcome, ...] = ("ok", "rejected", "refused", "key_pending", "error")


@dataclass(frozen=True)
class ConsumerSpec:
    """A JetStream pull consumer the bus consumes from."""

    stream: str
    durable: str
    filter_subjects: tuple[str, ...]
    deliver_policy: js_api.DeliverPolicy = js_api.DeliverPolicy.ALL
    max_ack_pending: int | None = None
    ack_wait_s: float | None = None
    max_deliver: int | None = None
    name: str = ""  # label in metrics and audit; the durable by default
    #: Consumed by several principals (a work queue): what one member cannot open (a key
    #: generation from before it joined) goes back to the group instead of being terminated.
    shared: bool = False
    #: The server deletes the consumer once nobody has pulled from it for this long (seconds;
    #: nats-server >= 2.9 for durables). For temporary consumers, so a follower killed before
    #: it could delete its own does not leave it behind. A pull waiting on the server counts
    #: as activity: :meth:`SecureBus.consume` keeps one outstanding (1 s expiry) while it
    #: runs, so a consumer with no messages for longer than this is not deleted under it.
    inactive_threshold_s: float | None = None

    def __post_init__(self) -> None:
        threshold = self.inactive_threshold_s
        if threshold is not None and not (threshold > 0 and math.isfinite(threshold)):
            raise InvalidArgument(
                f"consumer {self.durable!r}: inactive_threshold_s must be a positive number "
                f"of seconds, not {threshold!r}"
            )

    @property
    def label(self) -> str:
        return self.name or self.durable

    @classmethod
    def direct(cls, principal_id: str, prefix: str = "SYMBI") -> ConsumerSpec:
        """This principal's inbox of direct messages."""
        return cls(f"{prefix}_DIRECT", f"direct-{principal_id}", (Subjects.direct(principal_id),))

    @classmethod
    def work_queue(cls, stream: str, subject: str, group: str) -> ConsumerSpec:
        """A consumer shared by a group: each message goes to exactly one member."""
        return cls(stream, group, (subject,), shared=True)

    @classmethod
    def subscription(
        cls,
        stream: str,
        subjects: tuple[str, ...],
        subscriber: str,
        *,
        deliver_policy: js_api.DeliverPolicy = js_api.DeliverPolicy.NEW,
    ) -> ConsumerSpec:
        """A subscriber's own consumer: it sees every message on ``subjects``."""
        return cls(stream, subscriber, subjects, deliver_policy=deliver_policy)


@dataclass(frozen=True)
class FollowSpec:
    """A latest-value stream :meth:`SecureBus.follow` follows with an ordered push consumer.

    The consumer is ephemeral and in memory (created at each follow, so it starts again from
    ``deliver_policy``); nothing is acknowledged. ``max_pending`` and ``max_pending_bytes``
    bound what is buffered ahead of a slow handler: beyond them nats-py drops messages (a
    slow-consumer error to the connection's error callback) rather than grow, which suits
    streams where the next message supersedes a missed one. ``idle_heartbeat_s``: the server sends these
    while nothing flows; after two missed, nats-py re-creates the consumer from the next
    stream sequence (e.g. a NATS restart lost it).
    """

    stream: str
    filter_subjects: tuple[str, ...]
    name: str  # label in metrics and audit
    deliver_policy: js_api.DeliverPolicy = js_api.DeliverPolicy.LAST_PER_SUBJECT
    idle_heartbeat_s: float = 1.0
    max_pending: int = 4096
    max_pending_bytes: int = 64 * 1024 * 1024

    @property
    def label(self) -> str:
        return self.name


@dataclass
class _ConsumerState:
    seen: SeenSet
    rate: SenderRateLimiter
    stats: dict[str, int] = field(default_factory=dict)
    label: str = ""

    def __post_init__(self) -> None:
        # Metric children of the per-message outcomes, looked up once (``labels()`` costs
        # more than the increment).
        self.handled_ok = CONSUMED.labels(self.label, "ok")
        self.handle_seconds = HANDLE_SECONDS.labels(self.label)


class SecureBus:
    """One principal's endpoint on the bus."""

    def __init__(
        self,
        nc: NatsClient,
        js: JetStreamContext,
        keys: PrincipalKeys,
        keyring: Keyring,
        groups: GroupKeyring,
        *,
        config: BusSection | None = None,
        directory: KeyDirectory | None = None,
        audit_subject: str = "symbi.audit.bus",
        audit_topic: str = "platform",
        name_prefix: str = "SYMBI",
    ) -> None:
        self.nc = nc
        self.js = js
        self.keys = keys
        self.keyring = keyring
        self.groups = groups
        self.config = config or BusSection()
        self.directory = directory
        self.name_prefix = name_prefix
        self.audit_subject = audit_subject
        self.audit_topic = audit_topic
        limits = EnvelopeLimits(
            max_bytes=self.config.max_envelope_bytes,
            clock_skew_ms=int(self.config.clock_skew_s * 1000),
        )
        self.sealer = EnvelopeSealer(keys, keyring, groups)
        self.opener = EnvelopeOpener(keys, keyring, groups, limits=limits)
        self.recorder = AuditRecorder(keys, self.audit)
        self.rejects = RejectReporter(
            keys.principal_id, self._audit_reject, audit_rate=self.config.reject_audit_rate
        )

    @property
    def principal_id(self) -> str:
        return self.keys.principal_id

    # ------------------------------------------------------------------ publishing
    def _encode(self, message: Message | bytes, content_type: str | None) -> tuple[bytes, str]:
        if isinstance(message, Message):
            return message.SerializeToString(), content_type or content_type_of(message)
        return message, content_type or "application/octet-stream"

    async def _await_group_key(self, topic: str) -> None:
        deadline = time.monotonic() + self.config.group_key_wait_s
        while self.groups.latest(topic) is None:
            if time.monotonic() >= deadline:
                raise Unavailable(
                    f"no group key for topic {topic!r} after {self.config.group_key_wait_s:.0f} s "
                    "(is a service running that manages it, and is this principal a member?)",
                    reason="NO_GROUP_KEY",
                )
            await asyncio.sleep(0.05)

    async def _recipient_known(self, recipient: str) -> None:
        if self.keyring.current(recipient) is None:
            raise Unavailable(
                f"no valid certificate for recipient {recipient!r}", reason="UNKNOWN_RECIPIENT"
            )

    def seal(
        self,
        message: Message | bytes,
        *,
        subject: str,
        recipient: str | None = None,
        topic: str | None = None,
        content_type: str | None = None,
        ttl_s: float | None = None,
        msg_id: str | None = None,
        reply_to: str = "",
        correlation_id: str = "",
    ) -> envelope_pb2.Envelope:
        payload, ctype = self._encode(message, content_type)
        default_ttl = self.config.direct_ttl_s if recipient else self.config.default_ttl_s
        env = self.sealer.seal(
            payload,
            subject=subject,
            recipient=recipient,
            topic=topic,
            content_type=ctype,
            ttl_ms=int((ttl_s or default_ttl) * 1000),
            msg_id=msg_id,
            trace=current_trace(),
            reply_to=reply_to,
            correlation_id=correlation_id,
        )
        return env

    async def _js_publish(self, env: envelope_pb2.Envelope, pattern: str) -> str:
        data = env.SerializeToString(deterministic=True)
        if len(data) > self.config.max_envelope_bytes:
            raise InvalidArgument(
                f"envelope of {len(data)} bytes exceeds the {self.config.max_envelope_bytes}-byte limit",
                reason="ENVELOPE_TOO_LARGE",
            )
        ack = await self.js.publish(env.subject, data, headers={"Nats-Msg-Id": env.id})
        _PUBLISHED_BY_PATTERN[pattern].inc()
        if ack.duplicate:
            log.debug("publish of %s was a duplicate (already stored)", env.id)
        return env.id

    async def send(
        self,
        recipient: str,
        message: Message | bytes,
        *,
        subject: str | None = None,
        content_type: str | None = None,
        ttl_s: float | None = None,
        msg_id: str | None = None,
    ) -> str:
        """A durable direct message; returns its id once JetStream stored it."""
        env = self.seal(
            message,
            subject=subject or Subjects.direct(recipient),
            recipient=recipient,
            content_type=content_type,
            ttl_s=ttl_s,
            msg_id=msg_id,
        )
        return await self._js_publish(env, "direct")

    async def publish(
        self,
        topic: str,
        message: Message | bytes,
        *,
        subject: str | None = None,
        content_type: str | None = None,
        ttl_s: float | None = None,
        msg_id: str | None = None,
    ) -> str:
        """A durable message to every member of ``topic``; returns its id once stored."""
        await self._await_group_key(topic)
        env = self.seal(
            message,
            subject=subject or Subjects.topic(topic),
            topic=topic,
            content_type=content_type,
            ttl_s=ttl_s,
            msg_id=msg_id,
        )
        return await self._js_publish(env, "topic")

    async def audit(self, event: events_pb2.AuditEvent) -> str:
        """Publish a (signed) audit event; the audit service consumes ``symbi.audit.>``.

        Build events with :attr:`recorder` (``await bus.recorder.record("x.y", details=…)``),
        which signs them as this principal.
        """
        event_type = event.event_type or "event"
        token = "".join(
            c if c.isalnum() or c in "-_" else "_" for c in event_type.replace(".", "_")
        )
        return await self.publish(
            self.audit_topic,
            event,
            subject=f"{Subjects.AUDIT_PREFIX}.{token}",
            msg_id=event.event_id or None,
            # Audit events wait in the durable stream through an audit outage: they must not
            # expire before the audit service is back.
            ttl_s=self.config.audit_ttl_s,
        )

    async def _audit_reject(self, event_type: str, details: dict[str, Any]) -> None:
        if self.groups.latest(self.audit_topic) is None:
            return  # not a member of the audit topic (an agent): the counter still has it
        await self.recorder.record(event_type, details=details)

    # ------------------------------------------------------------------ request / reply
    async def request(
        self,
        subject: str,
        message: Message | bytes,
        *,
        recipient: str | None = None,
        topic: str | None = None,
        timeout: float = 5.0,
        content_type: str | None = None,
    ) -> Received:
        """Send a request and wait for the verified reply (DeadlineExceeded on timeout)."""
        if topic is not None:
            await self._await_group_key(topic)
        elif recipient is not None:
            await self._recipient_known(recipient)
        env = self.seal(
            message,
            subject=subject,
            recipient=recipient,
            topic=topic,
            content_type=content_type,
            ttl_s=max(timeout, 1.0),
        )
        try:
            reply = await self.nc.request(
                subject, env.SerializeToString(deterministic=True), timeout=timeout
            )
        except NatsTimeoutError:
            raise DeadlineExceeded(f"no reply on {subject} within {timeout:.1f} s") from None
        except Exception as exc:
            if type(exc).__name__ == "NoRespondersError":
                raise Unavailable(f"nobody serves {subject}", reason="NO_RESPONDERS") from None
            raise
        _PUBLISHED_BY_PATTERN["request"].inc()
        opened = self.opener.open(reply.data, subject=reply.subject)
        if opened.envelope.correlation_id != env.id:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_MALFORMED,
                "reply does not answer this request",
                sender=opened.envelope.sender,
                msg_id=opened.envelope.id,
            )
        received = self._received(opened, reply.subject)
        if received.content_type == ERROR_CONTENT_TYPE:
            info = common_pb2.ErrorInfo()
            info.ParseFromString(received.payload)
            name = info.metadata.get("code", "INTERNAL")
            code = ErrorCode[name] if name in ErrorCode.__members__ else ErrorCode.INTERNAL
            details = {k: v for k, v in info.metadata.items() if k != "code"}
            raise error_for_code(code)(info.message, reason=info.reason or None, details=details)
        return received

    async def serve(
        self,
        subject: str,
        responder: Responder,
        *,
        queue: str,
        max_pending: int = 1024,
        concurrency: int = 8,
    ) -> None:
        """Answer requests on ``subject`` (queue group ``queue``) until cancelled, at most
        ``concurrency`` at a time (requests wait in a bounded queue of ``max_pending``)."""
        state = _ConsumerState(
            SeenSet(self.config.seen_set_size),
            SenderRateLimiter(self.config.rate_per_sender, self.config.rate_burst),
            label=queue,
        )
        inbox: asyncio.Queue[Msg] = asyncio.Queue(maxsize=max_pending)

        async def enqueue(msg: Msg) -> None:
            if inbox.full():
                await self.rejects.report(
                    EnvelopeRejected(
                        RejectReason.REJECT_REASON_RATE_LIMITED, "responder queue is full"
                    ),
                    subject=msg.subject,
                    consumer=queue,
                )
                return
            inbox.put_nowait(msg)

        sub = await self.nc.subscribe(
            subject, queue=queue, cb=enqueue, pending_msgs_limit=max_pending
        )

        async def worker() -> None:
            while True:
                msg = await inbox.get()
                await self._answer(msg, responder, state, queue)

        try:
            async with asyncio.TaskGroup() as workers:
                for number in range(max(1, concurrency)):
                    workers.create_task(worker(), name=f"serve-{queue}-{number}")
        finally:
            with contextlib.suppress(Exception):  # the connection may already be draining
                await sub.unsubscribe()

    async def _answer(
        self, msg: Msg, responder: Responder, state: _ConsumerState, label: str
    ) -> None:
        try:
            received = self._accept(msg.data, msg.subject, state, delivered=1)
        except EnvelopeRejected as rejected:
            await self.rejects.report(rejected, subject=msg.subject, consumer=label)
            return
        if not msg.reply:
            return
        try:
            answer = await responder(received)
            payload, ctype = self._encode(answer, None)
        except SymbiError as exc:
            info = common_pb2.ErrorInfo(
                reason=exc.reason, message=exc.message, retryable=exc.retryable
            )
            info.metadata.update({**exc.details, "code": exc.code.name})
            payload, ctype = info.SerializeToString(), ERROR_CONTENT_TYPE
        except Exception:
            log.exception("responder on %s failed", msg.subject)
            info = common_pb2.ErrorInfo(
                reason="INTERNAL", message="internal error", metadata={"code": "INTERNAL"}
            )
            payload, ctype = info.SerializeToString(), ERROR_CONTENT_TYPE
        reply = self.seal(
            payload,
            subject=msg.reply,
            recipient=received.sender,
            content_type=ctype,
            ttl_s=60,
            correlation_id=received.msg_id,
        )
        await self.nc.publish(msg.reply, reply.SerializeToString(deterministic=True))

    # ------------------------------------------------------------------ consuming
    def _received(
        self, opened: OpenedEnvelope, subject: str, delivered: int = 1, stream_seq: int = 0
    ) -> Received:
        env = opened.envelope
        return Received(
            subject=subject,
            sender=env.sender,
            sender_role=opened.sender.role,
            payload=opened.payload,
            content_type=env.content_type,
            msg_id=env.id,
            envelope=env,
            delivered=delivered,
            stream_seq=stream_seq,
        )

    def _accept(self, data: bytes, subject: str, state: _ConsumerState, delivered: int) -> Received:
        return self._admit(self.opener.open(data, subject=subject), subject, state, delivered)

    def _open(self, msg: Msg) -> OpenedEnvelope | EnvelopeRejected:
        """Open one envelope (size, parse, subject, freshness, sender certificate, signature,
        destination, decryption; no consumer state): the first half of :meth:`_check`."""
        try:
            return self.opener.open(msg.data, subject=msg.subject)
        except EnvelopeRejected as rejected:
            return rejected

    def _open_batch(self, messages: list[Msg]) -> list[OpenedEnvelope | EnvelopeRejected]:
        """Open envelopes (signature, freshness, sender, decryption; no consumer state)."""
        return [self._open(msg) for msg in messages]

    async def _open_all(self, messages: list[Msg]) -> list[OpenedEnvelope | EnvelopeRejected]:
        """Open a fetched batch on the event loop, yielding to it every ``_OPEN_CHUNK``.

        Not on a thread pool: libsodium releases the GIL while it verifies, but the rest of
        opening is Python, and verification threads that must win the GIL back from a busy
        event loop (a convoy) made the consumer slower and costlier: measured on 2 cores,
        draining alone 5,751 -> 7,637 msgs/s and 154 -> 125 µs CPU per message inline.
        """
        if len(messages) <= _OPEN_CHUNK:
            return self._open_batch(messages)
        results: list[OpenedEnvelope | EnvelopeRejected] = []
        for start in range(0, len(messages), _OPEN_CHUNK):
            if start:
                await asyncio.sleep(0)  # let fetches, acks and other tasks through
            results.extend(self._open_batch(messages[start : start + _OPEN_CHUNK]))
        return results

    async def _retry_unknown_sender(
        self, msg: Msg, rejected: EnvelopeRejected
    ) -> OpenedEnvelope | EnvelopeRejected:
        # The sender's certificate may be newer than our copy of the keyring: look it up once.
        if (
            rejected.reject_reason != RejectReason.REJECT_REASON_UNKNOWN_SENDER
            or self.directory is None
        ):
            return rejected
        try:
            env = self.opener.parse(msg.data)
            if not await self.directory.fetch_certificate(env.sender, env.sender_key_id):
                return rejected
            return self.opener.open(msg.data, subject=msg.subject)
        except EnvelopeRejected as again:
            return again

    async def _check(
        self,
        msg: Msg,
        opened: OpenedEnvelope | EnvelopeRejected,
        state: _ConsumerState,
        delivered: int = 1,
        stream_seq: int = 0,
    ) -> Received:
        """The checks every consuming path (consume, consume_batches, follow) runs on a
        received message, after :meth:`_open`: a certificate lookup for a sender this keyring
        does not know yet (then opening again), replay and per-sender rate. EnvelopeRejected
        with the reason of the first failure; what to do with the message is the caller's."""
        if isinstance(opened, EnvelopeRejected):
            opened = await self._retry_unknown_sender(msg, opened)
            if isinstance(opened, EnvelopeRejected):
                raise opened
        return self._admit(opened, msg.subject, state, delivered, stream_seq)

    async def _report_rejected(self, rejected: EnvelopeRejected, subject: str, label: str) -> None:
        """Count, log and audit (rate-limited) an envelope the bus refused."""
        await self.rejects.report(rejected, subject=subject, consumer=label)
        CONSUMED.labels(label, "rejected").inc()

    async def _call_handler(self, received: Received, handler: Handler, label: str) -> None:
        if received.envelope.trace:
            # The sender was inside a trace: the handling continues it (Jaeger shows the hop
            # across the bus). Untraced messages cost nothing here.
            with _TRACER.start_as_current_span(
                f"bus consume {label}",
                context=extract_trace(received.envelope.trace),
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "nats",
                    "messaging.destination.name": received.subject,
                },
            ):
                await handler(received)
        else:
            await handler(received)

    def _admit(
        self,
        opened: OpenedEnvelope,
        subject: str,
        state: _ConsumerState,
        delivered: int,
        stream_seq: int = 0,
    ) -> Received:
        """Replay and rate checks (consumer state: event-loop thread only)."""
        env = opened.envelope
        if env.id in state.seen:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_REPLAY,
                "message id already processed",
                sender=env.sender,
                msg_id=env.id,
            )
        if not state.rate.allow(env.sender, at=env.timestamp_ms / 1000):
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_RATE_LIMITED,
                f"sender exceeds {self.config.rate_per_sender:.0f} messages/s",
                sender=env.sender,
                msg_id=env.id,
            )
        return self._received(opened, subject, delivered, stream_seq)

    async def _handle(
        self,
        msg: Msg,
        outcome: OpenedEnvelope | EnvelopeRejected,
        handler: Handler,
        state: _ConsumerState,
        spec: ConsumerSpec,
    ) -> None:
        started = time.perf_counter()
        delivered, stream_seq = _delivery(msg)
        try:
            received = await self._check(msg, outcome, state, delivered, stream_seq)
        except EnvelopeRejected as rejected:
            if (
                rejected.reject_reason == RejectReason.REJECT_REASON_NOT_AUTHORIZED
                and delivered < self.config.max_deliver
                and self._newer_generation(msg.data)
            ):
                # A rotation in flight: the new group key is on its way to us (under load it can
                # take seconds); back off up to ~30 s in all before giving up.
                await msg.nak(delay=self._key_wait_delay(delivered))
                CONSUMED.labels(spec.label, "waiting_for_key").inc()
                return
            if (
                spec.shared
                and rejected.reject_reason == RejectReason.REJECT_REASON_NOT_AUTHORIZED
                and delivered < self.config.max_deliver
            ):
                # Another member of the group may hold the key this one lacks.
                await msg.nak(delay=0.2)
                CONSUMED.labels(spec.label, "left_to_group").inc()
                return
            if rejected.reject_reason == RejectReason.REJECT_REASON_REPLAY:
                await msg.ack()  # processed before: acknowledge again, act never
            elif rejected.reject_reason == RejectReason.REJECT_REASON_RATE_LIMITED:
                # Refused for now, not for ever: a durable message comes back once the sender's
                # bucket has refilled (until max_deliver); counted and audited each time.
                await msg.nak(delay=2.0)
            else:
                await msg.term()
            await self._report_rejected(rejected, msg.subject, spec.label)
            return
        try:
            await self._call_handler(received, handler, spec.label)
        except asyncio.CancelledError:
            raise
        except SymbiError as exc:
            if exc.retryable:
                await msg.nak(delay=min(30.0, 0.5 * 2 ** min(delivered, 6)))
                CONSUMED.labels(spec.label, "retry").inc()
                log.info(
                    "handler of %s will retry %s: %s", spec.label, received.msg_id, exc.message
                )
            else:
                await msg.term()
                CONSUMED.labels(spec.label, "refused").inc()
                await self._audit_refusal(received, spec.label, exc)
            return
        except Exception:
            log.exception(
                "handler of %s failed on %s; it will be redelivered", spec.label, received.msg_id
            )
            await msg.nak(delay=min(30.0, 0.5 * 2 ** min(delivered, 6)))
            CONSUMED.labels(spec.label, "error").inc()
            return
        state.seen.add(received.msg_id)
        await msg.ack()
        state.handled_ok.inc()
        state.handle_seconds.observe(time.perf_counter() - started)

    @staticmethod
    def _key_wait_delay(delivered: int) -> float:
        return min(8.0, 0.25 * float(2 ** min(delivered, 6)))

    def _newer_generation(self, data: bytes) -> bool:
        try:
            env = self.opener.parse(data)
        except EnvelopeRejected:
            return False
        generation = env.key_id.rsplit(":", 1)[-1]
        known = self.groups.generations(env.topic)
        return generation.isdigit() and (not known or int(generation) > max(known))

    async def _audit_refusal(self, received: Received, label: str, exc: SymbiError) -> None:
        if self.groups.latest(self.audit_topic) is None:
            return
        details: dict[str, Any] = {
            "decision": "deny",
            "consumer": label,
            "sender": received.sender,
            "msg_id": received.msg_id,
            "subject": received.subject,
            "reason": exc.reason,
            "message": exc.message,
        }
        try:
            # One event per refused message, whichever replica refuses it.
            event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"symbi:refused:{received.msg_id}")
            await self.recorder.record("bus.refused", details=details, event_id=event_id)
        except Exception:
            log.exception("could not audit a refused message")

    async def ensure_consumer(self, spec: ConsumerSpec) -> None:
        config = js_api.ConsumerConfig(
            # With a name and one filter, the create request's subject carries the filter, so
            # NATS permissions can restrict which consumers a principal may create.
            name=spec.durable,
            durable_name=spec.durable,
            ack_policy=js_api.AckPolicy.EXPLICIT,
            deliver_policy=spec.deliver_policy,
            max_ack_pending=spec.max_ack_pending or self.config.max_ack_pending,
            ack_wait=spec.ack_wait_s or self.config.ack_wait_s,
            max_deliver=spec.max_deliver or self.config.max_deliver,
            inactive_threshold=spec.inactive_threshold_s,
        )
        if len(spec.filter_subjects) == 1:
            config.filter_subject = spec.filter_subjects[0]
        else:
            config.filter_subjects = list(spec.filter_subjects)
        await self.js.add_consumer(spec.stream, config)

    async def consume(
        self, spec: ConsumerSpec, handler: Handler, *, batch: int | None = None
    ) -> None:
        """Pull, verify and handle messages of ``spec`` until cancelled.

        Three overlapping stages, each bounded: fetch (the next batch is already on its way)
        → open (signature, freshness, decryption, in chunks that yield to the event loop) →
        handle and acknowledge, in order.
        """
        await self.ensure_consumer(spec)
        sub = await self.js.pull_subscribe_bind(spec.durable, spec.stream)
        state = _ConsumerState(
            SeenSet(self.config.seen_set_size),
            SenderRateLimiter(self.config.rate_per_sender, self.config.rate_burst),
            label=spec.label,
        )
        size = batch or self.config.fetch_batch
        fetched: asyncio.Queue[list[Msg]] = asyncio.Queue(maxsize=2)
        opened: asyncio.Queue[tuple[list[Msg], list[OpenedEnvelope | EnvelopeRejected]]] = (
            asyncio.Queue(maxsize=2)
        )

        async def fetch() -> None:
            while True:
                try:
                    messages = await sub.fetch(size, timeout=1.0)
                except (NatsTimeoutError, TimeoutError):
                    _raise_if_cancelling()
                    continue
                _raise_if_cancelling()
                await fetched.put(messages)

        async def open_() -> None:
            while True:
                messages = await fetched.get()
                await opened.put((messages, await self._open_all(messages)))

        try:
            async with asyncio.TaskGroup() as stages:
                stages.create_task(fetch(), name=f"fetch-{spec.label}")
                stages.create_task(open_(), name=f"open-{spec.label}")
                while True:
                    messages, outcomes = await opened.get()
                    for msg, outcome in zip(messages, outcomes, strict=True):
                        await self._handle(msg, outcome, handler, state, spec)
        finally:
            with contextlib.suppress(Exception):  # the connection may already be draining
                await sub.unsubscribe()

    async def consume_batches(
        self, spec: ConsumerSpec, handler: BatchHandler, *, batch: int | None = None
    ) -> None:
        """Like :meth:`consume`, but the handler gets each verified batch at once, and the
        batch is acknowledged only after the handler returns (e.g. once it is durable).

        Refused envelopes are terminated and reported as in :meth:`consume`. A retryable
        SymbiError from the handler naks the whole batch; any other error also naks it (the
        handler must be idempotent: redelivery after a crash is normal).
        """
        await self.ensure_consumer(spec)
        sub = await self.js.pull_subscribe_bind(spec.durable, spec.stream)
        state = _ConsumerState(
            SeenSet(self.config.seen_set_size),
            SenderRateLimiter(self.config.rate_per_sender, self.config.rate_burst),
            label=spec.label,
        )
        size = batch or self.config.fetch_batch
        # The next batch is fetched while this one is verified and handled (at most two
        # batches ahead, well inside the ack wait).
        fetched: asyncio.Queue[list[Msg] | Exception] = asyncio.Queue(maxsize=2)

        async def fetch() -> None:
            while True:
                try:
                    messages = await sub.fetch(size, timeout=1.0)
                except (NatsTimeoutError, TimeoutError):
                    _raise_if_cancelling()
                    continue
                except Exception as exc:  # handed to the consuming loop, which raises it
                    await fetched.put(exc)
                    return
                await fetched.put(messages)

        prefetch = asyncio.ensure_future(fetch())
        try:
            while True:
                item = await fetched.get()
                if isinstance(item, Exception):
                    raise item
                messages = item
                outcomes = await self._open_all(messages)
                accepted: list[tuple[Msg, Received]] = []
                for msg, outcome in zip(messages, outcomes, strict=True):
                    delivered, stream_seq = _delivery(msg)
                    try:
                        accepted.append(
                            (msg, await self._check(msg, outcome, state, delivered, stream_seq))
                        )
                    except EnvelopeRejected as rejected:
                        if rejected.reject_reason == RejectReason.REJECT_REASON_REPLAY:
                            await msg.ack()
                        elif rejected.reject_reason == RejectReason.REJECT_REASON_RATE_LIMITED:
                            await msg.nak(delay=2.0)
                        elif (
                            rejected.reject_reason == RejectReason.REJECT_REASON_NOT_AUTHORIZED
                            and delivered < self.config.max_deliver
                            and self._newer_generation(msg.data)
                        ):
                            await msg.nak(delay=self._key_wait_delay(delivered))
                            continue
                        else:
                            await msg.term()
                        await self._report_rejected(rejected, msg.subject, spec.label)
                if not accepted:
                    continue
                try:
                    await handler([received for _, received in accepted])
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    retry = not isinstance(exc, SymbiError) or exc.retryable
                    log.log(
                        logging.INFO if retry else logging.ERROR,
                        "batch handler of %s failed (%s); %s",
                        spec.label,
                        exc,
                        "redelivering" if retry else "terminating the batch",
                    )
                    for msg, _ in accepted:
                        await (msg.nak(delay=1.0) if retry else msg.term())
                    CONSUMED.labels(spec.label, "retry" if retry else "refused").inc(len(accepted))
                    continue
                for msg, received in accepted:
                    state.seen.add(received.msg_id)
                    await msg.ack()
                state.handled_ok.inc(len(accepted))
        finally:
            prefetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await prefetch
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def follow(
        self,
        spec: FollowSpec,
        handler: Handler,
        *,
        on_outcome: Callable[[FollowOutcome], None] | None = None,
    ) -> None:
        """Follow a latest-value stream until cancelled (spawn it): first the latest message
        of every subject of ``spec`` (with the default deliver policy), then each new one as
        it is stored, in order, one at a time.

        For streams where a missed message is superseded by the next one (heartbeats): an
        ordered push consumer — no pull, no acknowledgement, no redelivery — which at trickle
        rates costs a fraction of a pull consumer's CPU. Each message is opened and checked
        exactly as :meth:`consume` does (``_open`` then ``_check``: signature, freshness,
        certificate chain, subject, destination, decryption, a lookup of an unknown sender,
        replay, per-sender rate), and a refused one is counted, logged and audited as
        ``bus.reject``; a handler's non-retryable SymbiError is audited as ``bus.refused``.
        Nothing is redelivered: a retryable error or a key generation not held yet only
        skips the message. The loop outlives every bad message; ``on_outcome`` (optional)
        hears how each one was settled, as ``symbi_bus_consumed_total{consumer,outcome}``
        counts it.
        """
        state = _ConsumerState(
            SeenSet(self.config.seen_set_size),
            SenderRateLimiter(self.config.rate_per_sender, self.config.rate_burst),
            label=spec.label,
        )
        label = spec.label
        # "rejected" is counted by _report_rejected, as for every consumer.
        counted: dict[str, Counter] = {
            o: CONSUMED.labels(label, o) for o in _FOLLOW_OUTCOMES if o != "rejected"
        }

        def settled(outcome: FollowOutcome) -> None:
            child = counted.get(outcome)
            if child is not None:
                child.inc()
            if on_outcome is not None:
                on_outcome(outcome)

        async def on_message(msg: Msg) -> None:
            # On nats-py's task of this subscription: one message at a time, in order.
            started = time.perf_counter()
            try:
                try:
                    # The position in the stream is not parsed: nothing that follows needs it
                    # (Received.stream_seq stays 0), and it costs at every message.
                    received = await self._check(msg, self._open(msg), state)
                except EnvelopeRejected as rejected:
                    if (
                        rejected.reject_reason == RejectReason.REJECT_REASON_NOT_AUTHORIZED
                        and self._newer_generation(msg.data)
                    ):
                        # A rotation in flight; nothing redelivers, the next message will open.
                        settled("key_pending")
                        return
                    await self._report_rejected(rejected, msg.subject, label)
                    settled("rejected")
                    return
                try:
                    await self._call_handler(received, handler, label)
                except SymbiError as exc:
                    if exc.retryable:
                        log.info("%s did not apply %s: %s", label, received.msg_id, exc.message)
                        settled("error")
                        return
                    state.seen.add(received.msg_id)
                    settled("refused")
                    log.warning(
                        "%s refused %s from %s: %s (%s)",
                        label,
                        received.msg_id,
                        received.sender,
                        exc.message,
                        exc.reason,
                    )
                    await self._audit_refusal(received, label, exc)
                    return
                state.seen.add(received.msg_id)
                settled("ok")
                state.handle_seconds.observe(time.perf_counter() - started)
            except asyncio.CancelledError:
                raise
            except Exception:  # a follower outlives one bad message
                settled("error")
                log.exception("%s could not handle a message on %s", label, msg.subject)

        config: js_api.ConsumerConfig | None = None
        if len(spec.filter_subjects) > 1:
            config = js_api.ConsumerConfig(filter_subjects=list(spec.filter_subjects))
        sub = await self.js.subscribe(
            spec.filter_subjects[0],
            stream=spec.stream,
            cb=on_message,
            config=config,
            ordered_consumer=True,
            deliver_policy=spec.deliver_policy,
            idle_heartbeat=spec.idle_heartbeat_s,
            pending_msgs_limit=spec.max_pending,
            pending_bytes_limit=spec.max_pending_bytes,
        )
        try:
            await asyncio.Future()  # messages arrive on ``on_message``; held until cancelled
        finally:
            with contextlib.suppress(Exception):  # the connection may already be draining
                await sub.unsubscribe()
