"""Two lifecycle replicas, concurrent writers, and kill -9."""

from __future__ import annotations

import asyncio

import nats
import pytest

from symbi.lifecycle.v1 import lifecycle_pb2
from symbi_common.config import NatsSection
from symbi_common.errors import Aborted, AlreadyExists, SymbiError
from symbi_common.jetstream import Provisioner
from symbi_lifecycle.kv_store import AGENTS_BUCKET, DEFINITIONS_BUCKET, KvAgentStore
from symbi_lifecycle.lifecycle import now_ms
from symbi_lifecycle.record import AgentRecord, TransitionInfo
from symbi_lifecycle.states import AgentState
from symbi_testing import eventually

from .conftest import FAST, NO_POLICY, start_lifecycle, wait_state

STATE = lifecycle_pb2.AgentState


async def test_two_replicas_racing_exactly_one_wins(services, open_client, examples) -> None:
    a = open_client(await start_lifecycle(services, "a", NO_POLICY))
    b = open_client(await start_lifecycle(services, "b", NO_POLICY))
    source = examples[0].read_text()
    agents = [await a.create(source, agent_id=f"agent-race-{i}") for i in range(8)]
    for agent in agents:
        # Both replicas read the same revision and ask for conflicting moves at once.
        results = await asyncio.gather(
            a.call(
                "Suspend",
                lifecycle_pb2.TransitionRequest(id=agent.id, expected_revision=agent.revision),
            ),
            b.call(
                "Terminate",
                lifecycle_pb2.TransitionRequest(id=agent.id, expected_revision=agent.revision),
            ),
            return_exceptions=True,
        )
        won = [r for r in results if isinstance(r, lifecycle_pb2.Agent)]
        lost = [r for r in results if isinstance(r, SymbiError)]
        assert len(won) == 1, results
        assert len(lost) == 1, results
        assert isinstance(lost[0], Aborted), lost[0]
        final = await b.get(agent.id)
        history = await a.call("GetHistory", lifecycle_pb2.GetHistoryRequest(id=agent.id))
        moves = [STATE.Name(t.to_state) for t in history.transitions][3:]
        if won[0].state == STATE.AGENT_STATE_SUSPENDED:
            assert final.state == STATE.AGENT_STATE_SUSPENDED
            assert moves == ["AGENT_STATE_SUSPENDED"]
        else:
            assert final.state == STATE.AGENT_STATE_TERMINATED
            assert moves == ["AGENT_STATE_TERMINATING", "AGENT_STATE_TERMINATED"]
    # Each replica lists what the other wrote.
    listing = await b.call("ListAgents", lifecycle_pb2.ListAgentsRequest())
    assert listing.total == len(agents)


async def test_store_compare_and_set_under_contention(nats_server) -> None:
    """Two store instances on two connections: per revision, exactly one write lands."""
    section = NatsSection(url=nats_server.url)
    connections = [await nats.connect(nats_server.url) for _ in range(2)]
    try:
        js = connections[0].jetstream()
        await Provisioner(js, section).provision((), (AGENTS_BUCKET, DEFINITIONS_BUCKET))
        stores = []
        for nc in connections:
            jsx = nc.jetstream()
            stores.append(
                KvAgentStore(
                    await jsx.key_value("symbi_lifecycle_agents"),
                    await jsx.key_value("symbi_lifecycle_definitions"),
                    clock=now_ms,
                )
            )
        at = now_ms()
        record = AgentRecord(
            id="agent-cas",
            name="cas",
            state=AgentState.READY,
            reason="",
            owner="",
            capabilities=(),
            tier="docker",
            memory_mb=64,
            cpu_millicores=100,
            timeout_ms=1000,
            policy_ids=(),
            created_at_ms=at,
            updated_at_ms=at,
            last=TransitionInfo(None, AgentState.READY, "", "t", at, 1),
        )
        stored, created = await stores[0].create(record, "{}", "fp")
        assert created
        again, created = await stores[1].create(record, "{}", "fp")  # the same request, retried
        assert not created
        assert again.revision == stored.revision
        with pytest.raises(AlreadyExists):
            await stores[1].create(record, "{}", "another request")
        wins = {0: 0, 1: 0}
        for _ in range(50):
            current = await stores[1].get("agent-cas")
            target = (
                AgentState.SUSPENDED
                if current.record.state is AgentState.READY
                else AgentState.READY
            )
            attempts = [
                s.write(
                    current.record.moved(target, reason=str(i), actor=str(i), at_ms=at),
                    current.revision,
                )
                for i, s in enumerate(stores)
            ]
            results = await asyncio.gather(*attempts, return_exceptions=True)
            landed = [i for i, r in enumerate(results) if not isinstance(r, BaseException)]
            assert len(landed) == 1, results
            assert all(isinstance(r, Aborted) for r in results if isinstance(r, BaseException))
            wins[landed[0]] += 1
        final = await stores[0].get("agent-cas")
        assert final.record.seq == stored.record.seq + 50
        history = await stores[0].history("agent-cas")
        assert [h.record.seq for h in history][-50:] == list(range(2, 52))
    finally:
        for nc in connections:
            await nc.close()


