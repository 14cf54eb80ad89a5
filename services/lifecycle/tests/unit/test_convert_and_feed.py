"""Converters to protobuf, task statuses into domain events, and the fetch-queue repair."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from symbi.bus.v1 import events_pb2
from symbi.common.v1 import common_pb2
from symbi.lifecycle.v1 import lifecycle_pb2
from symbi_common.errors import InvalidArgument
from symbi_lifecycle.convert import agent_to_proto, source_of, state_from_proto, state_to_proto
from symbi_lifecycle.record import AgentRecord, StoredAgent, TransitionInfo
from symbi_lifecycle.states import AgentState
from symbi_lifecycle.status_feed import _settle_pending, task_event
from symbi_lifecycle.task_status import TaskPhase


def test_states_round_trip() -> None:
    for state in AgentState:
        assert state_from_proto(state_to_proto(state)) is state
    assert state_to_proto(None) == lifecycle_pb2.AGENT_STATE_UNSPECIFIED
    assert state_from_proto(0) is None
    with pytest.raises(InvalidArgument):
        state_from_proto(99)


def test_agent_to_proto() -> None:
    record = AgentRecord(
        id="agent-1",
        name="w",
        state=AgentState.RUNNING,
        reason="r",
        owner="o",
        capabilities=("a",),
        tier="gvisor",
        memory_mb=256,
        cpu_millicores=500,
        timeout_ms=1500,
        policy_ids=("p",),
        created_at_ms=1,
        updated_at_ms=2,
        last=TransitionInfo(AgentState.READY, AgentState.RUNNING, "r", "x", 2, 4, "t"),
        task_id="t",
    )
    agent = agent_to_proto(StoredAgent(record, 9), source="src", definition_json="{}")
    assert agent.state == lifecycle_pb2.AGENT_STATE_RUNNING
    assert agent.tier == common_pb2.SANDBOX_TIER_GVISOR
    assert agent.limits.execution_timeout.seconds == 1
    assert agent.limits.execution_timeout.nanos == 500_000_000
    assert (agent.revision, agent.task_id, agent.source) == (9, "t", "src")
    assert source_of('{"source": "agent a {}"}') == "agent a {}"
    assert source_of("not json") == ""


def test_task_event() -> None:
    status = events_pb2.TaskStatus(
        task_id="t", agent_id="agent-1", state=events_pb2.TaskStatus.STATE_OOM_KILLED, exit_code=137
    )
    event = task_event(status, stream_seq=42, sender="node-a")
    assert (event.phase, event.stream_seq, event.exit_code) == (TaskPhase.OOM_KILLED, 42, 137)
    with pytest.raises(InvalidArgument):
        task_event(events_pb2.TaskStatus(task_id="t", agent_id="a"), stream_seq=1, sender="n")
    with pytest.raises(InvalidArgument):
        task_event(
            events_pb2.TaskStatus(state=events_pb2.TaskStatus.STATE_STARTED),
            stream_seq=1,
            sender="n",
        )


async def test_settle_pending_marks_taken_messages_done() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(3):
        queue.put_nowait(i)
    queue.get_nowait()  # taken without task_done(), as nats-py's fetch does
    queue.get_nowait()
    _settle_pending(SimpleNamespace(_sub=SimpleNamespace(_pending_queue=queue)))
    queue.get_nowait()
    queue.task_done()
    await asyncio.wait_for(queue.join(), 1)  # a drain would no longer wait for ever
    _settle_pending(object())  # anything else is left alone
