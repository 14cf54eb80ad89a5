"""The audit log: the store plus the log key, the checkpoint policy and retention.

This is the object the service wires up. It is synchronous (the store blocks on fsync), so
the app calls it from one worker thread for writes and any threads for reads::

    log = AuditLog.open(path, signer=NoteSigner.parse(key_text),
                        policy=CheckpointPolicy(every_entries=1000, every_seconds=5))
    indices = log.append_batch(events)        # durable when it returns: ack the messages
    if (signed := log.checkpoint_if_due()):   # after each batch and on a timer
        publish(signed.note)
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from symbi_audit.checkpoint import Checkpoint, CheckpointPolicy, SignedCheckpoint
from symbi_audit.errors import NoteError
from symbi_audit.event import AuditEvent
from symbi_audit.export import export_to_file
from symbi_audit.ingest import IngestRecord, PublisherStatus, classify
from symbi_audit.note import NoteSigner
from symbi_audit.ports import Clock, PublisherKeyring, SystemClock
from symbi_audit.query import EventFilter, LogEntry
from symbi_audit.report import ComplianceReport, ReportRules, build_report
from symbi_audit.store import AuditStore, RangeCheck
from symbi_audit.verify import verify_export_file
from symbi_common.errors import Aborted, InvalidArgument, Unauthenticated

__all__ = ["ArchiveResult", "AuditLog", "EventAuthenticator", "LogCheck"]

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class LogCheck:
    """Result of :meth:`AuditLog.verify`: the entry check and how many checkpoints passed."""

    entries: RangeCheck
    checkpoints_checked: int

    @property
    def ok(self) -> bool:
        """Whether entries and checkpoints all verified."""
        return self.entries.ok


@dataclasses.dataclass(frozen=True, slots=True)
class ArchiveResult:
    """One archived segment: entries ``start..end-1`` now live only in ``path``."""

    path: Path
    start: int
    end: int
    removed: int


class EventAuthenticator:
    """Checks publisher signatures on events before they are appended."""

    def __init__(self, keyring: PublisherKeyring, *, require_signature: bool = True) -> None:
        self._keyring = keyring
        self._require = require_signature

    def classify(self, event: AuditEvent) -> PublisherStatus:
        """How the event's publisher signature checks out (never raises)."""
        return classify(event, self._keyring)

    def check(self, event: AuditEvent) -> None:
        """Raise :class:`Unauthenticated` unless the event is signed by a known publisher."""
        status = self.classify(event)
        if status == PublisherStatus.UNSIGNED:
            if self._require:
                raise Unauthenticated(f"audit event {event.event_id} is not signed")
            return
        if status == PublisherStatus.UNKNOWN_KEY:
            raise Unauthenticated(
                f"audit event {event.event_id} is signed by unknown key {event.publisher_key_id!r}"
            )
        if status == PublisherStatus.BAD_SIGNATURE:
            raise Unauthenticated(
                f"audit event {event.event_id}: signature by {event.publisher_key_id!r} "
                "does not verify"
            )


