"""In-memory ports for the lifecycle's unit tests (the real ones: tests/integration)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from symbi_common.errors import Aborted, AlreadyExists, NotFound, SymbiError
from symbi_common.policy_client import PolicyDecision
from symbi_lifecycle.lifecycle import AgentLifecycle, LifecycleConfig
from symbi_lifecycle.record import AgentRecord, StoredAgent, decode_record, encode_record


class MemoryStore:
    """An AgentStore with the KV bucket's compare-and-set semantics (one revision counter)."""

    def __init__(self) -> None:
        self.revision = 0
        self.records: dict[str, list[tuple[bytes, int]]] = {}
        self.definitions: dict[str, str] = {}
        self.fingerprints: dict[str, str] = {}
        self.writes = 0

    def _next(self) -> int:
        self.revision += 1
        return self.revision

    async def create(
        self, record: AgentRecord, definition_json: str, fingerprint: str
    ) -> tuple[StoredAgent, bool]:
        if record.id in self.records:
            if self.fingerprints.get(record.id) == fingerprint:
                return await self.get(record.id), False
            raise AlreadyExists(f"agent {record.id} already exists")
        self.definitions[record.id] = definition_json
        self.fingerprints[record.id] = fingerprint
        record = replace(record, definition_revision=self._next())
        revision = self._next()
        self.records[record.id] = [(encode_record(record), revision)]
        return StoredAgent(record, revision), True

    async def get(self, agent_id: str) -> StoredAgent:
        if agent_id not in self.records:
            raise NotFound(f"no agent {agent_id}")
        value, revision = self.records[agent_id][-1]
        return StoredAgent(decode_record(value), revision)

    async def write(self, record: AgentRecord, expected_revision: int) -> StoredAgent:
        current = self.records[record.id][-1][1]
        if current != expected_revision:
            raise Aborted(f"agent {record.id} is at {current}, not {expected_revision}")
        revision = self._next()
        self.records[record.id].append((encode_record(record), revision))
        del self.records[record.id][:-64]
        self.writes += 1
        return StoredAgent(record, revision)

    async def definition(self, agent_id: str) -> str:
        if agent_id not in self.definitions:
            raise NotFound(f"no definition for {agent_id}")
        return self.definitions[agent_id]

    async def history(self, agent_id: str) -> list[StoredAgent]:
        if agent_id not in self.records:
            raise NotFound(f"no agent {agent_id}")
        return [StoredAgent(decode_record(v), r) for v, r in self.records[agent_id]]


@dataclass
class ScriptedGate:
    """A PolicyGate whose answers the test sets; it records what it was asked to do."""

    create: PolicyDecision = field(default_factory=lambda: PolicyDecision("allow"))
    modify: PolicyDecision = field(default_factory=lambda: PolicyDecision("allow"))
    error: SymbiError | None = None  # raised by every store call while set
    registered: set[str] = field(default_factory=set)
    installed: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def _maybe_fail(self, what: str) -> None:
        self.calls.append(what)
        if self.error is not None:
            raise self.error

    async def register(self, record: AgentRecord) -> None:
        self._maybe_fail("register")
        self.registered.add(record.id)

    async def allow_create(self, record: AgentRecord) -> PolicyDecision:
        self.calls.append("allow_create")
        return self.create

    async def allow_modify(self, record: AgentRecord, reason: str) -> PolicyDecision:
        self.calls.append("allow_modify")
        return self.modify

    async def install(self, record: AgentRecord, cedar: str) -> None:
        self._maybe_fail("install")
        self.installed[record.id] = cedar

    async def unregister(self, record: AgentRecord) -> None:
        self._maybe_fail("unregister")
        self.registered.discard(record.id)
        self.installed.pop(record.id, None)


class RecordingSink:
    def __init__(self) -> None:
        self.transitions: list[StoredAgent] = []

    async def transitioned(self, stored: StoredAgent) -> None:
        self.transitions.append(stored)

    def path(self, agent_id: str) -> list[str]:
        return [s.record.state.value for s in self.transitions if s.record.id == agent_id]


class RecordingTasks:
    """A TaskCanceller that records what it was asked (and can fail)."""

    def __init__(self) -> None:
        self.cancelled: list[tuple[str, str]] = []
        self.error: SymbiError | None = None

    async def cancel(self, task_id: str, reason: str) -> None:
        if self.error is not None:
            raise self.error
        self.cancelled.append((task_id, reason))


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def gate() -> ScriptedGate:
    return ScriptedGate()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tasks() -> RecordingTasks:
    return RecordingTasks()


@pytest.fixture
def lifecycle(
    store: MemoryStore, gate: ScriptedGate, sink: RecordingSink, clock: Clock, tasks: RecordingTasks
) -> AgentLifecycle:
    return AgentLifecycle(
        store,
        gate,
        sink,
        actor="svc-lifecycle-test",
        config=LifecycleConfig(max_restarts=2, restart_backoff_s=1.0, stale_after_s=10.0),
        clock=clock,
        tasks=tasks,
    )
