"""The JetStream journal and the KV lease store against a real NATS server: compare-and-set
fences a second writer, tombstones are purged, a load sees exactly the live records, and the
lease expires on the server's TTL so a standby's election takes over."""

from __future__ import annotations

import asyncio

import pytest
from nats.js import JetStreamContext

from symbi_common.config import NatsSection
from symbi_common.errors import Aborted
from symbi_common.jetstream import Provisioner
from symbi_scheduler import (
    LeaderElection,
    ResourceRequest,
    SystemClock,
    TaskRecord,
    TaskSpec,
    TaskState,
)
from symbi_scheduler.events import JOURNAL_STREAM, lease_bucket
from symbi_scheduler.js_journal import JetStreamJournal
from symbi_scheduler.kv_lease import KvLeaseStore
from symbi_testing import eventually


def record(task_id: str, state: TaskState = TaskState.QUEUED, seq: int = 0) -> TaskRecord:
    spec = TaskSpec(task_id, f"agent-{task_id}", ResourceRequest(memory_mb=64, cpu_millicores=100))
    return TaskRecord(spec=spec, state=state, seq=seq, enqueued_at=1.0, updated_at=1.0)


@pytest.fixture
async def journal(jetstream: JetStreamContext) -> JetStreamJournal:
    provisioner = Provisioner(jetstream, NatsSection())
    await provisioner.provision((JOURNAL_STREAM,), ())
    return JetStreamJournal(jetstream, provisioner.stream_name(JOURNAL_STREAM), timeout_s=5)


async def test_journal_keeps_the_latest_record_per_task_and_fences_stale_writers(
    journal: JetStreamJournal, jetstream: JetStreamContext
) -> None:
    snap = await journal.load()
    assert (list(snap.records), snap.position) == ([], 0)
    pos = await journal.put(record("a"), expected_position=0)
    pos = await journal.put(record("b", seq=1), expected_position=pos)
    pos = await journal.put(record("a", TaskState.RUNNING), expected_position=pos)
    # A writer that last saw an older position (a deposed leader) is refused.
    with pytest.raises(Aborted):
        await journal.put(record("c"), expected_position=pos - 1)
    with pytest.raises(Aborted):
        await journal.remove("a", expected_position=1)
    pos = await journal.remove("b", expected_position=pos)
    snap = await journal.load()
    assert snap.position == pos
    assert [(r.task_id, r.state) for r in snap.records] == [("a", TaskState.RUNNING)]
    info = await jetstream.stream_info(journal._stream)
    assert info.state.messages == 1  # b's record and its tombstone are gone
    # Purging does not move the position: the next write still expects it.
    pos = await journal.put(record("c"), expected_position=pos)
    assert sorted(r.task_id for r in (await journal.load()).records) == ["a", "c"]


async def test_journal_load_skips_records_that_do_not_decode(
    journal: JetStreamJournal, jetstream: JetStreamContext
) -> None:
    pos = await journal.put(record("good"), expected_position=0)
    await jetstream.publish(journal.subject("junk"), b'{"v": 99}')
    snap = await journal.load()
    assert [r.task_id for r in snap.records] == ["good"]
    assert snap.position == pos + 1


async def test_journal_load_reads_many_records(journal: JetStreamJournal) -> None:
    pos = 0
    for i in range(2500):
        pos = await journal.put(record(f"t{i}", seq=i), expected_position=pos)
    snap = await journal.load()
    assert len(snap.records) == 2500
    assert snap.position == pos


async def test_lease_store_compare_and_set_and_ttl(jetstream: JetStreamContext) -> None:
    provisioner = Provisioner(jetstream, NatsSection())
    spec = lease_bucket(1.0)
    await provisioner.provision((), (spec,))
    store = KvLeaseStore(await jetstream.key_value(provisioner.bucket_name(spec)))
    assert await store.get("leader") is None
    rev = await store.create("leader", b"one")
    with pytest.raises(Aborted):
        await store.create("leader", b"two")
    with pytest.raises(Aborted):
        await store.update("leader", b"two", revision=rev + 5)
    rev2 = await store.update("leader", b"two", revision=rev)
    current = await store.get("leader")
    assert current is not None
    assert (current.value, current.revision) == (b"two", rev2)
    with pytest.raises(Aborted):
        await store.delete("leader", revision=rev)
    # The server drops the key a TTL after its last write.
    await eventually(lambda: _absent(store), timeout=5)
    await store.create("leader", b"three")


async def _absent(store: KvLeaseStore) -> bool:
    return await store.get("leader") is None


async def test_two_elections_on_the_real_bucket_have_one_leader(
    jetstream: JetStreamContext,
) -> None:
    provisioner = Provisioner(jetstream, NatsSection())
    spec = lease_bucket(1.0)
    await provisioner.provision((), (spec,))
    store = KvLeaseStore(await jetstream.key_value(provisioner.bucket_name(spec)))
    clock = SystemClock()
    a = LeaderElection(store, clock, holder="a", ttl_s=1.0, renew_interval_s=0.25)
    b = LeaderElection(store, clock, holder="b", ttl_s=1.0, renew_interval_s=0.25)
    await a.step()
    await b.step()
    assert a.is_leader
    assert not b.is_leader
    assert b.known_holder == "a"
    # a dies (stops renewing): b takes over within about a TTL plus a renewal.
    for _ in range(40):
        await asyncio.sleep(0.1)
        await b.step()
        assert not (a.is_leader and b.is_leader)
        if b.is_leader:
            break
    assert b.is_leader
    assert not a.is_leader
