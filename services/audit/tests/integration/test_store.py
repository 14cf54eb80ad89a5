"""The SQLite audit store (a real file in a temp dir): durability rules, queries, proofs."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from symbi_audit.chain import GENESIS, chain_hash
from symbi_audit.checkpoint import Checkpoint
from symbi_audit.event import AuditEvent
from symbi_audit.merkle import leaf_hash, root_of, verify_consistency, verify_inclusion
from symbi_audit.note import NoteSigner
from symbi_audit.query import EventFilter
from symbi_audit.store import AuditStore
from symbi_common.errors import FailedPrecondition, InvalidArgument, NotFound

ORIGIN = "audit.symbi.test/log"
Events = Callable[..., list[AuditEvent]]


@pytest.fixture
def store(tmp_path: Path) -> AuditStore:
    s = AuditStore.open(tmp_path / "audit.db", origin=ORIGIN)
    yield s  # type: ignore[misc]
    s.close()


def test_append_assigns_consecutive_indices_and_hashes(store: AuditStore, events: Events) -> None:
    batch = events(10)
    assert store.append_batch(batch[:4]) == [0, 1, 2, 3]
    assert store.append_batch(batch[4:]) == list(range(4, 10))
    leaves = [leaf_hash(e.canonical_bytes) for e in batch]
    assert store.size == 10
    assert store.root() == root_of(leaves)
    chain = GENESIS
    for i, leaf in enumerate(leaves):
        chain = chain_hash(chain, leaf)
        entry = store.get(i)
        assert entry.event == batch[i]
        assert (entry.leaf_hash, entry.chain_hash) == (leaf, chain)
    assert store.chain_head == chain


def test_reappending_known_ids_returns_existing_indices(store: AuditStore, events: Events) -> None:
    batch = events(6)
    store.append_batch(batch[:3])
    # Re-sent events (a redelivery after a crash) mixed with new ones and an in-batch repeat.
    assert store.append_batch([batch[1], batch[3], batch[3], batch[0], batch[4]]) == [1, 3, 3, 0, 4]
    assert store.size == 5
    changed = dataclasses.replace(batch[2], actor="someone-else")
    assert store.append_batch([changed]) == [2]
    assert store.get(2).event == batch[2]
    assert store.size == 5


def test_state_survives_reopen(tmp_path: Path, events: Events) -> None:
    path = tmp_path / "audit.db"
    with AuditStore.open(path, origin=ORIGIN) as first:
        first.append_batch(events(37))
        root, head = first.root(), first.chain_head
    with AuditStore.open(path, origin=ORIGIN) as again:
        assert (again.size, again.root(), again.chain_head) == (37, root, head)
        assert again.append_batch(events(30, 40)) == [30, 31, 32, 33, 34, 35, 36, 37, 38, 39]
        assert again.verify_range(0).ok


def test_one_writer_and_one_origin(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with (
        AuditStore.open(path, origin=ORIGIN),
        pytest.raises(FailedPrecondition, match="another process"),
    ):
        AuditStore.open(path, origin=ORIGIN)
    with pytest.raises(FailedPrecondition, match="belongs to log"):
        AuditStore.open(path, origin="other.example/log")


def test_proofs_verify_against_roots_at_every_size(store: AuditStore, events: Events) -> None:
    batch = events(45)
    roots = []
    for event in batch:
        store.append_batch([event])
        roots.append(store.root())
    for size in (1, 2, 7, 16, 31, 45):
        assert store.root_at(size) == roots[size - 1]
        for index in {0, size // 2, size - 1}:
            proof = store.inclusion_proof(index, size)
            assert proof.leaf_hash == leaf_hash(batch[index].canonical_bytes)
            proof.verify(roots[size - 1])
            verify_inclusion(proof.leaf_hash, index, size, proof.hashes, roots[size - 1])
        for old in sorted({1, min(3, size), max(1, size // 2), size}):
            c = store.consistency_proof(old, size)
            verify_consistency(old, size, c.hashes, roots[old - 1], roots[size - 1])
    with pytest.raises(InvalidArgument):
        store.inclusion_proof(45, 45)
    with pytest.raises(InvalidArgument):
        store.consistency_proof(3, 46)


def test_query_filters_and_pagination(store: AuditStore, events: Events) -> None:
    batch = events(200)
    store.append_batch(batch)

    def all_pages(where: EventFilter, *, limit: int, descending: bool = False) -> list[int]:
        seen: list[int] = []
        cursor = None
        while True:
            page = store.query(where, cursor=cursor, limit=limit, descending=descending)
            seen.extend(e.index for e in page.entries)
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor

    assert all_pages(EventFilter(), limit=33) == list(range(200))
    assert all_pages(EventFilter(), limit=50, descending=True) == list(range(199, -1, -1))
    agent = all_pages(EventFilter(agent_id="agent-3"), limit=7)
    assert agent == [i for i in range(200) if i % 5 == 3]
    typed = all_pages(EventFilter(event_types=("sandbox.violation", "policy.changed")), limit=9)
    assert typed == [i for i in range(200) if i % 4 in (2, 3)]
    actor = all_pages(EventFilter(actor="svc:tool"), limit=100)
    assert actor == [i for i in range(200) if i % 4 == 1]
    base = batch[0].timestamp
    window = EventFilter(since=base + timedelta(seconds=10), until=base + timedelta(seconds=20))
    assert all_pages(window, limit=4) == list(range(10, 20))
    denied = all_pages(EventFilter(text='"DECISION":"DENY"'), limit=10)
    assert denied == [i for i in range(200) if i % 8 == 0]
    combined = EventFilter(agent_id="agent-0", event_types=("policy.decision",), text="deny")
    assert all_pages(combined, limit=3) == [i for i in range(200) if i % 40 == 0]
    tagged = all_pages(EventFilter(compliance_tag="HIPAA"), limit=60)
    assert tagged == [i for i in range(200) if i % 2 == 0]
    assert store.query(EventFilter(text="100%_")).entries == ()
    with pytest.raises(InvalidArgument, match="cursor"):
        store.query(cursor="bogus")
    page = store.query(limit=5)
    with pytest.raises(InvalidArgument, match="other direction"):
        store.query(cursor=page.next_cursor, descending=True)


def test_get_by_id_and_missing(store: AuditStore, events: Events) -> None:
    batch = events(5)
    store.append_batch(batch)
    assert store.get_by_id(batch[3].event_id).index == 3
    with pytest.raises(NotFound):
        store.get_by_id(events(6, 7)[0].event_id)
    with pytest.raises(NotFound):
        store.get(5)


def test_checkpoints_must_match_the_tree(store: AuditStore, events: Events) -> None:
    signer = NoteSigner.generate(ORIGIN)
    store.append_batch(events(9))
    assert store.latest_checkpoint() is None
    good = Checkpoint(ORIGIN, 9, store.root()).sign(signer)
    store.add_checkpoint(good)
    store.add_checkpoint(Checkpoint(ORIGIN, 4, store.root_at(4)).sign(signer))
    assert store.latest_checkpoint() == good
    assert store.checkpoint_at(4).size == 4
    assert [c.size for c in store.checkpoints()] == [4, 9]
    with pytest.raises(InvalidArgument, match="not this log's root"):
        store.add_checkpoint(Checkpoint(ORIGIN, 5, store.root_at(4)).sign(signer))


def test_prune_keeps_proofs_and_idempotency(store: AuditStore, events: Events) -> None:
    batch = events(50)
    store.append_batch(batch)
    root = store.root()
    proof = store.inclusion_proof(3)
    chain_19 = store.get(19).chain_hash
    assert store.prune_before(20) == 20
    assert store.pruned_before == 20
    with pytest.raises(FailedPrecondition, match="archived"):
        store.get(3)
    assert store.inclusion_proof(3) == proof
    store.inclusion_proof(25).verify(root)
    assert store.append_batch([batch[5], batch[30]]) == [5, 30]
    assert store.size == 50
    assert store.chain_before(20) == chain_19
    assert store.verify_range(20).ok
    assert store.append_batch(events(50, 52)) == [50, 51]


def test_verify_range_finds_a_tampered_row(
    store: AuditStore, events: Events, tmp_path: Path
) -> None:
    store.append_batch(events(30))
    assert store.verify_range(0).ok
    body = store.get(12).event.canonical_bytes.decode().replace('"n":12', '"n":13')
    store._writer.execute("UPDATE entries SET body = ? WHERE idx = 12", (body,))
    check = store.verify_range(0)
    assert (check.ok, check.first_bad_index) == (False, 12)


def test_concurrent_readers_see_consistent_roots(store: AuditStore, events: Events) -> None:
    batch = events(400)
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            size = store.size
            if size:
                proof = store.inclusion_proof(size - 1, size)
                try:
                    proof.verify(store.root_at(size))
                except Exception as exc:  # collected and asserted below
                    errors.append(repr(exc))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(0, 400, 20):
        store.append_batch(batch[i : i + 20])
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
