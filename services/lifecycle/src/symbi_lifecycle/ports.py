"""What the lifecycle domain needs from outside, as protocols.

The service wires them to JetStream KV (``kv_store``), the policy service over the bus
(``policy_gate``), the bus's event and audit streams (``events``) and the scheduler's bus
API (``events.SchedulerTasks``); unit tests use in-memory versions.
"""

from __future__ import annotations

from typing import Protocol

from symbi_common.policy_client import PolicyDecision
from symbi_lifecycle.record import AgentRecord, StoredAgent

__all__ = ["AgentStore", "PolicyGate", "TaskCanceller", "TransitionSink"]


class AgentStore(Protocol):
    """Agent records with compare-and-set on their revision, and their definitions."""

    async def create(
        self, record: AgentRecord, definition_json: str, fingerprint: str
    ) -> tuple[StoredAgent, bool]:
        """Store a new agent and its definition; True when this call created it.

        ``fingerprint`` identifies the request: a retry of the same request completes a
        create that stopped half way, or (False) returns the agent it created. AlreadyExists
        when another agent has the id; Aborted when another request is creating it now."""
        ...

    async def get(self, agent_id: str) -> StoredAgent:
        """The current record (NotFound when there is none)."""
        ...

    async def write(self, record: AgentRecord, expected_revision: int) -> StoredAgent:
        """Replace the record if it is still at ``expected_revision``; else Aborted."""
        ...

    async def definition(self, agent_id: str) -> str:
        """The stored AgentDefinition JSON (NotFound when there is none)."""
        ...

    async def history(self, agent_id: str) -> list[StoredAgent]:
        """Every kept revision of the record, oldest first (NotFound when there is none)."""
        ...


class PolicyGate(Protocol):
    """The policy service, as the lifecycle needs it (contract C2).

    Methods raise a retryable SymbiError (Unavailable, DeadlineExceeded) when the policy
    service cannot be reached; decisions themselves fail closed.
    """

    async def register(self, record: AgentRecord) -> None:
        """Put the Agent entity (capabilities, sandbox_tier, owner) in the policy store."""
        ...

    async def allow_create(self, record: AgentRecord) -> PolicyDecision: ...

    async def allow_modify(self, record: AgentRecord, reason: str) -> PolicyDecision: ...

    async def install(self, record: AgentRecord, cedar: str) -> None:
        """Store the agent's compiled Cedar as policy ``agents/<agent id>``."""
        ...

    async def unregister(self, record: AgentRecord) -> None:
        """Delete the agent's policy document and entity (absent ones are fine)."""
        ...


class TransitionSink(Protocol):
    """Told of every transition once it is stored (events and audit)."""

    async def transitioned(self, stored: StoredAgent) -> None: ...


class TaskCanceller(Protocol):
    """Stops an agent's task when the agent is suspended or terminated (best effort: the
    task's STOPPED status follows on the status stream)."""

    async def cancel(self, task_id: str, reason: str) -> None: ...
