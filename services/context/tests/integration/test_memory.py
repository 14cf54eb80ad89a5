"""Agent memory on the real embedded engine: kinds, isolation, sharing, importance, TTL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from symbi_common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from symbi_context import (
    AccessLevel,
    ClearancePolicy,
    EdgeVectorStore,
    HashingEmbedder,
    MemoryKind,
    MemoryQuery,
    MemoryStore,
    NewMemory,
    parse_filter,
)


@pytest.fixture
async def memory(tmp_path: Path, clock: Any, sink: Any) -> AsyncIterator[MemoryStore]:
    store = EdgeVectorStore(tmp_path / "store")
    policy = ClearancePolicy(
        clearances={
            "bob": AccessLevel.RESTRICTED,
            "root": AccessLevel.SECRET,
            "alice": AccessLevel.CONFIDENTIAL,
        }
    )
    mem = MemoryStore(store, HashingEmbedder(), policy, clock=clock, events=sink)
    await mem.open()
    yield mem
    await store.aclose()


def contents(results) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.record.content for r in results]


async def test_store_and_retrieve_own_memory(memory: MemoryStore, sink: Any) -> None:
    stored = await memory.store(
        "alice",
        [
            NewMemory("the deploy pipeline uses blue green releases", tags=("ops",)),
            NewMemory("my favourite colour is teal"),
        ],
    )
    assert [r.kind for r in stored] == [MemoryKind.LONG_TERM] * 2
    results = await memory.retrieve("alice", MemoryQuery("how do releases of the pipeline work"))
    assert contents(results)[0] == "the deploy pipeline uses blue green releases"
    assert results[0].owned
    assert results[0].score > 0
    assert results[0].relevance > 0
    assert sink.events[0].kind == "stored"
    assert sink.events[0].ids == tuple(r.id for r in stored)
    got = await memory.get("alice", stored[0].id)
    assert got.tags == ("ops",)


async def test_an_agent_never_reads_another_agents_private_memory(memory: MemoryStore) -> None:
    (secret,) = await memory.store("alice", [NewMemory("the vault password is hunter2")])
    await memory.store("mallory", [NewMemory("unrelated note about lunch")])
    for kinds in ((), (MemoryKind.LONG_TERM,), (MemoryKind.SHARED,)):
        results = await memory.retrieve(
            "mallory", MemoryQuery("vault password hunter2", kinds=kinds)
        )
        assert "the vault password is hunter2" not in contents(results)
    with pytest.raises(NotFound):
        await memory.get("mallory", secret.id)
    assert await memory.forget("mallory", [secret.id]) == 0
    with pytest.raises(NotFound):
        await memory.feedback("mallory", secret.id, 1.0)
    with pytest.raises(NotFound):
        await memory.share("mallory", secret.id, AccessLevel.PUBLIC)
    # Caller filters cannot widen the scope to another agent.
    with pytest.raises(InvalidArgument, match="may not name 'agent_id'"):
        await memory.retrieve(
            "mallory",
            MemoryQuery(
                "vault", filter=parse_filter({"should": [{"key": "agent_id", "match": "alice"}]})
            ),
        )
    # The owner still has it.
    assert (await memory.get("alice", secret.id)).content == "the vault password is hunter2"


async def test_shared_memory_is_read_only_when_policy_allows(memory: MemoryStore) -> None:
    await memory.store(
        "alice",
        [
            NewMemory(
                "public runbook: restart the ingest worker",
                kind=MemoryKind.SHARED,
                access_level=AccessLevel.PUBLIC,
            ),
            NewMemory(
                "restricted runbook: rotate the ingest worker key",
                kind=MemoryKind.SHARED,
                access_level=AccessLevel.RESTRICTED,
            ),
            NewMemory(
                "confidential runbook: ingest worker incident notes",
                kind=MemoryKind.SHARED,
                access_level=AccessLevel.CONFIDENTIAL,
            ),
            NewMemory("private: ingest worker is my favourite service"),
        ],
    )
    query = MemoryQuery("ingest worker runbook", limit=10)
    # carol has the default clearance (public)
    assert sorted(contents(await memory.retrieve("carol", query))) == [
        "public runbook: restart the ingest worker"
    ]
    # bob is cleared for restricted
    assert sorted(contents(await memory.retrieve("bob", query))) == [
        "public runbook: restart the ingest worker",
        "restricted runbook: rotate the ingest worker key",
    ]
    # root sees every shared level, still not the private one
    got = contents(await memory.retrieve("root", query))
    assert len(got) == 3
    assert "private: ingest worker is my favourite service" not in got
    # include_shared=False keeps to one's own
    assert (
        contents(
            await memory.retrieve(
                "root", MemoryQuery("ingest worker runbook", include_shared=False)
            )
        )
        == []
    )
    results = await memory.retrieve("bob", query)
    assert all(not r.owned for r in results)


async def test_sharing_needs_clearance_and_long_term_memory(memory: MemoryStore) -> None:
    with pytest.raises(PermissionDenied, match="secret"):
        await memory.store(
            "bob", [NewMemory("x", kind=MemoryKind.SHARED, access_level=AccessLevel.SECRET)]
        )
    (note,) = await memory.store("alice", [NewMemory("the office wifi name is orchard")])
    with pytest.raises(PermissionDenied):
        await memory.share("alice", note.id, AccessLevel.SECRET)
    shared = await memory.share("alice", note.id, AccessLevel.PUBLIC)
    assert shared.kind is MemoryKind.SHARED
    assert contents(await memory.retrieve("carol", MemoryQuery("office wifi name"))) == [
        note.content
    ]
    await memory.unshare("alice", note.id)
    assert contents(await memory.retrieve("carol", MemoryQuery("office wifi name"))) == []
    (short,) = await memory.store("alice", [NewMemory("hello", kind=MemoryKind.SHORT_TERM)])
    with pytest.raises(FailedPrecondition, match="only long-term"):
        await memory.share("alice", short.id, AccessLevel.PUBLIC)


async def test_short_term_memory_expires_and_is_swept(memory: MemoryStore, clock: Any) -> None:
    (old,) = await memory.store(
        "alice", [NewMemory("user said hello from Lisbon", kind=MemoryKind.SHORT_TERM, ttl_s=60)]
    )
    clock.advance(30)
    await memory.store(
        "alice",
        [NewMemory("user asked for the weather in Lisbon", kind=MemoryKind.SHORT_TERM, ttl_s=600)],
    )
    recent = await memory.recent("alice")
    assert [r.content for r in recent] == [
        "user asked for the weather in Lisbon",
        "user said hello from Lisbon",
    ]
    clock.advance(31)
    assert [r.content for r in await memory.recent("alice")] == [
        "user asked for the weather in Lisbon"
    ]
    assert "user said hello from Lisbon" not in contents(
        await memory.retrieve("alice", MemoryQuery("hello Lisbon"))
    )
    with pytest.raises(NotFound):
        await memory.get("alice", old.id)
    assert await memory.sweep() == 1
    assert await memory.sweep() == 0


async def test_working_memory_belongs_to_a_task(memory: MemoryStore) -> None:
    with pytest.raises(InvalidArgument, match="task_id"):
        await memory.store("alice", [NewMemory("step one", kind=MemoryKind.WORKING)])
    await memory.store(
        "alice",
        [
            NewMemory("step one copied the customer table", kind=MemoryKind.WORKING, task_id="t1"),
            NewMemory("step one copied the orders table", kind=MemoryKind.WORKING, task_id="t2"),
        ],
    )
    results = await memory.retrieve("alice", MemoryQuery("copied table", task_id="t1"))
    assert contents(results) == ["step one copied the customer table"]
    assert await memory.clear_task("alice", "t1") == 1
    assert await memory.clear_task("bob", "t2") == 0  # not bob's
    assert contents(await memory.retrieve("alice", MemoryQuery("copied table"))) == [
        "step one copied the orders table"
    ]


async def test_feedback_and_use_raise_importance(memory: MemoryStore, clock: Any) -> None:
    a, b = await memory.store(
        "alice",
        [
            NewMemory("the standup meeting is at nine"),
            NewMemory("the standup meeting moved to ten"),
        ],
    )
    first = {
        r.record.id: r
        for r in await memory.retrieve("alice", MemoryQuery("when is the standup meeting"))
    }
    await memory.feedback("alice", a.id, 1.0)
    await memory.feedback("alice", a.id, 1.0)
    await memory.feedback("alice", b.id, -1.0)
    clock.advance(60)
    second = {
        r.record.id: r
        for r in await memory.retrieve("alice", MemoryQuery("when is the standup meeting"))
    }
    assert second[a.id].importance > first[a.id].importance
    assert second[b.id].importance < second[a.id].importance
    assert second[a.id].record.access_count == 1  # counted on the first retrieval
    with pytest.raises(InvalidArgument, match=r"outside -1\.\.1"):
        await memory.feedback("alice", a.id, 3.0)


async def test_filters_by_tag_and_time(memory: MemoryStore, clock: Any) -> None:
    t0 = clock.now()
    await memory.store("alice", [NewMemory("invoice sent to acme", tags=("billing",))])
    clock.advance(3600)
    await memory.store("alice", [NewMemory("invoice paid by acme", tags=("billing", "done"))])
    assert contents(
        await memory.retrieve("alice", MemoryQuery("acme invoice", tags=("done",)))
    ) == ["invoice paid by acme"]
    assert contents(await memory.retrieve("alice", MemoryQuery("acme invoice", until=t0 + 10))) == [
        "invoice sent to acme"
    ]
    flt = parse_filter({"must": [{"key": "created_at", "range": {"gt": t0 + 10}}]})
    assert contents(await memory.retrieve("alice", MemoryQuery("acme invoice", filter=flt))) == [
        "invoice paid by acme"
    ]


async def test_bad_input_is_refused_with_reasons(memory: MemoryStore) -> None:
    cases = [
        (NewMemory(""), "EMPTY_CONTENT"),
        (NewMemory("x" * 20_000), "CONTENT_TOO_LARGE"),
        (NewMemory("x", importance=2.0), "BAD_IMPORTANCE"),
        (NewMemory("x", kind=MemoryKind.SHARED), "MISSING_ACCESS_LEVEL"),
        (NewMemory("x", access_level=AccessLevel.PUBLIC), "BAD_ACCESS_LEVEL"),
        (NewMemory("x", ttl_s=5), "BAD_TTL"),
        (NewMemory("x", tags=("",)), "BAD_TAGS"),
    ]
    for item, reason in cases:
        with pytest.raises(InvalidArgument) as err:
            await memory.store("alice", [item])
        assert err.value.reason == reason
    with pytest.raises(InvalidArgument, match="not a UUID"):
        await memory.get("alice", "nope")
    with pytest.raises(InvalidArgument, match="empty"):
        await memory.retrieve("alice", MemoryQuery("  "))
    with pytest.raises(InvalidArgument, match="agent id"):
        await memory.store("", [NewMemory("x")])
