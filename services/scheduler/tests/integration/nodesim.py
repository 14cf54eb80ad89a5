"""Simulated worker nodes: real bus principals of role "node" that keep contract C3.

A ``SimulatedNode`` has its own NATS connection and credentials. It heartbeats every
``heartbeat_interval_s`` (capacity, tiers, labels, running task ids), consumes its work queue
``symbi.task.<node>`` and its control subject ``symbi.task.control.<node>``, and answers like
a sandbox would: a dispatch id is started at most once and never after ``not_after_ms``; the
tasks an assignment ``preempts`` are stopped and reported (STOPPED "preempted") before the
start is acknowledged (STARTED); a run ends SUCCEEDED after ``run_s`` (or never, if None); a
TaskStop ends it with STOPPED and the stop's reason. Every start goes into ``journal`` (shared
between nodes when the test passes one) so a test can check nothing ran twice.

Used by the integration tests and by bench/scheduler.py (100 nodes in one process).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.js import api as js_api

from symbi.bus.v1 import events_pb2
from symbi.common.v1 import common_pb2
from symbi_common.bus import BusEndpoint, ConsumerSpec, Credentials, Received
from symbi_common.bus.permissions import inbox_prefix
from symbi_common.config import BusSection
from symbi_common.jetstream.spec import Subjects

State = events_pb2.TaskStatus


@dataclass
class Start:
    node_id: str
    task_id: str
    dispatch_id: str
    at: float
    preempts: tuple[str, ...]
    priority: int


@dataclass
class RunJournal:
    """What every node did, in order (shared by the nodes of a test)."""

    starts: list[Start] = field(default_factory=list)
    ends: list[tuple[str, str, str, int, str]] = field(
        default_factory=list
    )  # node, task, dispatch, state, reason
    refused: list[tuple[str, str, str]] = field(default_factory=list)

    def started(self, task_id: str) -> list[Start]:
        return [s for s in self.starts if s.task_id == task_id]

    def start_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.starts:
            counts[s.task_id] = counts.get(s.task_id, 0) + 1
        return counts

    def succeeded(self) -> set[str]:
        return {task for _, task, _, state, _ in self.ends if state == State.STATE_SUCCEEDED}

    def stopped(self, reason: str | None = None) -> list[tuple[str, str]]:
        return [
            (node, task)
            for node, task, _, state, why in self.ends
            if state == State.STATE_STOPPED and (reason is None or why == reason)
        ]


@dataclass
class _Run:
    dispatch_id: str
    memory_mb: int
    cpu_millicores: int
    attempt: int
    agent_id: str
    timer: asyncio.Task[None] | None = None


class SimulatedNode:
    """One node (see the module docstring): ``await node.start()`` … ``await node.stop()``."""

    def __init__(
        self,
        credentials: Credentials,
        nats_url: str,
        *,
        memory_mb: int = 8192,
        cpu_millicores: int = 8000,
        tiers: Iterable[int] = (common_pb2.SANDBOX_TIER_DOCKER,),
        labels: Mapping[str, str] | None = None,
        heartbeat_interval_s: float = 0.5,
        run_s: float | None = 0.5,
        acknowledge: bool = True,
        journal: RunJournal | None = None,
        name_prefix: str = "SYMBI",
        bus_config: BusSection | None = None,
    ) -> None:
        self.credentials = credentials
        self.node_id = credentials.keys.principal_id
        self.nats_url = nats_url
        self.memory_mb = memory_mb
        self.cpu_millicores = cpu_millicores
        self.tiers = tuple(tiers)
        self.labels = dict(labels or {})
        self.interval = heartbeat_interval_s
        self.run_s = run_s
        self.acknowledge = acknowledge
        self.journal = journal if journal is not None else RunJournal()
        self.prefix = name_prefix
        self.bus_config = bus_config or BusSection()
        self.runs: dict[str, _Run] = {}
        self.seen_dispatches: set[str] = set()
        self.stop_orders: list[events_pb2.TaskStop] = []
        self.assignments: list[events_pb2.TaskAssignment] = []
        self.heartbeating = True
        self.heartbeats_sent = 0
        self.heartbeat_errors: list[str] = []
        self.endpoint: BusEndpoint | None = None
        self.errors: list[BaseException] = []
        self._nc: NatsClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- life
    async def start(self) -> SimulatedNode:
        """Connect, join the bus, and start heartbeating and consuming."""
        self._nc = await nats.connect(
            self.nats_url,
            name=self.node_id,
            inbox_prefix=inbox_prefix(self.node_id).encode(),
            max_reconnect_attempts=-1,
        )
        js = self._nc.jetstream()
        self.endpoint = await BusEndpoint.open(
            self._nc, js, self.credentials, config=self.bus_config, name_prefix=self.prefix
        )
        bus = self.endpoint.bus
        self._spawn(self.endpoint.run())
        self._spawn(self._heartbeats())
        self._spawn(
            bus.consume(
                ConsumerSpec.work_queue(
                    f"{self.prefix}_TASKS", Subjects.task(self.node_id), f"tasks-{self.node_id}"
                ),
                self._on_assignment,
                batch=1,  # one per pull, like the scheduler's status consumers
            )
        )
        self._spawn(
            bus.consume(
                ConsumerSpec.subscription(
                    f"{self.prefix}_EVENTS",
                    (Subjects.task_control(self.node_id),),
                    f"control-{self.node_id}",
                    deliver_policy=js_api.DeliverPolicy.ALL,
                ),
                self._on_stop,
                batch=1,
            )
        )
        return self

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]

    async def stop(self) -> None:
        """Vanish, as in a crash: nothing more is reported."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()

    # ---------------------------------------------------------------- heartbeats
    def heartbeat(self) -> events_pb2.NodeHeartbeat:
        used_mem = sum(r.memory_mb for r in self.runs.values())
        used_cpu = sum(r.cpu_millicores for r in self.runs.values())
        return events_pb2.NodeHeartbeat(
            node_id=self.node_id,
            timestamp_ms=round(time.time() * 1000),
            memory_total_mb=self.memory_mb,
            memory_free_mb=max(0, self.memory_mb - used_mem),
            cpu_total_millicores=self.cpu_millicores,
            cpu_free_millicores=max(0, self.cpu_millicores - used_cpu),
            running_tasks=len(self.runs),
            tiers=list(self.tiers),
            labels=self.labels,
            running_task_ids=sorted(self.runs),
            heartbeat_interval_ms=round(self.interval * 1000),
        )

    async def _heartbeats(self) -> None:
        assert self.endpoint is not None
        bus = self.endpoint.bus
        while True:
            if self.heartbeating:
                try:
                    await bus.publish(
                        "platform", self.heartbeat(), subject=Subjects.heartbeat(self.node_id)
                    )
                    self.heartbeats_sent += 1
                except Exception as exc:  # keep beating through a NATS blip
                    self.heartbeat_errors.append(repr(exc))
            await asyncio.sleep(self.interval)

    # ---------------------------------------------------------------- statuses
    async def _status(
        self, task_id: str, run: _Run, state: int, reason: str = "", exit_code: int = 0
    ) -> None:
        assert self.endpoint is not None
        status = events_pb2.TaskStatus(
            task_id=task_id,
            agent_id=run.agent_id,
            node_id=self.node_id,
            attempt=run.attempt,
            state=state,  # type: ignore[arg-type]
            exit_code=exit_code,
            reason=reason,
            timestamp_ms=round(time.time() * 1000),
            dispatch_id=run.dispatch_id,
        )
        await self.endpoint.bus.publish("platform", status, subject=Subjects.task_status(task_id))
        if state != State.STATE_STARTED:
            self.journal.ends.append((self.node_id, task_id, run.dispatch_id, state, reason))

    async def _end(self, task_id: str, state: int, reason: str = "") -> None:
        run = self.runs.pop(task_id, None)
        if run is None:
            return
        if run.timer is not None and run.timer is not asyncio.current_task():
            run.timer.cancel()
        await self._status(task_id, run, state, reason)

    async def _finish_later(self, task_id: str, dispatch_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        run = self.runs.get(task_id)
        if run is not None and run.dispatch_id == dispatch_id:
            await self._end(task_id, State.STATE_SUCCEEDED)

    async def finish(self, task_id: str, state: int = State.STATE_SUCCEEDED) -> None:
        """End a run now (for tests that drive completions by hand)."""
        await self._end(task_id, state)

    # ---------------------------------------------------------------- orders
    async def _on_assignment(self, msg: Received) -> None:
        a = msg.parse(events_pb2.TaskAssignment)
        if msg.sender_role != "service" or a.node_id != self.node_id:
            return
        self.assignments.append(a)
        if a.dispatch_id in self.seen_dispatches:
            return  # at most once per dispatch id
        self.seen_dispatches.add(a.dispatch_id)
        run = _Run(
            a.dispatch_id, a.limits.memory_mb, a.limits.cpu_millicores, a.attempt, a.agent_id
        )
        if time.time() * 1000 > a.not_after_ms:
            self.journal.refused.append((self.node_id, a.task_id, a.dispatch_id))
            await self._status(a.task_id, run, State.STATE_REFUSED, "not_after passed")
            return
        if not self.acknowledge:
            return
        for victim in a.preempts:  # stopped and reported before the start is acknowledged
            await self._end(victim, State.STATE_STOPPED, "preempted")
        old = self.runs.get(a.task_id)
        if old is not None:  # a newer dispatch of a task running here: the old run is gone
            await self._end(a.task_id, State.STATE_LOST, "superseded on this node")
        self.runs[a.task_id] = run
        self.journal.starts.append(
            Start(
                self.node_id, a.task_id, a.dispatch_id, time.time(), tuple(a.preempts), a.priority
            )
        )
        await self._status(a.task_id, run, State.STATE_STARTED)
        if self.run_s is not None:
            run.timer = self._spawn(self._finish_later(a.task_id, a.dispatch_id, self.run_s))

    async def _on_stop(self, msg: Received) -> None:
        stop = msg.parse(events_pb2.TaskStop)
        if msg.sender_role != "service":
            return
        self.stop_orders.append(stop)
        run = self.runs.get(stop.task_id)
        if run is None or (stop.dispatch_id and stop.dispatch_id != run.dispatch_id):
            return  # unknown or another run: stopping it is a no-op
        await self._end(stop.task_id, State.STATE_STOPPED, stop.reason)
