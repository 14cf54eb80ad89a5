"""The service's pure edges: the trust rule, converters, the policy mapping, housekeeping.

Fakes stand in for the bus and the policy client here; the integration tests
(test_service_*.py) run the same paths against the real processes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import pytest

from symbi.context.v1 import context_pb2 as pb
from symbi_common.errors import InvalidArgument, PermissionDenied, Unavailable
from symbi_common.policy_client import PolicyDecision, PolicyQuestion
from symbi_context import convert
from symbi_context.api import PLATFORM_OWNER, ContextApi, IngestLimits
from symbi_context.audit import AuditEventSink, Caller
from symbi_context.housekeeping import Job, run_periodically
from symbi_context.memory import MemoryKind
from symbi_context.options import HybridWeights
from symbi_context.policy_gate import PolicyServicePort, question_for
from symbi_context.ports import AccessLevel, AccessRequest


class RecordingAudit(AuditEventSink):
    def __init__(self) -> None:
        self.events: list[tuple[str, Mapping[str, Any], str]] = []

    async def record(
        self, event_type: str, details: Mapping[str, Any], *, agent_id: str = ""
    ) -> None:
        self.events.append((event_type, dict(details), agent_id))


def api_with(audit: AuditEventSink) -> ContextApi:
    none = cast(Any, None)
    return ContextApi(
        none,
        none,
        none,
        none,
        audit,
        ingest_limits=IngestLimits(1024, 10),
        default_weights=HybridWeights(),
    )


GRPC = Caller("grpc")
NODE = Caller("bus", "node-1", "node", check_writes=True)
AGENT = Caller("bus", "agent-self00000001", "agent", check_writes=True)


async def test_trust_rule() -> None:
    audit = RecordingAudit()
    api = api_with(audit)
    assert await api.agent_for(GRPC, "agent-x") == "agent-x"
    assert await api.agent_for(NODE, "agent-x") == "agent-x"
    assert await api.agent_for(AGENT, "") == AGENT.principal
    assert await api.agent_for(AGENT, AGENT.principal) == AGENT.principal
    assert await api.agent_for(GRPC, "", owner_default=PLATFORM_OWNER) == PLATFORM_OWNER
    assert audit.events == []

    with pytest.raises(PermissionDenied, match="acts as itself"):
        await api.agent_for(AGENT, "agent-other0000001")
    ((event_type, details, agent_id),) = audit.events
    assert event_type == "context.request_refused"
    assert details["claimed_agent_id"] == "agent-other0000001"
    assert agent_id == AGENT.principal

    with pytest.raises(InvalidArgument, match="agent_id is required"):
        await api.agent_for(NODE, "")
    with pytest.raises(InvalidArgument, match="letters, digits"):
        await api.agent_for(GRPC, "agent x")
    with pytest.raises(PermissionDenied, match="platform"):
        await api.agent_for(NODE, PLATFORM_OWNER)
    with pytest.raises(PermissionDenied, match="role 'issuer'"):
        await api.agent_for(Caller("bus", "node-1-issuer", "issuer"), "agent-x")


def test_new_memory_defaults_and_metadata() -> None:
    item = pb.MemoryItem(content="c", tags=["t"])
    item.metadata.update({"source": "chat", "turn": 3})
    mem = convert.new_memory(item)
    assert mem.kind is MemoryKind.LONG_TERM
    assert mem.importance is None
    assert dict(mem.metadata) == {"source": "chat", "turn": "3.0"}

    shared = convert.new_memory(pb.MemoryItem(content="c", access=pb.ACCESS_LEVEL_RESTRICTED))
    assert shared.kind is MemoryKind.SHARED
    assert shared.access_level is AccessLevel.RESTRICTED

    short = convert.new_memory(pb.MemoryItem(content="c", type=pb.MEMORY_TYPE_SHORT_TERM), 30)
    assert short.ttl_s == 30
    explicit = pb.MemoryItem(content="c", importance=0.0)
    assert convert.new_memory(explicit).importance == 0.0
    with pytest.raises(InvalidArgument, match="memory type 9"):
        convert.new_memory(pb.MemoryItem(content="c", type=cast(Any, 9)))


def test_filters_and_formats() -> None:
    assert convert.filter_from_json("  ") is None
    flt = convert.filter_from_json(json.dumps({"must": [{"key": "tags", "any": ["a", "b"]}]}))
    assert flt is not None
    assert not flt.is_empty()
    for bad in ("{", "[]", json.dumps({"must": [{"key": "x"}]}), "x" * 20_000):
        with pytest.raises(InvalidArgument) as info:
            convert.filter_from_json(bad)
        assert info.value.reason == "MALFORMED_FILTER"
    assert convert.document_format("text/markdown; charset=utf-8").value == "markdown"
    with pytest.raises(InvalidArgument, match="not supported"):
        convert.document_format("application/pdf")


def test_query_vector() -> None:
    assert convert.query_vector([]) is None
    vec = convert.query_vector([3.0, 4.0])
    assert vec is not None
    assert np.allclose(vec, [0.6, 0.8])
    for bad in ([0.0, 0.0], [float("nan"), 1.0]):
        with pytest.raises(InvalidArgument):
            convert.query_vector(bad)


class FakePolicyClient:
    def __init__(self, decisions: Sequence[PolicyDecision]) -> None:
        self.decisions = list(decisions)
        self.asked: list[PolicyQuestion] = []

    async def evaluate(self, question: PolicyQuestion) -> PolicyDecision:
        self.asked.append(question)
        return self.decisions[0]

    async def evaluate_batch(self, questions: Sequence[PolicyQuestion]) -> list[PolicyDecision]:
        self.asked.extend(questions)
        return self.decisions[: len(questions)]


def test_question_mapping() -> None:
    memory_read = question_for(
        AccessRequest("agent-b", "read_context", "agent-a", AccessLevel.PUBLIC, "shared", ("x",))
    )
    assert (memory_read.principal.type, memory_read.principal.id) == ("Agent", "agent-b")
    assert (memory_read.resource.type, memory_read.resource.id) == ("Agent", "agent-a")
    assert memory_read.context == {
        "memory_type": "shared",
        "access_level": "public",
        "target": "memory",
        "tags": ["x"],
    }
    doc_read = question_for(
        AccessRequest("agent-b", "read_context", "agent-a", AccessLevel.SECRET, "knowledge")
    )
    assert (doc_read.resource.type, doc_read.resource.id) == ("Dataset", "knowledge/agent-a")
    assert doc_read.context["target"] == "knowledge"


async def test_fail_closed() -> None:
    closed = PolicyDecision.closed("no responders")
    read = AccessRequest("agent-b", "read_context", "agent-a", AccessLevel.PUBLIC, "shared")
    share = AccessRequest("agent-a", "share_context", "agent-a", AccessLevel.PUBLIC, "shared")
    port = PolicyServicePort(cast(Any, FakePolicyClient([closed, closed])))
    (decision,) = await port.decide([read])
    assert not decision.allowed
    assert "unavailable" in decision.reason
    with pytest.raises(Unavailable):
        await port.decide([share])
    with pytest.raises(Unavailable):
        await port.authorize_writes("agent-a", ["long_term"])

    deny = PolicyDecision("deny", ("no policy permits",))
    allow = PolicyDecision("allow")
    client = FakePolicyClient([allow, deny])
    port = PolicyServicePort(cast(Any, client))
    with pytest.raises(PermissionDenied, match="may not write short_term"):
        await port.authorize_writes("agent-a", ["long_term", "short_term", "long_term"])
    assert [q.context["memory_type"] for q in client.asked] == ["long_term", "short_term"]
    assert all(q.action == "write_context" for q in client.asked)


async def test_housekeeping_counts_failures_and_recovers() -> None:
    health: list[bool] = []
    outcomes: list[BaseException | int] = [Unavailable("down"), 3, RuntimeError("bug"), 0]
    done = asyncio.Event()

    async def run() -> int:
        outcome = outcomes.pop(0)
        if not outcomes:
            done.set()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def set_health(ok: bool) -> None:
        health.append(ok)

    task = asyncio.create_task(run_periodically(Job("t", 0.001, run), set_health))
    await asyncio.wait_for(done.wait(), timeout=5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert health == [False, True]


async def test_housekeeping_gives_up_after_consecutive_failures() -> None:
    async def run() -> int:
        raise RuntimeError("broken store")

    async def set_health(ok: bool) -> None:
        return None

    with pytest.raises(RuntimeError, match="broken store"):
        await asyncio.wait_for(
            run_periodically(Job("t", 0.001, run, max_consecutive_failures=3), set_health), 5
        )
