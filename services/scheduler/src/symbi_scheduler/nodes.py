"""Worker nodes: what each offers (from heartbeats), what the scheduler has charged to it, and
which nodes are reachable.

The scheduler does its own accounting: a task's request is charged to its node from dispatch
until it ends, so placement never waits for the next heartbeat to see a node fill up.
Heartbeats bring the node's total allocatable capacity, tiers, labels, whether it accepts new
work, and the ids of the tasks it is running (used to find runs that should not exist).

They also say on which tiers the node enforces a disk I/O limit (``disk_io_tiers``; the
sandbox refuses a ``disk_io_mbps`` task on any other tier). A task with ``disk_io_mbps > 0``
matches a node only on such a tier. A node that does not report it (older than the field:
``None``) is "unknown": it may be given disk-limited tasks as before, and refuses them itself
if it cannot enforce them.

A node is unreachable once it has been silent for ``missed_heartbeats`` intervals; the
registry reports it once (``expire``), and the caller requeues what was charged to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from symbi_common.errors import InvalidArgument, NotFound

from .options import NodeOptions
from .priority import Priority, SandboxTier
from .resources import NodeCapacity, Vector
from .task import TaskSpec, check_id, freeze_labels

__all__ = ["Node", "NodeHeartbeat", "NodeRegistry", "NodeView"]

_EMPTY_CAPACITY = NodeCapacity(0, 0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class NodeHeartbeat:
    """One heartbeat of a worker node's sandbox service."""

    node_id: str
    capacity: NodeCapacity
    tiers: frozenset[SandboxTier]
    labels: Mapping[str, str] = field(default_factory=dict)
    running: frozenset[str] = frozenset()
    schedulable: bool = True
    # Tiers on which the node enforces a disk I/O limit; None: not reported (an older node).
    disk_io_tiers: frozenset[SandboxTier] | None = None

    def __post_init__(self) -> None:
        check_id("node_id", self.node_id)
        if not isinstance(self.capacity, NodeCapacity):
            raise InvalidArgument("heartbeat capacity must be a NodeCapacity")
        object.__setattr__(self, "tiers", frozenset(SandboxTier.parse(t) for t in self.tiers))
        if self.disk_io_tiers is not None:
            object.__setattr__(
                self, "disk_io_tiers", frozenset(SandboxTier.parse(t) for t in self.disk_io_tiers)
            )
        object.__setattr__(self, "labels", freeze_labels("labels", self.labels))
        object.__setattr__(self, "running", frozenset(self.running))


@dataclass(frozen=True, slots=True)
class NodeView:
    """A read-only picture of a node for status and ListNodes."""

    node_id: str
    reachable: bool
    confirmed: bool
    schedulable: bool
    capacity: NodeCapacity
    allocated: Vector
    tasks: int
    tiers: frozenset[SandboxTier]
    labels: Mapping[str, str]
    last_seen: float  # monotonic
    last_heartbeat_at: float | None  # wall clock; None until the node's first heartbeat