async def test_kill_9_loses_nothing(services, open_client, examples, nats_client) -> None:
    # No policy service runs: terminating waits for it, as after a crash mid-termination.
    env = {**FAST, "SYMBI_LIFECYCLE__POLICY_TIMEOUT_S": "0.5", "SYMBI_LIFECYCLE__MAX_RESTARTS": "0"}
    first = await start_lifecycle(services, "a", env)
    client = open_client(first)
    source = examples[1].read_text()
    failed = await client.create(source, agent_id="agent-k9-failed")
    assert failed.state == STATE.AGENT_STATE_FAILED  # fail closed: no policy service
    stuck = await client.call("Terminate", lifecycle_pb2.TransitionRequest(id=failed.id))
    assert stuck.state == STATE.AGENT_STATE_TERMINATING
    before = {}
    for agent_id in ("agent-k9-failed",):
        before[agent_id] = (
            await client.get(agent_id),
            await client.call("GetHistory", lifecycle_pb2.GetHistoryRequest(id=agent_id)),
        )
    first.kill()  # SIGKILL

    # A new process, without policy enforcement this time, finishes the termination.
    second = await start_lifecycle(services, "b", {**NO_POLICY, **FAST})
    client2 = open_client(second)
    agent, history = before["agent-k9-failed"]
    again = await client2.get(agent.id)
    assert again.revision >= agent.revision
    await wait_state(client2, agent.id, "TERMINATED")
    history2 = await client2.call("GetHistory", lifecycle_pb2.GetHistoryRequest(id=agent.id))
    assert list(history2.transitions)[: len(history.transitions)] == list(history.transitions)
    assert [STATE.Name(t.to_state) for t in history2.transitions][-1] == "AGENT_STATE_TERMINATED"
    # Every transition became exactly one event on the stream (none lost, none twice).
    js = nats_client.jetstream()
    sub = await js.pull_subscribe(f"symbi.agent.transition.{agent.id}", durable=None)
    messages = []
    while True:
        try:
            messages.extend(await sub.fetch(100, timeout=1))
        except (TimeoutError, nats.errors.TimeoutError):
            break
    ids = [m.headers.get("Nats-Msg-Id") for m in messages if m.headers]
    assert len(ids) == len(set(ids)) == len(history2.transitions)


async def test_kill_9_while_creating(services, open_client, examples) -> None:
    """Kill -9 in the middle of a stream of creates: every acknowledged agent survives, in a
    state it reached, and every half-done one is finished by the next process."""
    process = await start_lifecycle(services, "a", {**NO_POLICY, **FAST})
    client = open_client(process)
    source = examples[2].read_text()
    count = 30
    acknowledged: dict[str, int] = {}

    async def create_many() -> None:
        for i in range(count * 10):
            agent = await client.create(source, agent_id=f"agent-burst-{i:04d}")
            acknowledged[agent.id] = agent.revision

    creating = asyncio.create_task(create_many())
    await eventually(lambda: len(acknowledged) >= count, timeout=60, interval=0.005)
    process.kill()
    with pytest.raises(SymbiError):
        await creating
    second = open_client(await start_lifecycle(services, "b", {**NO_POLICY, **FAST}))
    for agent_id, revision in acknowledged.items():
        agent = await second.get(agent_id)
        assert agent.state == STATE.AGENT_STATE_READY
        assert agent.revision == revision
    listing = await second.call(
        "ListAgents", lifecycle_pb2.ListAgentsRequest(page={"page_size": 1000})
    )
    half_done = [a for a in listing.agents if a.id not in acknowledged]
    for agent in half_done:  # created but not acknowledged: the reconciler finishes it
        await wait_state(second, agent.id, "READY")
