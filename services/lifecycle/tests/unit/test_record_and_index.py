"""The stored record's codec, agent ids, and the index: listings, cursors, watchers."""

from __future__ import annotations

import asyncio

import pytest

from symbi_common.errors import InvalidArgument, ResourceExhausted
from symbi_lifecycle.index import AgentFilter, AgentIndex
from symbi_lifecycle.record import (
    AgentRecord,
    StoredAgent,
    TransitionInfo,
    decode_record,
    encode_record,
    new_agent_id,
    validate_agent_id,
)
from symbi_lifecycle.states import AgentState


def record(
    agent_id: str, *, name: str = "worker", state: AgentState = AgentState.READY, owner: str = ""
) -> AgentRecord:
    return AgentRecord(
        id=agent_id,
        name=name,
        state=state,
        reason="why",
        owner=owner,
        capabilities=("a", "b"),
        tier="gvisor",
        memory_mb=512,
        cpu_millicores=1000,
        timeout_ms=300_000,
        policy_ids=("agent/x/p/1",),
        created_at_ms=1,
        updated_at_ms=2,
        last=TransitionInfo(AgentState.INITIALIZING, state, "why", "me", 2, 3, "t"),
        restarts=1,
        max_restarts=3,
        restart_at_ms=5,
        task_id="t",
        dispatch_id="t-1",
        status_seq=9,
        scheduled=True,
        source_format="toml",
        source_file="x.toml",
        version="1.0",
        description="d",
        definition_revision=4,
    )


def test_codec_round_trip() -> None:
    original = record("agent-1")
    assert decode_record(encode_record(original)) == original
    created = TransitionInfo(None, AgentState.CREATED, "created", "me", 1, 1)
    first = original.updated(3)
    first = AgentRecord(
        **{f: getattr(first, f) for f in AgentRecord.__slots__ if f != "last"}, last=created
    )
    assert decode_record(encode_record(first)) == first
    fresh = record("agent-2").moved(AgentState.RUNNING, reason="r", actor="a", at_ms=7)
    assert decode_record(encode_record(fresh)) == fresh
    assert len(encode_record(original)) < 700


def test_malformed_record() -> None:
    with pytest.raises(InvalidArgument, match="malformed"):
        decode_record(b'{"v": 1}')
    with pytest.raises(InvalidArgument):
        decode_record(b"not json")


def test_agent_ids() -> None:
    generated = new_agent_id()
    assert validate_agent_id(generated) == generated
    assert validate_agent_id("agent-my_bot-2") == "agent-my_bot-2"
    for bad in ("agent-", "Agent-x", "agent-a.b", "agent-" + "x" * 59, "x"):
        with pytest.raises(InvalidArgument):
            validate_agent_id(bad)


def filled_index(count: int) -> AgentIndex:
    index = AgentIndex()
    for i in range(count):
        state = AgentState.READY if i % 3 else AgentState.FAILED
        owner = "alice" if i % 2 else "bob"
        index.apply(
            StoredAgent(
                record(f"agent-{i:05d}", name=f"w{i % 10}", state=state, owner=owner), i + 1
            )
        )
    return index


def test_pages_cover_everything_once() -> None:
    index = filled_index(1000)
    seen: list[str] = []
    token = ""
    while True:
        page = index.page(AgentFilter(), 64, token)
        assert page.total == 1000
        seen.extend(s.record.id for s in page.agents)
        token = page.next_token
        if not token:
            break
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == 1000


def test_filtered_pages() -> None:
    index = filled_index(300)
    wanted = AgentFilter(state=AgentState.FAILED, owner="bob")
    ids: list[str] = []
    token = ""
    while True:
        page = index.page(wanted, 7, token)
        ids.extend(s.record.id for s in page.agents)
        token = page.next_token
        if not token:
            break
    expected = [f"agent-{i:05d}" for i in range(300) if i % 3 == 0 and i % 2 == 0]
    assert ids == expected
    assert index.page(wanted, 7).total == len(expected)
    assert [s.record.name for s in index.page(AgentFilter(name_prefix="w3"), 1000).agents] == [
        "w3"
    ] * 30
    with pytest.raises(InvalidArgument, match="other filters"):
        index.page(AgentFilter(), 7, index.page(wanted, 7).next_token)
    with pytest.raises(InvalidArgument, match="not one this service issued"):
        index.page(AgentFilter(), 7, "garbage!")


def test_older_revisions_never_replace_newer() -> None:
    index = AgentIndex()
    assert index.apply(StoredAgent(record("agent-1", state=AgentState.RUNNING), 5))
    assert not index.apply(StoredAgent(record("agent-1", state=AgentState.READY), 4))
    stored = index.get("agent-1")
    assert stored is not None
    assert stored.record.state is AgentState.RUNNING


async def test_a_slow_watcher_is_ended() -> None:
    index = AgentIndex(queue_size=2, max_watchers=1)
    watcher = index.watch("agent-1")
    with pytest.raises(ResourceExhausted):
        index.watch("")
    for revision in range(1, 5):
        watcher.offer(StoredAgent(record("agent-1"), revision))
    watcher.offer(StoredAgent(record("agent-2"), 9))  # not this watcher's agent
    with pytest.raises(ResourceExhausted, match="fell too far behind"):
        await asyncio.wait_for(watcher.next(), 1)
    index.unwatch(watcher)
    index.watch("")  # room again