class Node:
    """A node as the registry tracks it. Mutated only through ``NodeRegistry``."""

    __slots__ = (
        "allocated",
        "capacity",
        "confirmed",
        "disk_io_tiers",
        "free",
        "free_slots",
        "held_from",
        "labels",
        "last_heartbeat_at",
        "last_seen",
        "node_id",
        "order",
        "reachable",
        "reported_running",
        "schedulable",
        "tasks",
        "tiers",
    )

    def __init__(self, node_id: str, order: int, now: float) -> None:
        self.node_id = node_id
        self.order = order
        self.capacity = _EMPTY_CAPACITY
        self.tiers: frozenset[SandboxTier] = frozenset()
        self.disk_io_tiers: frozenset[SandboxTier] | None = None  # None: unknown (may place)
        self.labels: Mapping[str, str] = MappingProxyType({})
        self.schedulable = False
        self.reachable = True
        # False for a node known only from the journal (it had tasks before a restart) until
        # its first heartbeat: it takes no new work, but its silence still counts.
        self.confirmed = False
        self.last_seen = now
        self.last_heartbeat_at: float | None = None  # wall clock, for display
        self.reported_running: frozenset[str] = frozenset()
        self.tasks: dict[str, tuple[Vector, Priority]] = {}
        # held_from[p]: what charged tasks of priority p or lower hold (4 dimensions + count);
        # held_from[4] stays zero. Lets the preemption planner skip, at a glance, nodes with
        # too little lower-priority work to make room.
        self.held_from: list[list[int]] = [[0, 0, 0, 0, 0] for _ in range(len(Priority) + 1)]
        self.allocated: list[int] = [0, 0, 0, 0]
        self.free: list[int] = [0, 0, 0, 0]
        self.free_slots = 0

    def _recompute_free(self) -> None:
        total = self.capacity.vector
        alloc = self.allocated
        self.free = [
            total[0] - alloc[0],
            total[1] - alloc[1],
            total[2] - alloc[2],
            total[3] - alloc[3],
        ]
        self.free_slots = self.capacity.max_tasks - len(self.tasks)

    def clear_charges(self) -> None:
        """Forget every charge (the scheduler's accounting is being rebuilt)."""
        self.tasks.clear()
        self.allocated = [0, 0, 0, 0]
        self.held_from = [[0, 0, 0, 0, 0] for _ in range(len(Priority) + 1)]
        self._recompute_free()

    def fits(self, request: Vector) -> bool:
        """True if ``request`` fits in what is free now."""
        free = self.free
        return (
            self.free_slots > 0
            and free[0] >= request[0]
            and free[1] >= request[1]
            and free[2] >= request[2]
            and free[3] >= request[3]
        )

    def could_hold(self, request: Vector) -> bool:
        """True if ``request`` fits in the node's total capacity (were it empty)."""
        total = self.capacity.vector
        return (
            self.capacity.max_tasks > 0
            and total[0] >= request[0]
            and total[1] >= request[1]
            and total[2] >= request[2]
            and total[3] >= request[3]
        )

    def matches(self, spec: TaskSpec) -> bool:
        """True if the node offers the task's tier, carries its selected labels and, for a
        task with a disk I/O limit, can enforce it on that tier."""
        if spec.tier not in self.tiers:
            return False
        if spec.resources.disk_io_mbps > 0 and not self.enforces_disk_io(spec.tier):
            return False
        labels = self.labels
        return all(labels.get(k) == v for k, v in spec.node_selector.items())

    def enforces_disk_io(self, tier: SandboxTier) -> bool:
        """True if a disk I/O limit on ``tier`` is enforced here (or the node does not say:
        an older node is given the benefit of the doubt, as before)."""
        return self.disk_io_tiers is None or tier in self.disk_io_tiers

    @property
    def accepting(self) -> bool:
        """True if new work may be placed here."""
        return self.reachable and self.confirmed and self.schedulable

    def held_below(self, priority: Priority) -> list[int]:
        """Resources and count (5 values) held by charged tasks of a lower priority than
        ``priority``. Do not modify."""
        return self.held_from[int(priority) + 1]

    def load(self) -> float:
        """Dominant share: the largest fraction of any accounted dimension in use."""
        total = self.capacity.vector
        share = 0.0
        for used, cap in zip(self.allocated, total, strict=True):
            if cap > 0:
                share = max(share, used / cap)
        return share

    def view(self) -> NodeView:
        return NodeView(
            node_id=self.node_id,
            reachable=self.reachable,
            confirmed=self.confirmed,
            schedulable=self.schedulable,
            capacity=self.capacity,
            allocated=(self.allocated[0], self.allocated[1], self.allocated[2], self.allocated[3]),
            tasks=len(self.tasks),
            tiers=self.tiers,
            labels=self.labels,
            last_seen=self.last_seen,
            last_heartbeat_at=self.last_heartbeat_at,
        )


@dataclass(frozen=True, slots=True)
class HeartbeatOutcome:
    """What a heartbeat changed: ``joined`` (first seen, or back after being unreachable),
    ``freed`` (more room than before, so waiting tasks may now fit), and ``orphans``: task
    ids the node runs that the scheduler has not charged to it."""

    joined: bool
    freed: bool
    orphans: frozenset[str]