class AuditLog:
    """The audit store with its signing key, checkpoint policy and archive."""

    def __init__(
        self,
        store: AuditStore,
        signer: NoteSigner,
        *,
        policy: CheckpointPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        if signer.name != store.origin:
            raise InvalidArgument(
                f"log key is named {signer.name!r} but the log origin is {store.origin!r}"
            )
        self.store = store
        self.signer = signer
        self.policy = policy or CheckpointPolicy()
        self._clock = clock or SystemClock()
        latest = store.latest_checkpoint()
        self._last_size = latest.size if latest else 0
        self._last_time = self._clock.monotonic()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        signer: NoteSigner,
        policy: CheckpointPolicy | None = None,
        clock: Clock | None = None,
    ) -> AuditLog:
        """Open (or create) the store at ``path`` for the log named after ``signer``."""
        store = AuditStore.open(path, origin=signer.name)
        try:
            return cls(store, signer, policy=policy, clock=clock)
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def append_batch(
        self, events: Sequence[AuditEvent], records: Sequence[IngestRecord] | None = None
    ) -> list[int]:
        """:meth:`AuditStore.append_batch`: durable and idempotent when it returns."""
        return self.store.append_batch(events, records)

    def verify(self, start: int = 0, end: int | None = None) -> LogCheck:
        """Re-hash entries ``start..end-1`` (:meth:`AuditStore.verify_range`) and check every
        stored checkpoint with a size in ``[start, end]``: its signature by this log's key
        and its root against the tree."""
        stop = self.store.size if end is None else end
        check = self.store.verify_range(start, stop)
        if not check.ok:
            return LogCheck(check, 0)
        verifier = self.signer.verifier
        checked = 0
        for stored in self.store.checkpoints(start, stop):
            try:
                signed = SignedCheckpoint.open(stored.note, [verifier])
            except NoteError as exc:
                problem = f"checkpoint at size {stored.size} does not verify: {exc.message}"
                return LogCheck(RangeCheck(start, stop, None, problem), checked)
            if signed.root_hash != self.store.root_at(signed.size):
                problem = f"checkpoint at size {signed.size} does not match the tree"
                return LogCheck(RangeCheck(start, stop, None, problem), checked)
            checked += 1
        return LogCheck(check, checked)

    def checkpoint_if_due(self) -> SignedCheckpoint | None:
        """Sign a checkpoint when the policy says so; the app publishes what this returns."""
        size = self.store.size
        now = self._clock.monotonic()
        if not self.policy.due(
            size=size, last_size=self._last_size, now=now, last_time=self._last_time
        ):
            return None
        return self.checkpoint()

    def checkpoint(self) -> SignedCheckpoint:
        """Sign (and store) a checkpoint at the current size; reuse one already there."""
        size, root = self.store.tree_head()
        latest = self.store.latest_checkpoint()
        if latest is not None and latest.size == size:
            signed = latest
        else:
            signed = Checkpoint(self.store.origin, size, root).sign(self.signer)
            self.store.add_checkpoint(signed, self._clock.now())
            _log.info("signed checkpoint at size %d", size)
        self._last_size = size
        self._last_time = self._clock.monotonic()
        return signed

    def export(self, path: str | os.PathLike[str], *, start: int | None = None) -> Path:
        """Export ``start`` (default: first stored entry) up to a fresh checkpoint."""
        head = self.checkpoint()
        export_to_file(self.store, path, log_key=self.signer.verifier, start=start, checkpoint=head)
        return Path(path)

    def report(
        self, since: datetime, until: datetime, *, rules: ReportRules | None = None
    ) -> ComplianceReport:
        """The compliance report of ``[since, until)`` over the entries still in the store,
        anchored by the latest checkpoint."""

        def window() -> Iterator[LogEntry]:
            cursor: str | None = None
            where = EventFilter(since=since, until=until)
            while True:
                page = self.store.query(where, cursor=cursor, limit=1000)
                yield from page.entries
                if page.next_cursor is None:
                    return
                cursor = page.next_cursor

        return build_report(
            window(),
            origin=self.store.origin,
            since=since,
            until=until,
            rules=rules,
            checkpoint=self.store.latest_checkpoint(),
            generated_at=self._clock.now(),
        )

    def archive(self, directory: str | os.PathLike[str]) -> ArchiveResult | None:
        """Retention: move entries up to the latest checkpoint into a verified export file.

        The segment is written atomically, verified offline against this log's key, and only
        then are its event bodies removed from the store. Every hash stays, so proofs for
        archived and later entries keep working (see ``docs/audit.md``). Returns ``None``
        when there is nothing new to archive.
        """
        head = self.store.latest_checkpoint()
        start = self.store.pruned_before
        if head is None or head.size <= start:
            return None
        safe_origin = re.sub(r"[^A-Za-z0-9._-]+", "_", self.store.origin)
        path = Path(directory) / f"{safe_origin}-{start:012d}-{head.size:012d}.jsonl"
        export_to_file(self.store, path, log_key=self.signer.verifier, start=start, checkpoint=head)
        result = verify_export_file(path, [self.signer.verifier])
        if not result.ok:
            raise Aborted(f"archive {path} did not verify ({result.problem}); nothing was pruned")
        removed = self.store.prune_before(head.size)
        _log.info("archived audit entries %d..%d to %s", start, head.size - 1, path)
        return ArchiveResult(path, start, head.size, removed)
