"""The task model: what was asked (``TaskSpec``) and where it stands (``TaskRecord``).

A ``TaskRecord`` is the unit of the scheduler's journal: every change of a task is written as
the task's whole new record, so the latest record of each task is enough to rebuild the
scheduler after a restart (see ``ports.TaskJournal``).

States::

    QUEUED ──place──▶ DISPATCHED ──ack──▶ RUNNING ──result──▶ COMPLETED / FAILED
      ▲  ▲              │ no ack (retry)     │ preempted
      │  └──────────────┘                    ▼
      └──────── stop confirmed ◀──────── STOPPING
    any non-terminal ──cancel──▶ CANCELLED;  node lost ──▶ QUEUED (or FAILED after too many)
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from symbi_common.errors import InvalidArgument

from .priority import Priority, SandboxTier
from .resources import ResourceRequest

__all__ = [
    "StartReport",
    "TaskOutcome",
    "TaskRecord",
    "TaskResult",
    "TaskSpec",
    "TaskState",
    "check_id",
    "freeze_labels",
]

# Ids end up as NATS subject tokens (`symbi.task.<node>`) and KV keys, so no dots,
# wildcards or whitespace.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,62}")
_LABEL_VALUE = re.compile(r"[A-Za-z0-9_.-]{0,63}")
_MAX_METADATA_ENTRIES = 32


def check_id(field_name: str, value: object) -> str:
    """``value`` if it is a valid task, agent or node id; InvalidArgument naming the rule if not."""
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        raise InvalidArgument(
            f"{field_name} {value!r} is not a valid id: 1-128 characters of letters, digits, "
            "'_' and '-', starting with a letter or digit",
            reason="INVALID_ID",
            details={"field": field_name},
        )
    return value


def freeze_labels(field_name: str, labels: Mapping[str, str]) -> Mapping[str, str]:
    """A read-only, validated copy of a label map (node labels or a node selector)."""
    for key, value in labels.items():
        if not isinstance(key, str) or _LABEL_KEY.fullmatch(key) is None:
            raise InvalidArgument(
                f"{field_name} key {key!r} is invalid: 1-63 characters of letters, digits, "
                "'_', '.', '/' and '-', starting with a letter or digit",
                reason="INVALID_LABEL",
                details={"field": field_name},
            )
        if not isinstance(value, str) or _LABEL_VALUE.fullmatch(value) is None:
            raise InvalidArgument(
                f"{field_name}[{key!r}] value {value!r} is invalid: up to 63 characters of "
                "letters, digits, '_', '.' and '-'",
                reason="INVALID_LABEL",
                details={"field": field_name},
            )
    return MappingProxyType(dict(sorted(labels.items())))


class TaskState(enum.Enum):
    """Where a task stands in the scheduler."""

    QUEUED = "queued"
    DISPATCHED = "dispatched"  # sent to a node, start not yet acknowledged
    RUNNING = "running"
    STOPPING = "stopping"  # preempted: the node was told to stop it; requeued once it has
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True once the task will never run again."""
        return self in _TERMINAL

    @property
    def on_node(self) -> bool:
        """True while the task is (or may be) on its ``node_id``."""
        return self in _ON_NODE


_TERMINAL = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED})
_ON_NODE = frozenset({TaskState.DISPATCHED, TaskState.RUNNING, TaskState.STOPPING})


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A request to run one agent task; validated on construction (InvalidArgument naming why).

    ``node_selector`` must match node labels exactly (every key present with that value).
    ``preemptible=False`` protects a running task from preemption. ``metadata`` (at most 32
    string entries, 4 KiB in total by default) and ``payload`` (opaque bytes, e.g. the
    sandbox's run spec: image, command, env, code; 256 KiB by default) are passed through to
    the sandbox unchanged and journaled with the task.
    """

    task_id: str
    agent_id: str
    resources: ResourceRequest
    priority: Priority = Priority.NORMAL
    tier: SandboxTier = SandboxTier.DOCKER
    node_selector: Mapping[str, str] = field(default_factory=dict)
    preemptible: bool = True
    metadata: Mapping[str, str] = field(default_factory=dict)
    payload: bytes = b""

    def __post_init__(self) -> None:
        check_id("task_id", self.task_id)
        check_id("agent_id", self.agent_id)
        if not isinstance(self.resources, ResourceRequest):
            raise InvalidArgument("resources must be a ResourceRequest", reason="INVALID_RESOURCE")
        object.__setattr__(self, "priority", Priority.parse(self.priority))
        object.__setattr__(self, "tier", SandboxTier.parse(self.tier))
        object.__setattr__(
            self, "node_selector", freeze_labels("node_selector", self.node_selector)
        )
        if len(self.metadata) > _MAX_METADATA_ENTRIES:
            raise InvalidArgument(
                f"metadata has {len(self.metadata)} entries; at most {_MAX_METADATA_ENTRIES} allowed",
                reason="METADATA_TOO_LARGE",
                details={"field": "metadata"},
            )
        for key, value in self.metadata.items():
            if not isinstance(key, str) or not isinstance(value, str) or not key:
                raise InvalidArgument(
                    "metadata keys and values must be strings (keys non-empty)",
                    reason="INVALID_METADATA",
                    details={"field": "metadata"},
                )
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        if not isinstance(self.payload, bytes):
            raise InvalidArgument("payload must be bytes", reason="INVALID_PAYLOAD")

    @property
    def metadata_bytes(self) -> int:
        """Encoded size of ``metadata`` (UTF-8 keys and values)."""
        return sum(len(k.encode()) + len(v.encode()) for k, v in self.metadata.items())


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One task's full scheduling state, as journaled.

    ``seq`` orders tasks submitted at the same instant; ``enqueued_at`` (wall-clock seconds,
    set once at submission and kept on every requeue) drives aging. ``attempt`` counts
    dispatches; ``dispatch_id`` (``<task_id>-<attempt>``) identifies one dispatch end to end
    and is the idempotency key for the bus and the sandbox; the node must not start it after
    ``not_after`` (wall clock). ``tried_nodes`` are the nodes that
    did not acknowledge a start, avoided by the next retry. ``preempts`` lists the tasks the
    node must stop before starting this one.
    """

    spec: TaskSpec
    state: TaskState
    seq: int
    enqueued_at: float
    updated_at: float
    attempt: int = 0
    node_id: str | None = None
    dispatch_id: str | None = None
    dispatched_at: float | None = None
    not_after: float | None = None
    started_at: float | None = None
    ack_failures: int = 0
    tried_nodes: tuple[str, ...] = ()
    node_losses: int = 0
    preemptions: int = 0
    last_preempted_at: float | None = None
    preempts: tuple[str, ...] = ()
    reason: str = ""
    exit_code: int | None = None

    @property
    def task_id(self) -> str:
        return self.spec.task_id

    @property
    def priority(self) -> Priority:
        return self.spec.priority

    def evolve(self, **changes: Any) -> TaskRecord:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


class TaskOutcome(enum.Enum):
    """How a run ended, as its node reports it."""

    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"  # stopped on request (preemption, cancellation) or by the node
    LOST = "lost"  # the node lost the run (e.g. restarted without it): it runs again elsewhere


@dataclass(frozen=True, slots=True)
class StartReport:
    """A node's acknowledgement that it started ``dispatch_id`` (its STARTED status)."""

    task_id: str
    dispatch_id: str
    node_id: str


@dataclass(frozen=True, slots=True)
class TaskResult:
    """A node's report that a run (one ``dispatch_id``) ended."""

    task_id: str
    dispatch_id: str
    node_id: str
    outcome: TaskOutcome
    reason: str = ""
    exit_code: int | None = None