class NodeRegistry:
    """All known nodes, their accounting, and heartbeat expiry. Times are monotonic seconds."""

    def __init__(self, options: NodeOptions) -> None:
        self._options = options
        self._nodes: dict[str, Node] = {}
        self._order = 0
        # Bumped whenever which nodes accept work, or match which tiers, labels and sizes, may
        # change; the caches below are valid for one version.
        self._version = 0
        self._shape_cache: dict[tuple[object, ...], list[Node]] = {}
        self._eligible_cache: dict[tuple[object, ...], list[Node]] = {}
        self._accepting: frozenset[str] = frozenset()
        self._cache_version = -1

    @property
    def version(self) -> int:
        """Changes whenever a node joins, leaves, or changes what it offers."""
        return self._version

    # ---------------------------------------------------------------- membership
    def refresh(self, hb: NodeHeartbeat, now: float, *, wall: float | None = None) -> bool:
        """Record ``hb`` if it only says "still here": a reachable node whose capacity,
        tiers, labels and schedulability are unchanged and that runs nothing it was not
        given. False (and nothing recorded) otherwise: ``heartbeat`` must handle it."""
        node = self._nodes.get(hb.node_id)
        if (
            node is None
            or not node.reachable
            or not node.confirmed
            or node.capacity != hb.capacity
            or node.tiers != hb.tiers
            or node.disk_io_tiers != hb.disk_io_tiers
            or node.labels != hb.labels
            or node.schedulable != hb.schedulable
            or any(t not in node.tasks for t in hb.running)
        ):
            return False
        node.last_seen = max(node.last_seen, now)
        node.last_heartbeat_at = wall
        node.reported_running = hb.running
        return True

    def heartbeat(
        self, hb: NodeHeartbeat, now: float, *, wall: float | None = None
    ) -> HeartbeatOutcome:
        """Record a heartbeat received at ``now`` (monotonic; ``wall`` for display)."""
        node = self._nodes.get(hb.node_id)
        joined = node is None or not node.reachable or not node.confirmed
        if node is None:
            node = self._add(hb.node_id, now)
        before_free = (*node.free, node.free_slots)
        if (
            joined
            or node.tiers != hb.tiers
            or node.disk_io_tiers != hb.disk_io_tiers
            or node.labels != hb.labels
            or node.schedulable != hb.schedulable
            or node.capacity != hb.capacity
        ):
            self._version += 1
        node.capacity = hb.capacity
        node.tiers = hb.tiers
        node.disk_io_tiers = hb.disk_io_tiers
        node.labels = hb.labels
        node.schedulable = hb.schedulable
        node.reachable = True
        node.confirmed = True
        node.last_seen = now
        node.last_heartbeat_at = wall
        node.reported_running = hb.running
        node._recompute_free()
        after_free = (*node.free, node.free_slots)
        freed = joined or any(a > b for a, b in zip(after_free, before_free, strict=True))
        orphans = frozenset(t for t in hb.running if t not in node.tasks)
        return HeartbeatOutcome(joined=joined, freed=freed and node.accepting, orphans=orphans)

    def ensure(self, node_id: str, now: float) -> Node:
        """The node, created unconfirmed if unknown (used when rebuilding from the journal)."""
        node = self._nodes.get(node_id)
        if node is None:
            node = self._add(node_id, now)
        return node

    def _add(self, node_id: str, now: float) -> Node:
        node = Node(node_id, self._order, now)
        self._order += 1
        self._nodes[node_id] = node
        self._version += 1
        return node

    def expire(self, now: float) -> list[Node]:
        """Nodes that have just become unreachable (each reported once)."""
        limit = now - self._options.timeout_s
        lost = [n for n in self._nodes.values() if n.reachable and n.last_seen <= limit]
        for node in lost:
            node.reachable = False
        if lost:
            self._version += 1
        return lost

    def forget_stale(self, now: float) -> list[str]:
        """Drop nodes unreachable for ``forget_after_s`` with nothing charged to them."""
        limit = now - self._options.forget_after_s
        stale = [
            n.node_id
            for n in self._nodes.values()
            if not n.reachable and not n.tasks and n.last_seen <= limit
        ]
        for node_id in stale:
            self.forget(node_id)
        return stale

    def forget(self, node_id: str) -> Node:
        """Remove a node (deregistered, or long gone). Its charged tasks are the caller's."""
        node = self._nodes.pop(node_id, None)
        if node is None:
            raise NotFound(f"node {node_id!r} is not registered", reason="NODE_NOT_FOUND")
        self._version += 1
        return node

    def next_expiry(self) -> float | None:
        """When the next reachable node would be declared unreachable, if none heartbeats."""
        deadlines = [n.last_seen for n in self._nodes.values() if n.reachable]
        return min(deadlines) + self._options.timeout_s if deadlines else None

    # ---------------------------------------------------------------- accounting
    def charge(
        self,
        node_id: str,
        task_id: str,
        request: Vector,
        priority: Priority = Priority.NORMAL,
    ) -> None:
        """Charge ``request`` to the node for ``task_id`` (idempotent per task)."""
        node = self._nodes[node_id]
        if task_id in node.tasks:
            return
        node.tasks[task_id] = (request, priority)
        alloc = node.allocated
        for i in range(4):
            alloc[i] += request[i]
        for level in range(int(priority) + 1):
            row = node.held_from[level]
            for i in range(4):
                row[i] += request[i]
            row[4] += 1
        node._recompute_free()

    def release(self, node_id: str | None, task_id: str) -> bool:
        """Undo ``charge``; True if something was released."""
        node = self._nodes.get(node_id) if node_id is not None else None
        if node is None:
            return False
        charged = node.tasks.pop(task_id, None)
        if charged is None:
            return False
        request, priority = charged
        alloc = node.allocated
        for i in range(4):
            alloc[i] -= request[i]
        for level in range(int(priority) + 1):
            row = node.held_from[level]
            for i in range(4):
                row[i] -= request[i]
            row[4] -= 1
        node._recompute_free()
        return True

    # ---------------------------------------------------------------- queries
    def get(self, node_id: str) -> Node | None:
        return self._nodes.get(node_id)

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)

    def _check_cache(self) -> None:
        if self._cache_version != self._version:
            self._shape_cache.clear()
            self._eligible_cache.clear()
            self._accepting = frozenset(n.node_id for n in self._nodes.values() if n.accepting)
            self._cache_version = self._version

    def matching(self, spec: TaskSpec) -> list[Node]:
        """Accepting nodes with the task's tier and labels (and, for a disk-limited task, that
        enforce the limit on that tier), in registration order (cached)."""
        self._check_cache()
        key = (spec.tier, spec.resources.disk_io_mbps > 0, *spec.node_selector.items())
        nodes = self._shape_cache.get(key)
        if nodes is None:
            nodes = [n for n in self._nodes.values() if n.accepting and n.matches(spec)]
            self._shape_cache[key] = nodes
        return nodes

    def eligible(self, spec: TaskSpec) -> list[Node]:
        """Accepting nodes that could hold the task if they were empty (tier, labels, size)."""
        self._check_cache()
        request = spec.resources.vector
        key = (request, spec.tier, *spec.node_selector.items())
        nodes = self._eligible_cache.get(key)
        if nodes is None:
            nodes = [n for n in self.matching(spec) if n.could_hold(request)]
            self._eligible_cache[key] = nodes
        return nodes

    def accepting_ids(self) -> frozenset[str]:
        """Ids of the nodes that take new work (cached)."""
        self._check_cache()
        return self._accepting

    def has_confirmed(self) -> bool:
        """True once any node has heartbeated (before that, size checks are not meaningful)."""
        return any(n.confirmed and n.reachable for n in self._nodes.values())

    def why_never(self, spec: TaskSpec) -> str:
        """Why no reachable node could ever hold ``spec`` (empty string if one could)."""
        live = [n for n in self._nodes.values() if n.reachable and n.confirmed]
        tiered = [n for n in live if spec.tier in n.tiers]
        if not tiered:
            return f"no reachable node offers sandbox tier {spec.tier.value}"
        if spec.resources.disk_io_mbps > 0:
            tiered = [n for n in tiered if n.enforces_disk_io(spec.tier)]
            if not tiered:
                return (
                    f"no reachable node enforces a disk I/O limit on sandbox tier "
                    f"{spec.tier.value} (disk_io_mbps={spec.resources.disk_io_mbps}); "
                    "drop the limit or ask for a tier whose nodes enforce it"
                )
        labelled = [n for n in tiered if n.matches(spec)]
        if not labelled:
            sel = ",".join(f"{k}={v}" for k, v in spec.node_selector.items())
            disk = " and enforces its disk I/O limit" if spec.resources.disk_io_mbps > 0 else ""
            return f"no reachable node with tier {spec.tier.value}{disk} carries labels {sel}"
        if any(n.could_hold(spec.resources.vector) for n in labelled):
            return ""
        largest = max(labelled, key=lambda n: n.capacity.vector)
        r = spec.resources
        c = largest.capacity
        return (
            f"request (memory_mb={r.memory_mb}, cpu_millicores={r.cpu_millicores}, "
            f"disk_io_mbps={r.disk_io_mbps}, network_io_mbps={r.network_io_mbps}) exceeds every "
            f"matching node; largest is {largest.node_id} (memory_mb={c.memory_mb}, "
            f"cpu_millicores={c.cpu_millicores}, disk_io_mbps={c.disk_io_mbps}, "
            f"network_io_mbps={c.network_io_mbps})"
        )

    def views(self, nodes: Iterable[Node] | None = None) -> list[NodeView]:
        return [n.view() for n in (self._nodes.values() if nodes is None else nodes)]
