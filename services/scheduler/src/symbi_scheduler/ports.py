"""The scheduler core's ports: everything outside the domain, as Protocols.

The service wires them to JetStream (journal, dispatch, lifecycle events), the policy
service, and a KV bucket (leader lease); unit tests use the in-memory ones in ``memory``.
Every call the core makes through a port runs under ``SchedulerOptions.port_timeout_s``.

Contracts the adapters and the nodes must keep (see docs/adr/0052):

- ``TaskJournal.put/remove`` are compare-and-set on the journal position: a write made
  against a stale position fails with ``Aborted`` (on JetStream: ``Nats-Expected-Last-Sequence``).
  That is what fences a deposed leader: its next write fails, it stops.
- ``TaskDispatcher.dispatch`` is idempotent per ``DispatchOrder.dispatch_id`` (publish with
  ``Nats-Msg-Id`` = dispatch id; the sandbox starts a dispatch id at most once), a node never
  starts an order after ``not_after``, and it stops every task in ``preempts`` before starting
  the order (reporting their results first, on the same ordered subject as the start ack).
- ``TaskDispatcher.stop`` is idempotent; stopping an unknown task is a no-op on the node.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .priority import Priority, SandboxTier
from .resources import ResourceRequest
from .task import TaskRecord

__all__ = [
    "AgentTransition",
    "AllocationDecision",
    "AllocationPolicy",
    "AllocationRequest",
    "Clock",
    "DispatchOrder",
    "JournalSnapshot",
    "LeaseRecord",
    "LeaseStore",
    "LifecycleNotifier",
    "StopOrder",
    "TaskDispatcher",
    "TaskJournal",
    "TaskListener",
    "TransitionKind",
]


@runtime_checkable
class Clock(Protocol):
    """Time. ``now`` is wall-clock seconds (persisted: submission, start, preemption times);
    ``monotonic`` never goes back (timers: heartbeats, acknowledgements, the lease)."""

    def now(self) -> float: ...

    def monotonic(self) -> float: ...


# ---------------------------------------------------------------- journal
@dataclass(frozen=True, slots=True)
class JournalSnapshot:
    """The latest record of every task still in the journal, and the journal's position."""

    records: Sequence[TaskRecord]
    position: int


class TaskJournal(Protocol):
    """Durable store of task records, one latest record per task (JetStream later: a stream
    with one subject per task and ``max_msgs_per_subject=1``)."""

    async def load(self) -> JournalSnapshot:
        """Everything needed to rebuild the scheduler."""
        ...

    async def put(self, record: TaskRecord, *, expected_position: int) -> int:
        """Make ``record`` its task's latest; the new position. ``Aborted`` if the journal
        is not at ``expected_position`` (someone else wrote)."""
        ...

    async def remove(self, task_id: str, *, expected_position: int) -> int:
        """Drop a finished task; the new position. ``Aborted`` as for ``put``."""
        ...


# ---------------------------------------------------------------- dispatch
@dataclass(frozen=True, slots=True)
class DispatchOrder:
    """Start a task on a node (published to ``symbi.task.<node_id>``)."""

    dispatch_id: str
    task_id: str
    agent_id: str
    node_id: str
    attempt: int
    priority: Priority
    tier: SandboxTier
    resources: ResourceRequest
    not_after: float  # wall clock: the node must refuse to start the order after this
    preempts: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class StopOrder:
    """Stop a task on a node (preemption, cancellation, or a run that should not exist).

    ``dispatch_id`` names the run to stop; None means any run of ``task_id`` on that node
    (used for runs the node reports that the scheduler never assigned to it)."""

    node_id: str
    task_id: str
    dispatch_id: str | None
    reason: str


class TaskDispatcher(Protocol):
    """Sends orders to worker nodes."""

    async def dispatch(self, order: DispatchOrder) -> None: ...

    async def stop(self, order: StopOrder) -> None: ...


# ---------------------------------------------------------------- policy
@dataclass(frozen=True, slots=True)
class AllocationRequest:
    """The ``allocate`` question: may this agent's task take these resources on this node?"""

    agent_id: str
    task_id: str
    node_id: str
    priority: Priority
    tier: SandboxTier
    resources: ResourceRequest
    node_tiers: frozenset[SandboxTier]
    node_labels: Mapping[str, str]
    preempts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AllocationDecision:
    """The policy's answer; ``reason`` says why when not allowed."""

    allowed: bool
    reason: str = ""


class AllocationPolicy(Protocol):
    """The policy service's ``allocate`` action. Raising ``Unavailable`` or
    ``DeadlineExceeded`` means "no answer": the task stays queued."""

    async def allocate(self, request: AllocationRequest) -> AllocationDecision: ...


# ---------------------------------------------------------------- lifecycle
class TransitionKind(enum.Enum):
    """Agent state changes the scheduler causes."""

    RUNNING = "running"  # its node acknowledged the start
    SUSPENDED = "suspended"  # preempted; requeued
    REQUEUED = "requeued"  # its run was lost (node unreachable, or the node lost it); requeued
    CANCELLED = "cancelled"  # cancelled through the API
    FAILED = "failed"  # the scheduler gave up (policy, retries, infeasible, node losses)


@dataclass(frozen=True, slots=True)
class AgentTransition:
    agent_id: str
    task_id: str
    kind: TransitionKind
    at: float
    node_id: str | None = None
    reason: str = ""
    dispatch_id: str | None = None
    attempt: int = 0


class LifecycleNotifier(Protocol):
    """Tells the lifecycle service about state changes the scheduler caused."""

    async def notify(self, transition: AgentTransition) -> None: ...


#: Called synchronously with every new task record (WatchQueue fans these out). It must not
#: block: hand the record to a bounded queue and return.
TaskListener = Callable[[TaskRecord], None]


# ---------------------------------------------------------------- leader lease
@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """A key's value and revision."""

    value: bytes
    revision: int


class LeaseStore(Protocol):
    """A KV bucket with compare-and-set and a TTL: a key disappears ``ttl`` after its last
    write (NATS KV: a bucket with ``ttl``; ``create`` = create-if-absent, ``update`` =
    update-if-revision)."""

    async def get(self, key: str) -> LeaseRecord | None: ...

    async def create(self, key: str, value: bytes) -> int:
        """Create ``key``; its revision. ``Aborted`` if it exists."""
        ...

    async def update(self, key: str, value: bytes, *, revision: int) -> int:
        """Overwrite ``key`` if still at ``revision`` (refreshing its TTL); ``Aborted`` if not."""
        ...

    async def delete(self, key: str, *, revision: int) -> None:
        """Delete ``key`` if still at ``revision``; ``Aborted`` if not."""
        ...
