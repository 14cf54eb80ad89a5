"""The lifecycle service as a process: create from every example, read, list, watch, history."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from symbi.common.v1 import common_pb2
from symbi.lifecycle.v1 import lifecycle_pb2
from symbi_common.errors import FailedPrecondition, InvalidArgument, NotFound
from symbi_testing import eventually

from .conftest import FAST, NO_POLICY, start_lifecycle, wait_state

STATE = lifecycle_pb2.AgentState


def fmt_of(path: Path) -> str:
    return {".toml": "toml", ".yaml": "yaml"}.get(path.suffix, "dsl")


async def test_create_every_example_and_read_it_back(services, open_client, examples) -> None:
    process = await start_lifecycle(services, "a", NO_POLICY)
    client = open_client(process)
    created = {}
    for path in examples:
        text = path.read_text()
        agent = await client.create(text, kind=fmt_of(path), file_name=path.name, owner="ops")
        assert agent.state == STATE.AGENT_STATE_READY, (path.name, agent.reason)
        assert agent.id.startswith("agent-")
        created[agent.id] = (path, text)
    for agent_id, (path, text) in created.items():
        agent = await client.get(agent_id)
        assert agent.source == text
        assert agent.source_file == path.name
        assert agent.source_format == fmt_of(path)
        assert agent.owner == "ops"
        assert agent.tier in (common_pb2.SANDBOX_TIER_DOCKER, common_pb2.SANDBOX_TIER_GVISOR)
        assert agent.limits.memory_mb > 0
        assert agent.revision > 0
        full = await client.call(
            "GetAgent", lifecycle_pb2.GetAgentRequest(id=agent_id, include_definition=True)
        )
        definition = json.loads(full.definition_json)
        assert definition["id"] == agent_id
        assert definition["cedar"]["agent_id"] == agent_id
    listing = await client.call("ListAgents", lifecycle_pb2.ListAgentsRequest())
    assert listing.total == len(examples)
    assert sorted(a.id for a in listing.agents) == sorted(created)
    assert all(not a.source for a in listing.agents)


async def test_malformed_dsl_names_line_and_column(services, open_client) -> None:
    client = open_client(await start_lifecycle(services, "a", NO_POLICY))
    broken = 'agent a {\n    capabilities = ["x"]\n    policy p { permit: x }\n}\n'
    with pytest.raises(InvalidArgument) as caught:
        await client.create(broken, file_name="broken.symbi")
    error = caught.value
    assert "broken.symbi:3:16" in error.message
    assert error.details["line"] == "3"
    assert error.details["column"] == "16"
    diagnostics = json.loads(error.details["diagnostics"])
    assert diagnostics[0]["line"] == 3
    assert "Traceback" not in error.message
    bad_toml = '[agent]\nname = "x"\nsandbox = "firecracker"\n'
    with pytest.raises(InvalidArgument, match="firecracker"):
        await client.create(bad_toml, kind="toml", file_name="x.toml")
    with pytest.raises(InvalidArgument, match="definition is required"):
        await client.call("CreateAgent", lifecycle_pb2.CreateAgentRequest())
    listing = await client.call("ListAgents", lifecycle_pb2.ListAgentsRequest())
    assert listing.total == 0


async def test_requests_watch_and_history(services, open_client, examples) -> None:
    client = open_client(await start_lifecycle(services, "a", {**NO_POLICY, **FAST}))
    source = (examples[0]).read_text()
    agent = await client.create(source, file_name=examples[0].name, agent_id="agent-watched")
    seen: list[lifecycle_pb2.Transition] = []

    async def watch() -> None:
        stream = client.stub.WatchAgent(
            lifecycle_pb2.WatchAgentRequest(id=agent.id, include_current=True), timeout=30
        )
        async for transition in stream:
            seen.append(transition)

    everything: list[lifecycle_pb2.Transition] = []

    async def watch_all() -> None:
        stream = client.stub.WatchAgent(lifecycle_pb2.WatchAgentRequest(), timeout=30)
        async for transition in stream:
            everything.append(transition)

    watching = asyncio.create_task(watch())
    watching_all = asyncio.create_task(watch_all())
    await eventually(lambda: len(seen) == 1, timeout=10)  # the single watch is open
    probe = await client.create(source, agent_id="agent-probe")  # and so is the other one
    await eventually(lambda: any(t.agent_id == probe.id for t in everything), timeout=10)
    suspended = await client.call(
        "Suspend", lifecycle_pb2.TransitionRequest(id=agent.id, reason="maintenance")
    )
    assert suspended.state == STATE.AGENT_STATE_SUSPENDED
    with pytest.raises(FailedPrecondition, match="from SUSPENDED to SUSPENDED"):
        await client.call("Suspend", lifecycle_pb2.TransitionRequest(id=agent.id))
    resumed = await client.call("Resume", lifecycle_pb2.TransitionRequest(id=agent.id))
    assert resumed.state == STATE.AGENT_STATE_READY
    ended = await client.call("Terminate", lifecycle_pb2.TransitionRequest(id=agent.id))
    assert ended.state == STATE.AGENT_STATE_TERMINATED
    await asyncio.wait_for(watching, 15)  # the stream ends at TERMINATED
    other = await client.create(source, agent_id="agent-other")
    await eventually(lambda: any(t.agent_id == other.id for t in everything), timeout=10)
    watching_all.cancel()
    await asyncio.gather(watching_all, return_exceptions=True)
    mine = [STATE.Name(t.to_state) for t in everything if t.agent_id == agent.id]
    assert mine[-4:] == [
        "AGENT_STATE_SUSPENDED",
        "AGENT_STATE_READY",
        "AGENT_STATE_TERMINATING",
        "AGENT_STATE_TERMINATED",
    ]
    names = [STATE.Name(t.to_state) for t in seen]
    assert names == [
        "AGENT_STATE_READY",  # the current state first
        "AGENT_STATE_SUSPENDED",
        "AGENT_STATE_READY",
        "AGENT_STATE_TERMINATING",
        "AGENT_STATE_TERMINATED",
    ]
    history = await client.call("GetHistory", lifecycle_pb2.GetHistoryRequest(id=agent.id))
    steps = [(STATE.Name(t.from_state), STATE.Name(t.to_state)) for t in history.transitions]
    assert steps[0] == ("AGENT_STATE_UNSPECIFIED", "AGENT_STATE_CREATED")
    assert [s[1] for s in steps] == [
        "AGENT_STATE_CREATED",
        "AGENT_STATE_INITIALIZING",
        "AGENT_STATE_READY",
        "AGENT_STATE_SUSPENDED",
        "AGENT_STATE_READY",
        "AGENT_STATE_TERMINATING",
        "AGENT_STATE_TERMINATED",
    ]
    assert [t.seq for t in history.transitions] == list(range(1, 8))
    assert history.transitions[3].reason == "maintenance"
    assert history.transitions[3].actor.startswith("grpc:")
    assert not history.truncated
    with pytest.raises(NotFound):
        await client.get("agent-nobody")
    await wait_state(client, agent.id, "TERMINATED")
