"""The audit service on the bus: ingest of ``symbi.audit.>``, checkpoint announcements and
the service's own alarms.

Ingest (:class:`Ingestor`) is one durable JetStream consumer per replica (each replica keeps
a full log). A fetched batch is verified by the bus (envelope signature, freshness,
decryption), then parsed, its publisher signatures checked against the cluster keyring, and
appended in one transaction on the writer thread; the bus acknowledges the batch only after
that transaction committed. A crash before the commit redelivers the batch; a crash after it
redelivers what was not acknowledged, which the store recognises by event id.

Events whose publisher signature is missing, by an unknown key, or wrong are still appended
— the record of what was claimed, by whom it was delivered, is evidence — with their
:class:`~symbi_audit.ingest.PublisherStatus` in the entry's ingest record, and an
``audit.unverified_event`` alarm (rate-limited). Messages that are not audit events at all are
acknowledged without an entry and raise an ``audit.malformed_event`` alarm. See
``docs/adr/0031-audit-ingest.md``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from nats.js import api as js_api
from prometheus_client import Counter, Gauge, Histogram

from symbi.bus.v1 import events_pb2
from symbi_audit.checkpoint import SignedCheckpoint
from symbi_audit.event import AuditEvent
from symbi_audit.ingest import IngestRecord, PublisherStatus, classify
from symbi_audit.log import AuditLog
from symbi_audit.log_threads import LogThreads
from symbi_common.auditing import from_proto
from symbi_common.bus import ConsumerSpec, Received, SecureBus
from symbi_common.bus.limits import TokenBucket
from symbi_common.errors import InvalidArgument, SymbiError, Unavailable
from symbi_common.jetstream.spec import Subjects

__all__ = [
    "AUDIT_FILTER",
    "CHECKPOINT_PREFIX",
    "CheckpointAnnouncer",
    "IngestAlarms",
    "IngestCounts",
    "Ingestor",
    "checkpoint_subject",
    "ingest_consumer",
    "subject_token",
]

log = logging.getLogger(__name__)

AUDIT_FILTER = f"{Subjects.AUDIT_PREFIX}.>"
CHECKPOINT_PREFIX = "symbi.checkpoint"
_PUBLISH_TIMEOUT_S = 10.0

INGESTED = Counter(
    "symbi_audit_ingested_total",
    "Audit events appended to the log, by publisher signature status.",
    ["status"],
)
DUPLICATES = Counter(
    "symbi_audit_duplicates_total", "Re-delivered audit events recognised by event id."
)
MALFORMED = Counter(
    "symbi_audit_malformed_total", "Messages on the audit stream that were not audit events."
)
BATCH_SECONDS = Histogram(
    "symbi_audit_batch_seconds",
    "Time to verify and durably append one ingest batch.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LOG_SIZE = Gauge("symbi_audit_log_size", "Entries in this replica's audit log.")
CHECKPOINTS = Counter("symbi_audit_checkpoints_published_total", "Checkpoints announced.")


def subject_token(text: str) -> str:
    """``text`` as one NATS subject token: characters other than ``[A-Za-z0-9_-]`` become ``_``."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in text)


def checkpoint_subject(origin: str) -> str:
    """``symbi.checkpoint.<origin as one token>`` (the message carries the exact origin)."""
    return f"{CHECKPOINT_PREFIX}.{subject_token(origin)}"


def ingest_consumer(
    stream: str, instance_id: str, *, batch: int, ack_wait_s: float
) -> ConsumerSpec:
    """This replica's durable consumer of every audit event, from the start of the stream.

    ``max_deliver`` is unlimited: an audit event is never given up on (a batch that cannot
    be stored is retried until the store works again).
    """
    return ConsumerSpec(
        stream=stream,
        durable=f"audit-log-{instance_id}",
        filter_subjects=(AUDIT_FILTER,),
        deliver_policy=js_api.DeliverPolicy.ALL,
        max_ack_pending=max(4 * batch, 1024),
        ack_wait_s=ack_wait_s,
        max_deliver=-1,
        name="audit-ingest",
    )


@dataclass
class IngestCounts:
    """What this process ingested since it started (served by GetStatus)."""

    events: int = 0
    duplicates: int = 0
    unverified: int = 0
    malformed: int = 0
    batches: int = 0


@dataclass(frozen=True)
class _Parsed:
    event: AuditEvent
    sender: str


@dataclass(frozen=True)
class _PublisherKey:
    principal_id: str
    public_key: bytes


class _KeyTable:
    """The :class:`~symbi_audit.ports.PublisherKeyring` port over keys resolved for a batch."""

    def __init__(self, keys: Mapping[str, _PublisherKey]) -> None:
        self._keys = keys

    def public_key(self, key_id: str) -> bytes | None:
        found = self._keys.get(key_id)
        return None if found is None else found.public_key

    def principal_of(self, key_id: str) -> str:
        found = self._keys.get(key_id)
        return "" if found is None else found.principal_id


