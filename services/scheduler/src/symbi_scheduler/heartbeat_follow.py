"""Following node heartbeats: an ordered push consumer, envelopes checked as the bus does.

Why not ``SecureBus.consume``: it pulls, and at heartbeat rates (100 nodes × 1/s, evenly
spread) every pull comes back with one message, whatever its batch size — so each heartbeat
cost a pull request, an acknowledgement (two socket writes), a hand-off to a verification
thread and back, and the timers of ``fetch``: about 0.8 ms of CPU per heartbeat, 8.3–9.7% of
a core for the idle scheduler process at 100 nodes (bench/scheduler.py (d), measured before
the bus opened small batches on the event loop, commit cd7283a, which removes the thread
hand-off but not the pull and the acknowledgement). Heartbeats need
none of what a durable, acknowledged pull gives: a heartbeat that is missed is superseded by
the node's next one, and only the latest per node matters.

So each process follows ``symbi.node.heartbeat.*`` on the HEARTBEATS stream with an
*ordered push consumer* (ephemeral, in memory, no acknowledgements, flow control and idle
heartbeats from the server): first the latest heartbeat of every node (deliver last per
subject), then every new one as it is stored — no pull, no polling delay. nats-py re-creates
the consumer from the next stream sequence on a gap, or when the server has been silent for
two idle-heartbeat intervals (``idle_heartbeat_s``, 1 s: the server sends those only while
no heartbeat flows), e.g. after a NATS server restart lost the in-memory consumer.

Every message is still checked exactly like ``SecureBus.consume`` checks it, with the bus's
own parts: ``bus.opener.open`` (signature, freshness, sender certificate, destination,
decryption), a certificate lookup for a sender the keyring does not know yet, replay (a
seen-set) and per-sender rate limits; a refused envelope is reported through
``bus.rejects`` (counted, logged, audited), and a refusal by the handler (e.g. a heartbeat
for another node) is audited as ``bus.refused``, as the bus does. Verification runs on the
event loop (~0.1 ms per heartbeat): cheaper than the thread hand-off at trickle rates.
A heartbeat sealed with a group-key generation this process does not hold yet (a rotation
in flight) is skipped quietly: the node's next heartbeat will open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api
from prometheus_client import Counter

from symbi_common.bus import Received, SecureBus
from symbi_common.bus.limits import SeenSet, SenderRateLimiter
from symbi_common.crypto.envelope import OpenedEnvelope
from symbi_common.crypto.rejects import EnvelopeRejected, RejectReason
from symbi_common.errors import SymbiError

__all__ = ["HEARTBEAT_SUBJECTS", "HeartbeatFollower"]

log = logging.getLogger(__name__)

HEARTBEAT_SUBJECTS = "symbi.node.heartbeat.*"

FOLLOWED = Counter(
    "symbi_scheduler_heartbeat_envelopes_total",
    "Heartbeat envelopes followed, by outcome (ok, rejected, refused, key_pending, error).",
    ["outcome"],
)
# Bound once: a label lookup per heartbeat is measurable at 100 heartbeats/s.
_OK, _REJECTED, _REFUSED, _KEY_PENDING, _ERROR = (
    FOLLOWED.labels(outcome) for outcome in ("ok", "rejected", "refused", "key_pending", "error")
)

Handler = Callable[[Received], Awaitable[None]]


class HeartbeatFollower:
    """Follows heartbeats on ``stream`` with an ordered push consumer; see the module."""

    def __init__(
        self,
        bus: SecureBus,
        js: JetStreamContext,
        stream: str,
        handler: Handler,
        *,
        label: str = "scheduler-heartbeats",
        pending_limit: int = 4096,
        idle_heartbeat_s: float = 1.0,
    ) -> None:
        self._bus = bus
        self._js = js
        self._stream = stream
        self._handler = handler
        self._label = label
        self._pending_limit = pending_limit
        self._idle_heartbeat_s = idle_heartbeat_s
        config = bus.config
        self._seen = SeenSet(config.seen_set_size)
        self._rate = SenderRateLimiter(config.rate_per_sender, config.rate_burst)

    async def run(self) -> None:
        """Follow until cancelled (spawn it)."""
        sub = await self._js.subscribe(
            HEARTBEAT_SUBJECTS,
            stream=self._stream,
            cb=self.on_message,
            ordered_consumer=True,
            deliver_policy=js_api.DeliverPolicy.LAST_PER_SUBJECT,
            idle_heartbeat=self._idle_heartbeat_s,
            # Bounded: a process that falls this far behind drops messages, and the ordered
            # consumer starts again from the first one it missed.
            pending_msgs_limit=self._pending_limit,
            pending_bytes_limit=self._pending_limit * 64 * 1024,
        )
        try:
            # Messages arrive on nats-py's task of this subscription (``on_message``, one at
            # a time, in order); this loop only holds the subscription until cancelled.
            await asyncio.Event().wait()
        finally:
            with contextlib.suppress(Exception):  # the connection may already be draining
                await sub.unsubscribe()

    # ---------------------------------------------------------------- one message
    async def on_message(self, msg: Msg) -> None:
        try:
            received = await self._check(msg)
            if received is None:
                return
            await self._handle(received)
        except asyncio.CancelledError:
            raise
        except Exception:  # a follower must outlive one bad message
            _ERROR.inc()
            log.exception("could not handle a heartbeat on %s", msg.subject)

    async def _check(self, msg: Msg) -> Received | None:
        """The verified message, or None when it was refused (reported) or skipped."""
        bus = self._bus
        try:
            try:
                opened = bus.opener.open(msg.data, subject=msg.subject)
            except EnvelopeRejected as rejected:
                opened = await self._retry_unknown_sender(msg, rejected)
            env = opened.envelope
            if env.id in self._seen:
                raise EnvelopeRejected(
                    RejectReason.REJECT_REASON_REPLAY,
                    "message id already processed",
                    sender=env.sender,
                    msg_id=env.id,
                )
            if not self._rate.allow(env.sender, at=env.timestamp_ms / 1000):
                raise EnvelopeRejected(
                    RejectReason.REJECT_REASON_RATE_LIMITED,
                    f"sender exceeds {bus.config.rate_per_sender:.0f} messages/s",
                    sender=env.sender,
                    msg_id=env.id,
                )
        except EnvelopeRejected as rejected:
            if (
                rejected.reject_reason == RejectReason.REJECT_REASON_NOT_AUTHORIZED
                and self._newer_generation(msg.data)
            ):
                _KEY_PENDING.inc()
                return None
            _REJECTED.inc()
            await bus.rejects.report(rejected, subject=msg.subject, consumer=self._label)
            return None
        return Received(
            subject=msg.subject,
            sender=env.sender,
            sender_role=opened.sender.role,
            payload=opened.payload,
            content_type=env.content_type,
            msg_id=env.id,
            envelope=env,
            # stream_seq stays 0: nothing here needs the position (parsing it costs).
        )

    async def _handle(self, received: Received) -> None:
        try:
            await self._handler(received)
        except SymbiError as exc:
            if exc.retryable:
                # No redelivery here: the node's next heartbeat supersedes this one.
                _ERROR.inc()
                log.info("heartbeat %s not applied: %s", received.msg_id, exc.message)
                return
            _REFUSED.inc()
            self._seen.add(received.msg_id)
            await self._audit_refusal(received, exc)
            return
        self._seen.add(received.msg_id)
        _OK.inc()

    async def _retry_unknown_sender(self, msg: Msg, rejected: EnvelopeRejected) -> OpenedEnvelope:
        """A new node's certificate may be newer than this process's copy of the keyring."""
        bus = self._bus
        if (
            rejected.reject_reason != RejectReason.REJECT_REASON_UNKNOWN_SENDER
            or bus.directory is None
        ):
            raise rejected
        env = bus.opener.parse(msg.data)
        if not await bus.directory.fetch_certificate(env.sender, env.sender_key_id):
            raise rejected
        return bus.opener.open(msg.data, subject=msg.subject)

    def _newer_generation(self, data: bytes) -> bool:
        try:
            env = self._bus.opener.parse(data)
        except EnvelopeRejected:
            return False
        generation = env.key_id.rsplit(":", 1)[-1]
        known = self._bus.groups.generations(env.topic)
        return generation.isdigit() and (not known or int(generation) > max(known))

    async def _audit_refusal(self, received: Received, exc: SymbiError) -> None:
        """The event ``SecureBus.consume`` writes when a handler refuses a message."""
        bus = self._bus
        log.warning(
            "refused heartbeat %s from %s: %s (%s)",
            received.msg_id,
            received.sender,
            exc.message,
            exc.reason,
        )
        if bus.groups.latest(bus.audit_topic) is None:
            return
        details = {
            "decision": "deny",
            "consumer": self._label,
            "sender": received.sender,
            "msg_id": received.msg_id,
            "subject": received.subject,
            "reason": exc.reason,
            "message": exc.message,
        }
        try:
            event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"symbi:refused:{received.msg_id}")
            await bus.recorder.record("bus.refused", details=details, event_id=event_id)
        except Exception:
            log.exception("could not audit a refused heartbeat")
