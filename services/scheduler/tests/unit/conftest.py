"""A harness around ``SchedulerCore`` with in-memory ports and a manual clock."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from symbi_scheduler import (
    DispatchOrder,
    ManualClock,
    NodeCapacity,
    NodeHeartbeat,
    ResourceRequest,
    SchedulerCore,
    SchedulerOptions,
    TaskOutcome,
    TaskResult,
    TaskSpec,
)
from symbi_scheduler.memory import (
    InMemoryJournal,
    RecordingDispatcher,
    RecordingLifecycle,
    StaticPolicy,
)


def spec(
    task_id: str,
    priority: str = "normal",
    *,
    mem: int = 512,
    cpu: int = 500,
    tier: str = "docker",
    selector: Mapping[str, str] | None = None,
    agent: str | None = None,
    timeout: float = 60.0,
    preemptible: bool = True,
    disk: int = 0,
) -> TaskSpec:
    return TaskSpec(
        task_id=task_id,
        agent_id=agent or f"agent-{task_id}",
        resources=ResourceRequest(
            memory_mb=mem, cpu_millicores=cpu, disk_io_mbps=disk, execution_timeout_s=timeout
        ),
        priority=priority,  # type: ignore[arg-type]  # parsed by TaskSpec
        tier=tier,  # type: ignore[arg-type]
        node_selector=selector or {},
        preemptible=preemptible,
    )


def hb(
    node_id: str,
    *,
    mem: int = 4096,
    cpu: int = 4000,
    max_tasks: int = 16,
    tiers: Iterable[str] = ("docker",),
    labels: Mapping[str, str] | None = None,
    running: Iterable[str] = (),
    schedulable: bool = True,
    disk_io_tiers: Iterable[str] | None = None,
) -> NodeHeartbeat:
    return NodeHeartbeat(
        node_id=node_id,
        capacity=NodeCapacity(mem, cpu, 1000, 1000, max_tasks),
        tiers=frozenset(tiers),  # type: ignore[arg-type]  # parsed by NodeHeartbeat
        labels=labels or {},
        running=frozenset(running),
        schedulable=schedulable,
        disk_io_tiers=None if disk_io_tiers is None else frozenset(disk_io_tiers),  # type: ignore[arg-type]
    )


class Harness:
    """One scheduler core wired to in-memory ports."""

    spec = staticmethod(spec)
    hb = staticmethod(hb)

    def __init__(
        self,
        options: SchedulerOptions | None = None,
        *,
        clock: ManualClock | None = None,
        journal: InMemoryJournal | None = None,
        dispatcher: RecordingDispatcher | None = None,
    ) -> None:
        self.clock = clock if clock is not None else ManualClock()
        self.journal = journal if journal is not None else InMemoryJournal()
        self.dispatcher = dispatcher if dispatcher is not None else RecordingDispatcher()
        self.lifecycle = RecordingLifecycle()
        self.policy = StaticPolicy()
        self.events: list[Any] = []
        self.options = options or SchedulerOptions()
        self.core = SchedulerCore(
            journal=self.journal,
            dispatcher=self.dispatcher,
            policy=self.policy,
            lifecycle=self.lifecycle,
            clock=self.clock,
            options=self.options,
            listener=self.events.append,
        )
        self._acked: set[str] = set()

    async def start(self, *nodes: NodeHeartbeat) -> None:
        await self.core.activate()
        for node in nodes:
            await self.core.heartbeat(node)

    async def submit(self, *specs: TaskSpec) -> None:
        for s in specs:
            await self.core.submit(s)

    async def cycle(self) -> Any:
        return await self.core.schedule()

    def pending_orders(self) -> list[DispatchOrder]:
        """Dispatch orders not yet acknowledged by the harness."""
        return [o for o in self.dispatcher.dispatched if o.dispatch_id not in self._acked]

    async def ack(self, order: DispatchOrder) -> bool:
        self._acked.add(order.dispatch_id)
        return await self.core.acknowledge(order.task_id, order.dispatch_id, order.node_id)

    async def ack_all(self) -> None:
        for order in self.pending_orders():
            await self.ack(order)

    async def finish(self, task_id: str, outcome: TaskOutcome = TaskOutcome.COMPLETED) -> Any:
        rec = self.core.task(task_id)
        assert rec.dispatch_id is not None
        assert rec.node_id is not None
        return await self.core.task_finished(
            TaskResult(task_id, rec.dispatch_id, rec.node_id, outcome)
        )

    async def advance(self, seconds: float, *, beat: Iterable[NodeHeartbeat] = ()) -> Any:
        """Move time, heartbeat ``beat`` nodes, then tick."""
        self.clock.advance(seconds)
        for node in beat:
            await self.core.heartbeat(node)
        return await self.core.tick()

    def node_of(self, task_id: str) -> str | None:
        return self.core.task(task_id).node_id

    def state(self, task_id: str) -> str:
        return self.core.task(task_id).state.value


@pytest.fixture
def harness() -> Harness:
    return Harness()


@pytest.fixture
def make_harness() -> type[Harness]:
    return Harness