@dataclass(frozen=True)
class _Appended:
    indices: list[int]
    statuses: list[PublisherStatus]
    size_before: int


def _classify(parsed: Sequence[_Parsed], keys: _KeyTable) -> list[PublisherStatus]:
    """Check publisher signatures (verification threads: libsodium releases the GIL)."""
    return [classify(p.event, keys) for p in parsed]


def _append(
    log_: AuditLog, parsed: Sequence[_Parsed], statuses: Sequence[PublisherStatus], keys: _KeyTable
) -> _Appended:
    """Writer thread: append durably with each event's ingest record."""
    events = [p.event for p in parsed]
    records = [
        IngestRecord(status, sender=p.sender, publisher=keys.principal_of(p.event.publisher_key_id))
        for p, status in zip(parsed, statuses, strict=True)
    ]
    before = log_.store.size
    return _Appended(log_.append_batch(events, records), list(statuses), before)


@dataclass
class IngestAlarms:
    """The audit service's own audit events about bad input, at most ``rate`` per second
    per (problem, sender); what a bucket holds back is reported as ``suppressed`` in the next
    one. Counters and logs see every case."""

    bus: SecureBus
    rate: float
    burst: float = 5.0
    max_pairs: int = 10_000
    _buckets: OrderedDict[tuple[str, str], tuple[TokenBucket, int]] = field(
        default_factory=OrderedDict
    )

    def _admit(self, key: tuple[str, str]) -> tuple[bool, int]:
        if self.rate <= 0:
            return False, 0
        now = time.monotonic()
        bucket, suppressed = self._buckets.get(key) or (
            TokenBucket(self.rate, self.burst, self.burst, now),
            0,
        )
        allowed = bucket.take(now)
        self._buckets[key] = (bucket, 0 if allowed else suppressed + 1)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self.max_pairs:
            self._buckets.popitem(last=False)
        return allowed, suppressed

    async def raise_alarm(self, kind: str, sender: str, key: str, details: dict[str, str]) -> None:
        """Record ``audit.<kind>`` about ``key`` (an event or message id) if the bucket allows.

        The event id is derived from ``key``, so replicas raising the same alarm produce one
        event in the log.
        """
        allowed, suppressed = self._admit((kind, sender))
        if not allowed:
            return
        event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"symbi:audit:{kind}:{key}")
        try:
            async with asyncio.timeout(_PUBLISH_TIMEOUT_S):
                await self.bus.recorder.record(
                    f"audit.{kind}",
                    details={**details, "sender": sender, "suppressed": suppressed},
                    event_id=event_id,
                    compliance_tags=("SECURITY",),
                )
        except asyncio.CancelledError:
            raise
        except Exception:  # an alarm must not stop ingest; the counters and logs have it
            log.warning("could not record the audit.%s alarm for %s", kind, key, exc_info=True)


