"""The store and files the service adds: ingest records, time windows to index ranges,
checkpoints covering a size, the log key on disk, the threaded log and growth waits."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from symbi_audit.checkpoint import Checkpoint
from symbi_audit.event import AuditEvent
from symbi_audit.ingest import IngestRecord, PublisherStatus
from symbi_audit.log import AuditLog
from symbi_audit.log_key import load_or_create_log_key, write_public_key
from symbi_audit.log_threads import LogThreads
from symbi_audit.note import NoteSigner
from symbi_audit.query import EventFilter
from symbi_audit.store import AuditStore
from symbi_common.errors import ConfigError, InvalidArgument

from ..conftest import BASE_TIME, ORIGIN

Events = Callable[..., list[AuditEvent]]


def test_ingest_records_are_kept_for_new_entries_only(tmp_path: Path, events: Events) -> None:
    batch = events(4)
    records = [
        IngestRecord(PublisherStatus.VERIFIED, "svc-a", "svc-a", 1000),
        IngestRecord(PublisherStatus.UNSIGNED, "svc-b"),
        IngestRecord(PublisherStatus.BAD_SIGNATURE, "svc-b", "svc-a", 3000),
        IngestRecord(PublisherStatus.UNKNOWN_KEY, "svc-c"),
    ]
    with AuditStore.open(tmp_path / "a.db", origin=ORIGIN) as store:
        store.append_batch(batch[:3], records[:3])
        # A re-send with other records changes nothing; the new event gets its record.
        again = [IngestRecord(PublisherStatus.VERIFIED, "svc-z")] * 4
        assert store.append_batch(batch, again) == [0, 1, 2, 3]
        assert store.get(0).ingest == records[0]
        unsigned = store.get(1).ingest
        assert unsigned is not None
        assert (unsigned.status, unsigned.sender) == (PublisherStatus.UNSIGNED, "svc-b")
        assert unsigned.appended_us > 0  # stamped at append when not given
        assert store.get(3).ingest == IngestRecord(
            PublisherStatus.VERIFIED,
            "svc-z",
            "",
            store.get(3).ingest.appended_us,  # type: ignore[union-attr]
        )
        store.append_batch(events(4, 6))  # through the library: no record
        assert store.get(5).ingest is None
        flagged = store.query(EventFilter(publisher_status=PublisherStatus.BAD_SIGNATURE))
        assert [e.index for e in flagged.entries] == [2]
        plain = store.query(EventFilter(publisher_status=PublisherStatus.UNSPECIFIED))
        assert [e.index for e in plain.entries] == [4, 5]
        with pytest.raises(InvalidArgument, match="records"):
            store.append_batch(events(6, 8), records[:1])


def test_index_range_of_a_time_window(tmp_path: Path, events: Events) -> None:
    batch = events(20)
    # Arrival order differs from time order: the window's entries are not contiguous.
    order = [*batch[10:], *batch[:10]]
    with AuditStore.open(tmp_path / "w.db", origin=ORIGIN) as store:
        store.append_batch(order)
        since, until = BASE_TIME + timedelta(seconds=8), BASE_TIME + timedelta(seconds=12)
        first, end = store.index_range(since, until) or (None, None)
        positions = [i for i, e in enumerate(order) if since <= e.timestamp < until]
        assert (first, end) == (min(positions), max(positions) + 1)
        assert store.index_range(None, None) == (0, 20)
        assert store.index_range(BASE_TIME + timedelta(days=1), None) is None


def test_checkpoint_covering(tmp_path: Path, events: Events, log_key: NoteSigner) -> None:
    with AuditLog.open(tmp_path / "c.db", signer=log_key) as log:
        log.append_batch(events(5))
        at5 = log.checkpoint()
        log.append_batch(events(5, 9))
        at9 = log.checkpoint()
        assert log.store.checkpoint_covering(3) == at5
        assert log.store.checkpoint_covering(5) == at5
        assert log.store.checkpoint_covering(6) == at9
        assert log.store.checkpoint_covering(10) is None
        check = log.verify(0)
        assert check.ok
        assert check.checkpoints_checked == 2


def test_verify_names_a_checkpoint_signed_by_another_key(
    tmp_path: Path, events: Events, log_key: NoteSigner
) -> None:
    with AuditLog.open(tmp_path / "f.db", signer=log_key) as log:
        log.append_batch(events(4))
        forged = Checkpoint(ORIGIN, 4, log.store.root()).sign(NoteSigner.generate(ORIGIN))
        log.store.add_checkpoint(forged)
        check = log.verify(0)
        assert not check.ok
        assert "checkpoint at size 4" in check.entries.problem


def test_log_key_is_generated_once_and_must_match_the_origin(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "log.key"
    first = load_or_create_log_key(path, "symbi.audit/a")
    assert path.stat().st_mode & 0o777 == 0o600
    again = load_or_create_log_key(path, "symbi.audit/a")
    assert again.private_key_text() == first.private_key_text()
    with pytest.raises(ConfigError, match="a log keeps its name and key"):
        load_or_create_log_key(path, "symbi.audit/b")
    path.write_text("not a key\n")
    with pytest.raises(ConfigError, match="not a log signing key"):
        load_or_create_log_key(path, "symbi.audit/a")
    pub = tmp_path / "audit" / "log.pub"
    write_public_key(pub, first)
    assert pub.read_text() == f"{first.verifier}\n"
    before = os.stat(pub).st_mtime_ns
    write_public_key(pub, first)  # unchanged: not rewritten
    assert os.stat(pub).st_mtime_ns == before


async def test_threads_serialise_writes_and_wake_followers(
    tmp_path: Path, events: Events, log_key: NoteSigner
) -> None:
    threads = LogThreads(AuditLog.open(tmp_path / "t.db", signer=log_key), readers=2)
    try:
        assert not await threads.wait_for_growth(0, timeout=0.05)
        waiter = asyncio.create_task(threads.wait_for_growth(0, timeout=10))
        await asyncio.sleep(0)  # let it start waiting
        await threads.write(threads.log.append_batch, events(3))
        assert await waiter
        page = await threads.read(threads.log.store.query, None, limit=10)
        assert [e.index for e in page.entries] == [0, 1, 2]
    finally:
        await asyncio.to_thread(threads.close)
    threads.close()  # idempotent
