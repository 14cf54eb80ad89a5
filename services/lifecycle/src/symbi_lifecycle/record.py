"""The agent record: what the KV bucket holds per agent (its state, not its definition).

One record per agent under the agent id; every write replaces it with compare-and-set on
the KV revision. A transition write carries the transition in ``last`` (so the bucket's
per-key history *is* the transition history); an update write (``write_kind="update"``)
changes bookkeeping only (the task an agent runs, the task-status watermark).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, replace
from typing import Any, Literal

from symbi_common.errors import InvalidArgument
from symbi_lifecycle.states import AgentState

__all__ = [
    "AGENT_ID_RE",
    "AgentRecord",
    "StoredAgent",
    "TransitionInfo",
    "decode_record",
    "encode_record",
    "new_agent_id",
    "validate_agent_id",
]

#: Contract C2: a valid principal id, ``agent-<slug>``, at most 64 characters.
AGENT_ID_RE = re.compile(r"^agent-[A-Za-z0-9_-]{1,58}$")
RECORD_FORMAT = 1

WriteKind = Literal["transition", "update"]


def new_agent_id() -> str:
    return f"agent-{uuid.uuid4().hex[:16]}"


def validate_agent_id(agent_id: str) -> str:
    if not AGENT_ID_RE.match(agent_id):
        raise InvalidArgument(
            f"agent id {agent_id!r} is not valid: it must be 'agent-' followed by 1-58 letters, "
            "digits, '-' or '_' (it is the agent's principal id on the bus)",
            reason="BAD_AGENT_ID",
            details={"field": "agent_id"},
        )
    return agent_id


@dataclass(frozen=True, slots=True)
class TransitionInfo:
    """One move of the state machine. ``from_state`` is None for the creation."""

    from_state: AgentState | None
    to_state: AgentState
    reason: str
    actor: str
    at_ms: int
    seq: int
    task_id: str = ""


@dataclass(frozen=True, slots=True)
class AgentRecord:
    id: str
    name: str
    state: AgentState
    reason: str
    owner: str
    capabilities: tuple[str, ...]
    tier: str  # docker | gvisor
    memory_mb: int
    cpu_millicores: int
    timeout_ms: int
    policy_ids: tuple[str, ...]
    created_at_ms: int
    updated_at_ms: int
    last: TransitionInfo
    restarts: int = 0
    max_restarts: int = 0
    #: FAILED and recoverable: when the next Failed → Initializing is due (0: never).
    restart_at_ms: int = 0
    task_id: str = ""
    dispatch_id: str = ""
    #: Stream sequence of the newest task status applied (older ones are stale).
    status_seq: int = 0
    scheduled: bool = False
    source_format: str = "dsl"
    source_file: str = ""
    version: str = ""
    description: str = ""
    definition_revision: int = 0
    write_kind: WriteKind = "transition"

    @property
    def seq(self) -> int:
        return self.last.seq

    def moved(
        self,
        target: AgentState,
        *,
        reason: str,
        actor: str,
        at_ms: int,
        **changes: Any,
    ) -> AgentRecord:
        """This record after a transition to ``target`` (the caller checked it is allowed)."""
        last = TransitionInfo(
            self.state,
            target,
            reason,
            actor,
            at_ms,
            self.last.seq + 1,
            changes.get("task_id", self.task_id),
        )
        return replace(
            self,
            state=target,
            reason=reason,
            updated_at_ms=at_ms,
            last=last,
            write_kind="transition",
            **changes,
        )

    def updated(self, at_ms: int, **changes: Any) -> AgentRecord:
        """This record with bookkeeping changes and no transition."""
        return replace(self, updated_at_ms=at_ms, write_kind="update", **changes)


@dataclass(frozen=True, slots=True)
class StoredAgent:
    """A record as read from (or written to) the store, with its KV revision."""

    record: AgentRecord
    revision: int


def encode_record(record: AgentRecord) -> bytes:
    last = record.last
    data: dict[str, Any] = {
        "v": RECORD_FORMAT,
        "id": record.id,
        "name": record.name,
        "state": record.state.value,
        "reason": record.reason,
        "owner": record.owner,
        "caps": list(record.capabilities),
        "tier": record.tier,
        "mem": record.memory_mb,
        "cpu": record.cpu_millicores,
        "timeout": record.timeout_ms,
        "policies": list(record.policy_ids),
        "created": record.created_at_ms,
        "updated": record.updated_at_ms,
        "last": [
            last.from_state.value if last.from_state else "",
            last.to_state.value,
            last.reason,
            last.actor,
            last.at_ms,
            last.seq,
            last.task_id,
        ],
        "restarts": record.restarts,
        "max_restarts": record.max_restarts,
        "restart_at": record.restart_at_ms,
        "task": record.task_id,
        "dispatch": record.dispatch_id,
        "status_seq": record.status_seq,
        "scheduled": record.scheduled,
        "format": record.source_format,
        "file": record.source_file,
        "version": record.version,
        "description": record.description,
        "def_rev": record.definition_revision,
        "kind": record.write_kind,
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def decode_record(value: bytes) -> AgentRecord:
    """A record from its stored bytes; InvalidArgument when it is not one."""
    try:
        data = json.loads(value)
        if data.get("v") != RECORD_FORMAT:
            raise ValueError(f"unknown record format {data.get('v')!r}")
        f, t, reason, actor, at_ms, seq, task = data["last"]
        return AgentRecord(
            id=data["id"],
            name=data["name"],
            state=AgentState(data["state"]),
            reason=data["reason"],
            owner=data["owner"],
            capabilities=tuple(data["caps"]),
            tier=data["tier"],
            memory_mb=data["mem"],
            cpu_millicores=data["cpu"],
            timeout_ms=data["timeout"],
            policy_ids=tuple(data["policies"]),
            created_at_ms=data["created"],
            updated_at_ms=data["updated"],
            last=TransitionInfo(
                AgentState(f) if f else None, AgentState(t), reason, actor, at_ms, seq, task
            ),
            restarts=data["restarts"],
            max_restarts=data["max_restarts"],
            restart_at_ms=data["restart_at"],
            task_id=data["task"],
            dispatch_id=data["dispatch"],
            status_seq=data["status_seq"],
            scheduled=data["scheduled"],
            source_format=data["format"],
            source_file=data["file"],
            version=data["version"],
            description=data["description"],
            definition_revision=data["def_rev"],
            write_kind=data["kind"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"stored agent record is malformed: {exc}", reason="BAD_RECORD"
        ) from None
