"""In-memory implementations of the ports, with the same semantics as the real adapters
(compare-and-set journal, CAS+TTL lease store). For unit tests, benchmarks and simulations;
the service wires JetStream, the policy service and NATS KV instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from symbi_common.errors import Aborted, Unavailable

from .codec import decode_record, encode_record
from .ports import (
    AgentTransition,
    AllocationDecision,
    AllocationRequest,
    Clock,
    DispatchOrder,
    JournalSnapshot,
    LeaseRecord,
    StopOrder,
)
from .task import TaskRecord

__all__ = [
    "InMemoryJournal",
    "InMemoryLeaseStore",
    "RecordingDispatcher",
    "RecordingLifecycle",
    "StaticPolicy",
]


class InMemoryJournal:
    """A ``TaskJournal`` in a dict. Records go through the JSON codec (as they would on the
    wire) unless ``encode=False``. Set ``unavailable`` to make every call fail."""

    def __init__(self, *, encode: bool = True) -> None:
        self._encode = encode
        self._records: dict[str, bytes | TaskRecord] = {}
        self._position = 0
        self.unavailable = False
        self.writes = 0

    def _check(self, expected_position: int) -> None:
        if self.unavailable:
            raise Unavailable("journal unavailable", reason="JOURNAL_DOWN")
        if expected_position != self._position:
            raise Aborted(
                f"journal is at {self._position}, writer expected {expected_position}",
                reason="WRONG_LAST_SEQUENCE",
            )

    async def load(self) -> JournalSnapshot:
        if self.unavailable:
            raise Unavailable("journal unavailable", reason="JOURNAL_DOWN")
        records = [decode_record(r) if isinstance(r, bytes) else r for r in self._records.values()]
        return JournalSnapshot(records=records, position=self._position)

    async def put(self, record: TaskRecord, *, expected_position: int) -> int:
        self._check(expected_position)
        self._records[record.task_id] = encode_record(record) if self._encode else record
        self._position += 1
        self.writes += 1
        return self._position

    async def remove(self, task_id: str, *, expected_position: int) -> int:
        self._check(expected_position)
        self._records.pop(task_id, None)
        self._position += 1
        self.writes += 1
        return self._position

    @property
    def position(self) -> int:
        return self._position

    def record(self, task_id: str) -> TaskRecord | None:
        """The journaled record of ``task_id`` (for assertions)."""
        r = self._records.get(task_id)
        return decode_record(r) if isinstance(r, bytes) else r

    def __len__(self) -> int:
        return len(self._records)


class InMemoryLeaseStore:
    """A ``LeaseStore`` honouring compare-and-set and a TTL measured on ``clock.monotonic``.
    Revisions come from one counter across keys, as in a NATS KV stream."""

    def __init__(self, clock: Clock, *, ttl_s: float) -> None:
        self._clock = clock
        self._ttl = ttl_s
        self._entries: dict[str, tuple[bytes, int, float]] = {}
        self._revision = 0
        self.unavailable = False

    def _live(self, key: str) -> tuple[bytes, int, float] | None:
        if self.unavailable:
            raise Unavailable("lease store unavailable", reason="KV_DOWN")
        entry = self._entries.get(key)
        if entry is not None and self._clock.monotonic() - entry[2] >= self._ttl:
            del self._entries[key]
            entry = None
        return entry

    def _write(self, key: str, value: bytes) -> int:
        self._revision += 1
        self._entries[key] = (value, self._revision, self._clock.monotonic())
        return self._revision

    async def get(self, key: str) -> LeaseRecord | None:
        entry = self._live(key)
        return LeaseRecord(entry[0], entry[1]) if entry is not None else None

    async def create(self, key: str, value: bytes) -> int:
        if self._live(key) is not None:
            raise Aborted(f"key {key!r} exists", reason="KEY_EXISTS")
        return self._write(key, value)

    async def update(self, key: str, value: bytes, *, revision: int) -> int:
        entry = self._live(key)
        if entry is None or entry[1] != revision:
            raise Aborted(f"key {key!r} is not at revision {revision}", reason="WRONG_REVISION")
        return self._write(key, value)

    async def delete(self, key: str, *, revision: int) -> None:
        entry = self._live(key)
        if entry is None or entry[1] != revision:
            raise Aborted(f"key {key!r} is not at revision {revision}", reason="WRONG_REVISION")
        del self._entries[key]


@dataclass
class RecordingDispatcher:
    """A ``TaskDispatcher`` that keeps every order. Set ``unavailable`` to fail sends."""

    dispatched: list[DispatchOrder] = field(default_factory=list)
    stopped: list[StopOrder] = field(default_factory=list)
    unavailable: bool = False

    async def dispatch(self, order: DispatchOrder) -> None:
        if self.unavailable:
            raise Unavailable("bus unavailable", reason="BUS_DOWN")
        self.dispatched.append(order)

    async def stop(self, order: StopOrder) -> None:
        if self.unavailable:
            raise Unavailable("bus unavailable", reason="BUS_DOWN")
        self.stopped.append(order)

    def to_node(self, node_id: str) -> list[DispatchOrder]:
        return [o for o in self.dispatched if o.node_id == node_id]


@dataclass
class RecordingLifecycle:
    """A ``LifecycleNotifier`` that keeps every transition."""

    transitions: list[AgentTransition] = field(default_factory=list)

    async def notify(self, transition: AgentTransition) -> None:
        self.transitions.append(transition)


@dataclass
class StaticPolicy:
    """An ``AllocationPolicy`` that allows everything except the agents in ``deny``
    (with ``reason``); ``unavailable`` makes it raise ``Unavailable``."""

    deny: Sequence[str] = ()
    reason: str = "denied by test policy"
    unavailable: bool = False
    asked: list[AllocationRequest] = field(default_factory=list)

    async def allocate(self, request: AllocationRequest) -> AllocationDecision:
        if self.unavailable:
            raise Unavailable("policy service unavailable", reason="POLICY_DOWN")
        self.asked.append(request)
        if request.agent_id in self.deny:
            return AllocationDecision(False, self.reason)
        return AllocationDecision(True)