class CheckpointAnnouncer:
    """Publishes signed checkpoints as ``CheckpointPublished`` on ``symbi.checkpoint.<origin>``
    (C5), each size at most once per process; a failed announcement is retried by the next
    call with the latest checkpoint."""

    def __init__(self, bus: SecureBus, origin: str) -> None:
        self.bus = bus
        self.origin = origin
        self.subject = checkpoint_subject(origin)
        self.announced_size = -1

    async def announce(self, signed: SignedCheckpoint) -> None:
        if signed.size <= self.announced_size:
            return
        message = events_pb2.CheckpointPublished(
            origin=signed.checkpoint.origin,
            tree_size=signed.size,
            root_hash=signed.root_hash,
            signed_note=signed.note,
        )
        async with asyncio.timeout(_PUBLISH_TIMEOUT_S):
            await self.bus.publish(
                "platform",
                message,
                subject=self.subject,
                msg_id=f"checkpoint-{subject_token(self.origin)}-{signed.size}",
            )
        self.announced_size = signed.size
        CHECKPOINTS.inc()
        log.debug("announced checkpoint %s at size %d", self.origin, signed.size)

    async def announce_quietly(self, signed: SignedCheckpoint) -> None:
        """:meth:`announce`, logging instead of raising (the checkpoint is stored anyway)."""
        try:
            await self.announce(signed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("could not announce checkpoint at size %d: %s", signed.size, exc)


class Ingestor:
    """The batch handler of the audit consumer (see the module docstring)."""

    def __init__(
        self,
        threads: LogThreads,
        bus: SecureBus,
        announcer: CheckpointAnnouncer,
        alarms: IngestAlarms,
        *,
        verify_threads: int = 2,
    ) -> None:
        self.threads = threads
        self.bus = bus
        self.announcer = announcer
        self.alarms = alarms
        self.counts = IngestCounts()
        self._verify_threads = verify_threads
        self._verifier = ThreadPoolExecutor(
            max_workers=verify_threads, thread_name_prefix="audit-verify"
        )

    def close(self) -> None:
        """Stop the verification threads (blocking; after the consumer was cancelled)."""
        self._verifier.shutdown(wait=True, cancel_futures=True)

    async def _classify_all(
        self, parsed: Sequence[_Parsed], keys: _KeyTable
    ) -> list[PublisherStatus]:
        loop = asyncio.get_running_loop()
        size = max(64, -(-len(parsed) // self._verify_threads))
        chunks = await asyncio.gather(
            *(
                loop.run_in_executor(self._verifier, _classify, parsed[i : i + size], keys)
                for i in range(0, len(parsed), size)
            )
        )
        return [status for chunk in chunks for status in chunk]

    async def handle(self, batch: list[Received]) -> None:
        started = time.perf_counter()
        parsed: list[_Parsed] = []
        for received in batch:
            try:
                event = from_proto(received.parse(events_pb2.AuditEvent))
            except InvalidArgument as exc:
                await self._malformed(received, exc)
                continue
            parsed.append(_Parsed(event, received.sender))
        if parsed:
            keys = await self._resolve_keys(parsed)
            statuses = await self._classify_all(parsed, keys)
            try:
                appended = await self.threads.write(
                    _append, self.threads.log, parsed, statuses, keys
                )
            except SymbiError as exc:
                # Not acknowledged: the batch comes back. Storage failures are worth retrying.
                raise Unavailable(f"audit store append failed: {exc.message}") from exc
            except OSError as exc:
                raise Unavailable(f"audit store append failed: {exc}") from exc
            await self._account(parsed, appended)
        self.counts.batches += 1
        BATCH_SECONDS.observe(time.perf_counter() - started)
        LOG_SIZE.set(self.threads.size)
        signed = await self.threads.write(self.threads.log.checkpoint_if_due)
        if signed is not None:
            await self.announcer.announce_quietly(signed)

    async def _resolve_keys(self, parsed: Sequence[_Parsed]) -> _KeyTable:
        """Certificates of the batch's publisher keys, checked against the root now.

        A key the keyring does not hold yet is looked up once in the key directory under
        the delivering sender and the event's actor (a relayed event is signed by its actor).
        """
        keyring, directory = self.bus.keyring, self.bus.directory
        found: dict[str, _PublisherKey] = {}
        for item in parsed:
            key_id = item.event.publisher_key_id
            if not key_id or key_id in found:
                continue
            cert = keyring.by_key_id(key_id)
            if cert is None and directory is not None:
                for principal in dict.fromkeys((item.sender, item.event.actor)):
                    try:
                        async with asyncio.timeout(_PUBLISH_TIMEOUT_S):
                            fetched = await directory.fetch_certificate(principal, key_id)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # unknown stays unknown: the event is flagged
                        log.debug("certificate lookup %s/%s failed: %s", principal, key_id, exc)
                        fetched = False
                    if fetched:
                        cert = keyring.by_key_id(key_id)
                        break
            if cert is not None:
                found[key_id] = _PublisherKey(cert.principal_id, bytes(cert.verify_key))
        return _KeyTable(found)

    async def _account(self, parsed: Sequence[_Parsed], appended: _Appended) -> None:
        counts = self.counts
        seen: set[int] = set()
        for item, index, status in zip(parsed, appended.indices, appended.statuses, strict=True):
            if index < appended.size_before or index in seen:
                counts.duplicates += 1
                DUPLICATES.inc()
                continue
            seen.add(index)
            counts.events += 1
            INGESTED.labels(status.name.lower()).inc()
            if status != PublisherStatus.VERIFIED:
                counts.unverified += 1
                event = item.event
                log.warning(
                    "audit event %s from %s appended with publisher status %s (key %r)",
                    event.event_id,
                    item.sender,
                    status.name,
                    event.publisher_key_id,
                )
                await self.alarms.raise_alarm(
                    "unverified_event",
                    item.sender,
                    str(event.event_id),
                    {
                        "decision": "flag",
                        "event_id": str(event.event_id),
                        "index": str(index),
                        "status": status.name,
                        "publisher_key_id": event.publisher_key_id,
                        "event_type": event.event_type,
                    },
                )

    async def _malformed(self, received: Received, exc: InvalidArgument) -> None:
        self.counts.malformed += 1
        MALFORMED.inc()
        log.warning(
            "message %s from %s on %s is not an audit event: %s",
            received.msg_id,
            received.sender,
            received.subject,
            exc.message,
        )
        await self.alarms.raise_alarm(
            "malformed_event",
            received.sender,
            received.msg_id,
            {
                "decision": "deny",
                "msg_id": received.msg_id,
                "subject": received.subject,
                "reason": exc.reason,
                "message": exc.message,
            },
        )
