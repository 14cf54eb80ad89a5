"""``SchedulerCore``: the queue, the nodes, placement, preemption and dispatch, behind ports.

One process drives one core: it calls ``activate`` when it becomes leader, feeds it events
(``submit``, ``cancel``, ``heartbeat``, ``acknowledge``, ``task_finished``), and runs
``tick`` and ``schedule`` whenever ``next_deadline`` passes or ``needs_cycle`` is set. Every
operation holds one lock, so the core's state changes one operation at a time.

Write-ahead rule: every change is written to the journal *before* the core acts on it (sends
an order, tells lifecycle). So a restarted scheduler rebuilt from the journal knows every order
that may have gone out, and never places a task that may already be on a node.

Any failed or uncertain journal write (``Aborted`` because another leader wrote, a timeout, an
unavailable store) deactivates the core: its in-memory state may no longer match the journal.
The driver then calls ``activate`` again if it still holds the lease (see docs/adr/0052).

Capacity held back (the "reservation")
--------------------------------------
A scheduling cycle takes tasks in queue order. When a task cannot be placed (and cannot
preempt), every node where it could ever run is held back for the rest of the cycle: tasks
further down the queue may only use other nodes. So a small later task never takes the room
an earlier (or more urgent, or longer-waiting) task is waiting for, which together with aging
means nothing starves; a task pinned to a tier or label that is full does not block tasks that
can run elsewhere. The cycle ends when every accepting node is held back, after ``lookahead``
tasks left waiting, or after ``max_decisions`` decisions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

from symbi_common.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    SymbiError,
    Unavailable,
)

from .dispatch import DispatchTracker, Expectation, ExpectationKind
from .nodes import Node, NodeHeartbeat, NodeRegistry, NodeView
from .options import SchedulerOptions
from .placement import Placer
from .ports import (
    AgentTransition,
    AllocationDecision,
    AllocationPolicy,
    AllocationRequest,
    Clock,
    DispatchOrder,
    LifecycleNotifier,
    StopOrder,
    TaskDispatcher,
    TaskJournal,
    TaskListener,
    TransitionKind,
)
from .preemption import PreemptionBudget, PreemptionPlan, PreemptionPlanner, Victim
from .priority import Priority
from .queue import TaskQueue
from .reports import ActivationReport, CycleReport, Placement, TickReport
from .resources import DIMENSIONS
from .status import DecisionMeter, SchedulerStatus
from .task import StartReport, TaskOutcome, TaskRecord, TaskResult, TaskSpec, TaskState

__all__ = ["SchedulerCore"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_RECENT = 1024  # finished tasks remembered for queries and idempotent resubmission
_BREATHE_S = 0.005  # longest CPU stretch of a cycle without letting the event loop run
_SHARE_AFTER_S = 0.01  # a cycle steps aside for waiting events after this long


class _CoreLock:
    """The core's lock (FIFO, as ``asyncio.Lock``) that also says whether anyone waits for
    it, so a scheduling cycle can step aside for events (heartbeats, acknowledgements,
    requests) between two decisions instead of making them wait for the whole cycle."""

    __slots__ = ("_lock", "waiting")

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self.waiting = 0

    async def __aenter__(self) -> None:
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()


class SchedulerCore:
    """The scheduler's domain core. See the module docstring for how it is driven."""

    def __init__(
        self,
        *,
        journal: TaskJournal,
        dispatcher: TaskDispatcher,
        policy: AllocationPolicy,
        lifecycle: LifecycleNotifier,
        clock: Clock,
        options: SchedulerOptions | None = None,
        listener: TaskListener | None = None,
        on_decision: Callable[[float], None] | None = None,
    ) -> None:
        """``on_decision`` is called with the wall-clock seconds of every decision (from
        taking the task off the queue to its orders sent), for metrics; it must not block."""
        self._options = options or SchedulerOptions()
        self._journal = journal
        self._dispatcher = dispatcher
        self._policy = policy
        self._lifecycle = lifecycle
        self._clock = clock
        self._listener = listener
        self._on_decision = on_decision
        self._lock = _CoreLock()
        # Heartbeats are kept while standing by, so a new leader knows the nodes at once.
        self._nodes = NodeRegistry(self._options.nodes)
        self._placer = Placer(self._options.placement)
        self._planner = PreemptionPlanner(self._options.preemption)
        self._meter = DecisionMeter(self._options.rate_window_s)
        self._reset()

    def _reset(self) -> None:
        opts = self._options
        self._active = False
        self._position = 0
        self._seq = 0
        self._last_enqueued_at = 0.0
        self._activated_at = 0.0
        self._tasks: dict[str, TaskRecord] = {}
        self._by_state: Counter[TaskState] = Counter()
        # QUEUED records per priority (a cycle's popped tasks are still queued for status)
        self._queued: Counter[Priority] = Counter()
        self._recent: OrderedDict[str, TaskRecord] = OrderedDict()
        self._queue = TaskQueue(aging_interval_s=opts.queue.aging_interval_s)
        self._tracker = DispatchTracker()
        self._budget = PreemptionBudget(opts.preemption)
        self._stopping: dict[str, str] = {}  # task id -> node id, for STOPPING tasks
        self._infeasible_since: dict[str, float] = {}
        self._victims: dict[str, Victim] = {}  # RUNNING tasks as the preemption planner sees them
        self._dirty = False
        # Tasks found unplaceable, and the room epoch they were found so in: until room may
        # have appeared (a release, a node change, a new preemption victim, a removal, or
        # the periodic retry), a cycle passes over them without searching again.
        self._room_epoch = 0
        self._blocked: dict[str, tuple[int, int, int]] = {}
        self._last_cycle = 0.0
        self._last_rescan = 0.0
        self._preemptions_total = 0
        self._failed_total = 0
        for node in self._nodes:
            node.clear_charges()

    # ================================================================= activation
    @property
    def active(self) -> bool:
        """True while this core may act (between ``activate`` and ``deactivate``/a journal
        failure)."""
        return self._active

    @property
    def needs_cycle(self) -> bool:
        """True when ``schedule`` may have something to do."""
        return self._active and self._dirty and len(self._queue) > 0

    async def activate(self) -> ActivationReport:
        """Become the active scheduler: rebuild all state from the journal, re-send what may
        not have reached a node, and clean up finished tasks."""
        async with self._lock:
            self._reset()
            snapshot = await self._call(self._journal.load(), "journal load")
            now, mono = self._clock.now(), self._clock.monotonic()
            self._position = snapshot.position
            self._activated_at = mono
            # Nodes heard from while standing by but silent too long are gone; nothing is
            # charged yet, so this only marks them (their journaled tasks are requeued below).
            self._nodes.expire(mono)
            ack_timeout = self._options.dispatch.ack_timeout_s
            finished: list[TaskRecord] = []
            resend_dispatch: list[DispatchOrder] = []
            resend_stop: list[StopOrder] = []
            preempted_at: list[float] = []
            for rec in sorted(snapshot.records, key=lambda r: r.seq):
                self._seq = max(self._seq, rec.seq + 1)
                self._last_enqueued_at = max(self._last_enqueued_at, rec.enqueued_at)
                if rec.last_preempted_at is not None:
                    preempted_at.append(rec.last_preempted_at)
                if rec.state.terminal:
                    finished.append(rec)
                    continue
                self._apply(rec, notify_listener=False)
                if rec.state is TaskState.QUEUED:
                    self._enqueue(rec)
                    continue
                assert rec.node_id is not None
                assert rec.dispatch_id is not None
                self._nodes.ensure(rec.node_id, mono)
                if rec.state is TaskState.DISPATCHED:
                    self._nodes.charge(
                        rec.node_id, rec.task_id, rec.spec.resources.vector, rec.priority
                    )
                    self._expect(rec, ExpectationKind.START, mono + ack_timeout)
                    if rec.not_after is not None and now < rec.not_after:
                        resend_dispatch.append(self._order(rec))
                elif rec.state is TaskState.RUNNING:
                    self._nodes.charge(
                        rec.node_id, rec.task_id, rec.spec.resources.vector, rec.priority
                    )
                else:  # STOPPING
                    self._stopping[rec.task_id] = rec.node_id
                    self._expect(rec, ExpectationKind.STOP, mono + ack_timeout)
                    resend_stop.append(self._stop_order(rec, rec.reason))
            window = self._options.preemption.window_s
            self._budget.restore(t for t in preempted_at if now - t < window)
            self._active = True
            self._dirty = True
            lost = TickReport()
            for node in list(self._nodes):
                if not node.reachable and (node.tasks or node.node_id in self._stopping.values()):
                    await self._node_lost(node, lost)
            for rec in finished:
                if rec.state is TaskState.FAILED:
                    await self._notify(rec, TransitionKind.FAILED, rec.reason)
                await self._remove(rec)
            for order in resend_dispatch:
                await self._send_dispatch(order)
            for stop in resend_stop:
                await self._send_stop(stop)
            report = ActivationReport(
                position=self._position,
                queued=self._by_state[TaskState.QUEUED],
                dispatched=self._by_state[TaskState.DISPATCHED],
                running=self._by_state[TaskState.RUNNING],
                stopping=self._by_state[TaskState.STOPPING],
                finished=len(finished),
                redispatched=len(resend_dispatch),
            )
            log.info(
                "scheduler active at journal position %d: %d queued, %d dispatched, "
                "%d running, %d stopping",
                report.position,
                report.queued,
                report.dispatched,
                report.running,
                report.stopping,
            )
            return report

    async def deactivate(self) -> None:
        """Stop acting (leadership lost or handed over); state is dropped, nodes are kept."""
        async with self._lock:
            self._reset()

    def require_active(self) -> None:
        """Unavailable (SCHEDULER_NOT_ACTIVE) unless this core is the active one."""
        if not self._active:
            raise Unavailable(
                "this scheduler is not the active one (standby, or re-reading its journal)",
                reason="SCHEDULER_NOT_ACTIVE",
            )

    # ================================================================= requests
    def validate(self, spec: TaskSpec) -> None:
        """Check ``spec`` against the configured hard limits (InvalidArgument naming why)."""
        limits = self._options.limits
        r = spec.resources
        for name, value, limit in (
            ("memory_mb", r.memory_mb, limits.max_memory_mb),
            ("cpu_millicores", r.cpu_millicores, limits.max_cpu_millicores),
            ("disk_io_mbps", r.disk_io_mbps, limits.max_disk_io_mbps),
            ("network_io_mbps", r.network_io_mbps, limits.max_network_io_mbps),
            ("execution_timeout_s", r.execution_timeout_s, limits.max_execution_timeout_s),
            ("metadata bytes", spec.metadata_bytes, limits.max_metadata_bytes),
            ("payload bytes", len(spec.payload), limits.max_payload_bytes),
        ):
            if value > limit:
                raise InvalidArgument(
                    f"{name} {value} exceeds the limit of {limit}",
                    reason="LIMIT_EXCEEDED",
                    details={"field": name, "value": str(value), "limit": str(limit)},
                )

    async def submit(self, spec: TaskSpec) -> TaskRecord:
        """Accept a task into the queue, durably; the record it got.

        Resubmitting the same spec under the same task id returns the existing record (safe
        retries); a different spec under a used id is ``AlreadyExists``. A request no node
        could ever hold is refused with ``FailedPrecondition`` (once nodes have had time to
        report after activation); over the queue bound it is ``ResourceExhausted``.
        """
        self.validate(spec)
        async with self._lock:
            self.require_active()
            existing = self._tasks.get(spec.task_id) or self._recent.get(spec.task_id)
            if existing is not None:
                if existing.spec == spec:
                    return existing
                raise AlreadyExists(
                    f"task {spec.task_id!r} already exists with a different request",
                    reason="TASK_EXISTS",
                )
            if len(self._queue) >= self._options.queue.max_queued:
                raise ResourceExhausted(
                    f"the queue is full ({self._options.queue.max_queued} tasks); retry later",
                    reason="QUEUE_FULL",
                )
            mono = self._clock.monotonic()
            warm = mono - self._activated_at >= self._options.nodes.timeout_s
            if warm and self._nodes.has_confirmed():
                why = self._nodes.why_never(spec)
                if why:
                    raise FailedPrecondition(
                        f"task {spec.task_id!r} can never be placed: {why}",
                        reason="UNPLACEABLE",
                    )
            now = self._clock.now()
            # Submission order must match rank order within a priority even if the wall
            # clock steps back.
            enqueued_at = max(now, self._last_enqueued_at)
            self._last_enqueued_at = enqueued_at
            rec = TaskRecord(
                spec=spec,
                state=TaskState.QUEUED,
                seq=self._seq,
                enqueued_at=enqueued_at,
                updated_at=now,
            )
            await self._store(rec)
            self._seq += 1
            self._enqueue(rec)
            return rec

    async def cancel(self, task_id: str, reason: str = "cancelled") -> TaskRecord:
        """Cancel a task wherever it is (a running one is stopped); its final record."""
        async with self._lock:
            self.require_active()
            rec = self._tasks.get(task_id)
            if rec is None:
                done = self._recent.get(task_id)
                if done is not None:
                    raise FailedPrecondition(
                        f"task {task_id!r} already ended ({done.state.value})",
                        reason="TASK_ENDED",
                    )
                raise NotFound(f"task {task_id!r} is not known", reason="TASK_NOT_FOUND")
            final = rec.evolve(
                state=TaskState.CANCELLED, reason=reason, updated_at=self._clock.now()
            )
            await self._remove(final)
            if rec.state.on_node:
                await self._send_stop(self._stop_order(rec, f"cancelled: {reason}"))
            await self._notify(final, TransitionKind.CANCELLED, reason)
            return final

    # ================================================================= node events
    async def heartbeat(self, hb: NodeHeartbeat, *, age_s: float = 0.0) -> None:
        """A node's heartbeat, sent ``age_s`` seconds ago (a heartbeat read back from the
        bus at start-up is older than one just received). Kept while standing by too (for a
        fast takeover)."""
        age = max(0.0, age_s)
        # The common case — "still here, nothing changed" — touches liveness only and never
        # waits for the lock: a long scheduling cycle must not make nodes look silent.
        if self._nodes.refresh(hb, self._clock.monotonic() - age, wall=self._clock.now() - age):
            return
        async with self._lock:
            outcome = self._nodes.heartbeat(
                hb, self._clock.monotonic() - age, wall=self._clock.now() - age
            )
            if not self._active:
                return
            if outcome.freed:
                self._dirty = True
            for task_id in sorted(outcome.orphans):
                rec = self._tasks.get(task_id)
                if rec is not None and rec.state is TaskState.STOPPING:
                    continue  # being stopped already
                if rec is not None and rec.node_id == hb.node_id and rec.state.on_node:
                    continue
                if self._ended_here_lately(task_id, hb.node_id):
                    continue  # a heartbeat sent before the node heard of the end (or stop)
                log.warning(
                    "node %s runs task %s that is not assigned to it; stopping it",
                    hb.node_id,
                    task_id,
                )
                await self._send_stop(
                    StopOrder(hb.node_id, task_id, None, "not assigned to this node")
                )

    def _ended_here_lately(self, task_id: str, node_id: str) -> bool:
        """Whether ``task_id`` ended on ``node_id`` less than a node timeout ago. A heartbeat
        the node sent before it learnt of the end (a cancel's stop in flight, or its own
        result crossing the heartbeat) still lists the run: that is not an unassigned run,
        and the stop it would provoke is redundant. A run still reported after the window
        is stopped as unassigned."""
        final = self._recent.get(task_id)
        return (
            final is not None
            and final.node_id == node_id
            and self._clock.now() - final.updated_at < self._options.nodes.timeout_s
        )

    async def remove_node(self, node_id: str) -> TickReport:
        """Deregister a node (decommissioned): its work is requeued as if it were lost, and it
        is forgotten until it heartbeats again."""
        async with self._lock:
            self.require_active()
            node = self._nodes.get(node_id)
            if node is None:
                raise NotFound(f"node {node_id!r} is not registered", reason="NODE_NOT_FOUND")
            report = TickReport()
            await self._node_lost(node, report, reason=f"node {node_id} was removed")
            self._nodes.forget(node_id)
            return report

    async def acknowledge(self, task_id: str, dispatch_id: str, node_id: str) -> bool:
        """A node confirmed it started ``dispatch_id``. False for a stale or unknown
        dispatch (that run is told to stop: the task was retried elsewhere or ended)."""
        async with self._lock:
            self.require_active()
            return await self._acknowledge(task_id, dispatch_id, node_id)

    async def node_reports(
        self, reports: Sequence[StartReport | TaskResult]
    ) -> list[bool | TaskRecord | None]:
        """Several acknowledgements (``StartReport``) and results at once, in order, under
        one hold of the core (what each would return alone). Used by the service to apply
        a burst of node statuses without waiting for the core once per status."""
        async with self._lock:
            self.require_active()
            out: list[bool | TaskRecord | None] = []
            for report in reports:
                if isinstance(report, StartReport):
                    out.append(
                        await self._acknowledge(report.task_id, report.dispatch_id, report.node_id)
                    )
                else:
                    out.append(await self._task_finished(report))
            return out

    async def _acknowledge(self, task_id: str, dispatch_id: str, node_id: str) -> bool:
        rec = self._tasks.get(task_id)
        if rec is not None and rec.dispatch_id == dispatch_id and rec.node_id == node_id:
            if rec.state is TaskState.RUNNING:
                return True  # duplicate acknowledgement
            if rec.state is TaskState.DISPATCHED:
                await self._started(rec)
                return True
        log.warning(
            "stale start acknowledgement for %s (%s) from %s; stopping that run",
            task_id,
            dispatch_id,
            node_id,
        )
        await self._send_stop(
            StopOrder(node_id, task_id, dispatch_id, "superseded or ended dispatch")
        )
        return False

    async def _started(self, rec: TaskRecord) -> None:
        self._tracker.resolve(rec.task_id)
        now = self._clock.now()
        running = rec.evolve(
            state=TaskState.RUNNING, started_at=now, ack_failures=0, tried_nodes=(), updated_at=now
        )
        await self._store(running)
        # The node stops the tasks an order preempts before it starts the order, and reports
        # their ends first: victims still waiting for that report have stopped.
        for victim_id in rec.preempts:
            victim = self._tasks.get(victim_id)
            if (
                victim is not None
                and victim.state is TaskState.STOPPING
                and victim.node_id == rec.node_id
            ):
                await self._requeue_stopped(victim)
        await self._notify(running, TransitionKind.RUNNING, "")

    async def task_finished(self, result: TaskResult) -> TaskRecord | None:
        """A node reports that a run ended; the task's new record, or None if the report was
        stale (an older dispatch) and changed nothing."""
        async with self._lock:
            self.require_active()
            return await self._task_finished(result)

    async def _task_finished(self, result: TaskResult) -> TaskRecord | None:
        rec = self._tasks.get(result.task_id)
        if rec is None or rec.dispatch_id != result.dispatch_id:
            log.info(
                "ignoring result of %s (%s): not the task's current dispatch",
                result.task_id,
                result.dispatch_id,
            )
            return None
        now = self._clock.now()
        outcome = result.outcome
        if rec.state is TaskState.QUEUED:
            # Requeued (node lost, or stop confirmed late) but the old run had in fact
            # finished: do not run it again.
            if outcome is not TaskOutcome.COMPLETED:
                return None
            self._queue.remove(rec.task_id)
            final = rec.evolve(
                state=TaskState.COMPLETED, updated_at=now, reason="", exit_code=result.exit_code
            )
            await self._remove(final)
            return final
        self._tracker.resolve(rec.task_id)
        if rec.state is TaskState.STOPPING:
            self._stopping.pop(rec.task_id, None)
            if outcome is TaskOutcome.COMPLETED:
                final = rec.evolve(
                    state=TaskState.COMPLETED,
                    updated_at=now,
                    reason="",
                    exit_code=result.exit_code,
                )
                await self._remove(final)
                return final
            return await self._requeue_stopped(rec)
        # DISPATCHED (result before the ack: it did start) or RUNNING
        if outcome is TaskOutcome.LOST:
            report = TickReport()
            why = result.reason or "its run was lost"
            await self._lost_run(rec, f"node {result.node_id} lost the run: {why}", report)
            return self._tasks.get(rec.task_id) or self._recent.get(rec.task_id)
        self._release(rec)
        if outcome is TaskOutcome.COMPLETED:
            final = rec.evolve(
                state=TaskState.COMPLETED, updated_at=now, reason="", exit_code=result.exit_code
            )
            await self._remove(final)
            return final
        why = result.reason or (
            "stopped by its node" if outcome is TaskOutcome.STOPPED else "failed"
        )
        final = rec.evolve(
            state=TaskState.FAILED, updated_at=now, reason=why, exit_code=result.exit_code
        )
        await self._remove(final)
        self._failed_total += 1
        return final

    # ================================================================= time
    async def tick(self) -> TickReport:
        """Act on what has fallen due: lost nodes, missing acknowledgements, unconfirmed
        stops. Cheap when nothing is due."""
        async with self._lock:
            self.require_active()
            report = TickReport()
            mono = self._clock.monotonic()
            for node in self._nodes.expire(mono):
                await self._node_lost(node, report)
            self._nodes.forget_stale(mono)
            for exp in self._tracker.expired(mono):
                rec = self._tasks.get(exp.task_id)
                if rec is None or rec.dispatch_id != exp.dispatch_id:
                    continue
                if exp.kind is ExpectationKind.START and rec.state is TaskState.DISPATCHED:
                    await self._ack_missed(rec, report)
                elif exp.kind is ExpectationKind.STOP and rec.state is TaskState.STOPPING:
                    self._expect(rec, ExpectationKind.STOP, mono + self._ack_timeout)
                    await self._send_stop(self._stop_order(rec, rec.reason))
                    report.stops_resent.append(rec.task_id)
            # A periodic full look retries what waits on things that change without an
            # event: the preemption budget refilling, cooldowns ending, infeasible tasks
            # timing out.
            if mono - self._last_rescan >= self._options.nodes.heartbeat_interval_s:
                self._last_rescan = mono
                self._room_epoch += 1
                if len(self._queue):
                    self._dirty = True
            return report

    def next_deadline(self) -> float | None:
        """The monotonic time at which ``tick`` next has something to do."""
        if not self._active:
            return None
        due = [
            t
            for t in (
                self._tracker.next_deadline(),
                self._nodes.next_expiry(),
                self._last_rescan + self._options.nodes.heartbeat_interval_s
                if len(self._queue)
                else None,
            )
            if t is not None
        ]
        return min(due) if due else None

    @property
    def _ack_timeout(self) -> float:
        return self._options.dispatch.ack_timeout_s

    async def _node_lost(self, node: Node, report: TickReport, reason: str = "") -> None:
        if not reason:
            log.warning(
                "node %s missed %d heartbeats; unreachable",
                node.node_id,
                self._options.nodes.missed_heartbeats,
            )
            reason = f"node {node.node_id} became unreachable"
        report.lost_nodes.append(node.node_id)
        lost = sorted((self._tasks[t] for t in node.tasks if t in self._tasks), key=lambda r: r.seq)
        lost += sorted(
            (self._tasks[t] for t, n in self._stopping.items() if n == node.node_id),
            key=lambda r: r.seq,
        )
        for rec in lost:
            self._tracker.resolve(rec.task_id)
            if rec.state is TaskState.STOPPING:
                self._stopping.pop(rec.task_id, None)
                await self._requeue_stopped(rec)
                report.requeued.append(rec.task_id)
                continue
            await self._lost_run(rec, reason, report)

    async def _lost_run(self, rec: TaskRecord, reason: str, report: TickReport) -> None:
        """A dispatched or running task's run is gone with (or on) its node: requeue it at
        its rank, or fail it once it has lost too many runs (it may be what kills them)."""
        self._tracker.resolve(rec.task_id)
        self._release(rec)
        losses = rec.node_losses + 1
        if losses > self._options.dispatch.max_node_losses:
            await self._fail(rec, f"{reason}; lost with its node {losses} times, giving up")
            report.failed.append(rec.task_id)
            return
        was_running = rec.state is TaskState.RUNNING
        requeued = await self._requeue(rec, reason, node_losses=losses)
        report.requeued.append(rec.task_id)
        if was_running:
            await self._notify(requeued, TransitionKind.REQUEUED, reason)

    async def _ack_missed(self, rec: TaskRecord, report: TickReport) -> None:
        assert rec.node_id is not None
        node_id = rec.node_id
        self._release(rec)
        failures = rec.ack_failures + 1
        tried = (*rec.tried_nodes, node_id)
        timeout = self._ack_timeout
        # Belt and braces: the node must not start after not_after anyway.
        await self._send_stop(self._stop_order(rec, "start not acknowledged in time"))
        if failures >= self._options.dispatch.max_attempts:
            nodes = ", ".join(tried)
            await self._fail(
                rec,
                f"no start acknowledgement within {timeout:g}s after {failures} dispatch attempt(s) "
                f"(nodes: {nodes})",
            )
            report.failed.append(rec.task_id)
            return
        log.info("node %s did not acknowledge %s; retrying elsewhere", node_id, rec.dispatch_id)
        await self._requeue(
            rec,
            f"node {node_id} did not acknowledge the start within {timeout:g}s",
            ack_failures=failures,
            tried_nodes=tried,
        )
        report.requeued.append(rec.task_id)

    # ================================================================= the cycle
    async def schedule(self, max_decisions: int = 256) -> CycleReport:
        """Place queued tasks, in queue order, until nothing more can go (see the module
        docstring). Policy or dispatcher trouble ends the cycle early (``stalled``); journal
        trouble deactivates the core and raises."""
        async with self._lock:
            self.require_active()
            self._dirty = False
            self._last_cycle = self._clock.monotonic()
            report = CycleReport()
            held: list[TaskRecord] = []
            try:
                await self._cycle(max_decisions, report, held)
            finally:
                # Back in line without asking for another cycle: they were just looked at.
                dirty = self._dirty
                for rec in held:
                    if rec.task_id in self._tasks and rec.task_id not in self._queue:
                        self._enqueue(rec)
                self._dirty = dirty
            if report.decisions >= max_decisions or (report.out_of_time and report.decisions):
                self._dirty = True  # more may fit; let the driver come back
            return report

    async def _cycle(self, max_decisions: int, report: CycleReport, held: list[TaskRecord]) -> None:
        queue = self._queue
        nodes = self._nodes
        placer = self._placer
        planner = self._planner
        lookahead = self._options.placement.lookahead
        accepting = nodes.accepting_ids()
        reserved: set[str] = set()
        now = self._clock.now()
        mono = self._clock.monotonic()
        # Wall time, not the clock port: this bounds how long the lock is held, and how long
        # the event loop goes without running anything else (bus I/O, liveness updates).
        clock = time.perf_counter
        began = clock()
        yield_at = began + self._options.cycle_budget_s
        # Events waiting for the core get it after a short slice rather than the whole
        # budget; not after every decision, or the tasks at the head that cannot be placed
        # would be re-examined (preemption search included) for every single placement.
        share_at = began + min(_SHARE_AFTER_S, self._options.cycle_budget_s)
        breathe_at = began + _BREATHE_S
        while report.decisions < max_decisions and report.waiting < lookahead:
            if accepting and reserved >= accepting:
                break
            if report.decisions and self._lock.waiting and clock() >= share_at:
                report.out_of_time = True  # events waiting for the core go first
                break
            if clock() >= yield_at:
                report.out_of_time = True  # the next cycle (or retry) goes on from the head
                break
            if clock() >= breathe_at:
                await asyncio.sleep(0)
                breathe_at = clock() + _BREATHE_S
            task_id = queue.pop()
            if task_id is None:
                break
            started = time.perf_counter()
            rec = self._tasks[task_id]
            spec = rec.spec
            stamp = self._room_stamp()
            if self._blocked.get(task_id) == stamp:
                # Unplaceable when last looked at, and no room has appeared since: it still
                # holds its nodes back, without searching again.
                reserved.update(n.node_id for n in nodes.eligible(spec))
                held.append(rec)
                report.waiting += 1
                continue
            matching = nodes.matching(spec)
            node: Node | None
            if rec.tried_nodes:
                # Prefer nodes that have not failed to acknowledge this task.
                node = placer.choose(spec, matching, reserved.union(rec.tried_nodes))
                if node is None:
                    node = placer.choose(spec, matching, reserved)
            else:
                node = placer.choose(spec, matching, reserved)
            plan: PreemptionPlan | None = None
            if node is None:
                eligible = nodes.eligible(spec)
                if not eligible:
                    since = self._infeasible_since.setdefault(task_id, mono)
                    if mono - since >= self._options.infeasible_timeout_s:
                        why = nodes.why_never(spec) or "no reachable node accepts work"
                        await self._fail(rec, f"could not be placed for {mono - since:.0f}s: {why}")
                        report.failed.append(task_id)
                        continue
                    held.append(rec)
                    report.waiting += 1
                    continue
                self._infeasible_since.pop(task_id, None)
                free_of_reserve = [n for n in eligible if n.node_id not in reserved]
                if free_of_reserve and planner.may_preempt(spec.priority):
                    plan = planner.plan(
                        spec,
                        free_of_reserve,
                        self._victims_on,
                        now=now,
                        budget=self._budget.remaining(now),
                    )
                if plan is None:
                    reserved.update(n.node_id for n in eligible)
                    self._blocked[task_id] = stamp
                    held.append(rec)
                    report.waiting += 1
                    continue
                node = nodes.get(plan.node_id)
                assert node is not None
            self._infeasible_since.pop(task_id, None)
            self._blocked.pop(task_id, None)
            try:
                decision = await self._allocate(rec, node, plan)
            except (Unavailable, DeadlineExceeded) as exc:
                held.append(rec)
                report.stalled = f"policy: {exc.message}"
                log.warning("no allocate decision for %s: %s", task_id, exc.message)
                return
            if not decision.allowed:
                why = decision.reason or "no reason given"
                await self._fail(rec, f"policy denied allocate on node {node.node_id}: {why}")
                report.failed.append(task_id)
                self._meter.record(mono)
                self._decided(started)
                continue
            placement, sent = await self._dispatch(rec, node, plan, now, mono)
            report.placements.append(placement)
            self._decided(started)
            if not sent:
                report.stalled = "dispatcher: the order could not be sent"
                return

    def _decided(self, started: float) -> None:
        if self._on_decision is not None:
            self._on_decision(time.perf_counter() - started)

    def _victims_on(self, node: Node) -> Iterable[Victim]:
        victims = self._victims
        return [v for t in node.tasks if (v := victims.get(t)) is not None]

    async def _allocate(
        self, rec: TaskRecord, node: Node, plan: PreemptionPlan | None
    ) -> AllocationDecision:
        spec = rec.spec
        request = AllocationRequest(
            agent_id=spec.agent_id,
            task_id=spec.task_id,
            node_id=node.node_id,
            priority=spec.priority,
            tier=spec.tier,
            resources=spec.resources,
            node_tiers=node.tiers,
            node_labels=node.labels,
            preempts=plan.victim_ids if plan is not None else (),
        )
        return await self._call(self._policy.allocate(request), "policy allocate")

    async def _dispatch(
        self,
        rec: TaskRecord,
        node: Node,
        plan: PreemptionPlan | None,
        now: float,
        mono: float,
    ) -> tuple[Placement, bool]:
        """Journal the preemption (victims first) and the dispatch, then send the orders.
        The second value is False if the dispatch order could not be sent."""
        victims: list[TaskRecord] = []
        if plan is not None:
            why = f"preempted by {rec.priority.label} task {rec.task_id}"
            for chosen in plan.victims:
                vrec = self._tasks[chosen.task_id]
                stopping = vrec.evolve(
                    state=TaskState.STOPPING,
                    preemptions=vrec.preemptions + 1,
                    last_preempted_at=now,
                    reason=why,
                    updated_at=now,
                )
                await self._store(stopping)
                self._release(vrec)
                self._stopping[vrec.task_id] = node.node_id
                self._expect(stopping, ExpectationKind.STOP, mono + self._ack_timeout)
                victims.append(stopping)
            self._budget.record(now, len(victims))
            self._preemptions_total += len(victims)
        attempt = rec.attempt + 1
        dispatched = rec.evolve(
            state=TaskState.DISPATCHED,
            attempt=attempt,
            node_id=node.node_id,
            dispatch_id=f"{rec.task_id}-{attempt}",
            dispatched_at=now,
            not_after=now + self._ack_timeout,
            started_at=None,
            preempts=tuple(v.task_id for v in victims),
            reason="",
            updated_at=now,
        )
        await self._store(dispatched)
        self._nodes.charge(node.node_id, rec.task_id, rec.spec.resources.vector, rec.priority)
        self._expect(dispatched, ExpectationKind.START, mono + self._ack_timeout)
        self._meter.record(mono)
        for victim in victims:
            await self._send_stop(self._stop_order(victim, victim.reason))
        sent = await self._send_dispatch(self._order(dispatched))
        for victim in victims:
            await self._notify(victim, TransitionKind.SUSPENDED, victim.reason)
        assert dispatched.dispatch_id is not None
        placement = Placement(
            task_id=rec.task_id,
            node_id=node.node_id,
            dispatch_id=dispatched.dispatch_id,
            preempted=dispatched.preempts,
        )
        return placement, sent

    # ================================================================= state changes
    def _enqueue(self, rec: TaskRecord) -> None:
        self._queue.push(rec.task_id, rec.priority, enqueued_at=rec.enqueued_at, seq=rec.seq)
        self._dirty = True

    def _expect(self, rec: TaskRecord, kind: ExpectationKind, deadline: float) -> None:
        assert rec.dispatch_id is not None
        assert rec.node_id is not None
        self._tracker.expect(Expectation(kind, rec.task_id, rec.dispatch_id, rec.node_id, deadline))

    def _release(self, rec: TaskRecord) -> None:
        if self._nodes.release(rec.node_id, rec.task_id):
            self._dirty = True
            self._room_epoch += 1

    def _room_stamp(self) -> tuple[int, int, int]:
        # Time is part of it: preemption budgets refill and cooldowns end without an event.
        period = int(self._clock.monotonic() // self._options.nodes.heartbeat_interval_s)
        return (self._room_epoch, self._nodes.version, period)

    async def _requeue(self, rec: TaskRecord, reason: str, **changes: object) -> TaskRecord:
        """Back to the queue, keeping its place in line (seq and rank)."""
        queued = rec.evolve(
            state=TaskState.QUEUED,
            node_id=None,
            started_at=None,
            not_after=None,
            preempts=(),
            reason=reason,
            updated_at=self._clock.now(),
            **changes,
        )
        await self._store(queued)
        self._enqueue(queued)
        return queued

    async def _requeue_stopped(self, rec: TaskRecord) -> TaskRecord:
        self._tracker.resolve(rec.task_id)
        self._stopping.pop(rec.task_id, None)
        return await self._requeue(rec, rec.reason)

    async def _fail(self, rec: TaskRecord, reason: str) -> None:
        """Failed for good: journal it, tell lifecycle, then drop it (a restart in between
        re-tells lifecycle and drops it)."""
        log.info("task %s failed: %s", rec.task_id, reason)
        self._release(rec)
        self._tracker.resolve(rec.task_id)
        failed = rec.evolve(state=TaskState.FAILED, reason=reason, updated_at=self._clock.now())
        await self._store(failed)
        await self._notify(failed, TransitionKind.FAILED, reason)
        await self._remove(failed)
        self._failed_total += 1

    async def _store(self, rec: TaskRecord) -> None:
        """Journal ``rec`` and only then make it the task's state."""
        self._position = await self._journal_call(
            self._journal.put(rec, expected_position=self._position), "journal put"
        )
        self._apply(rec)

    async def _remove(self, final: TaskRecord) -> None:
        """Drop a finished task from the journal and from memory."""
        task_id = final.task_id
        self._position = await self._journal_call(
            self._journal.remove(task_id, expected_position=self._position), "journal remove"
        )
        old = self._tasks.pop(task_id, None)
        if old is not None:
            self._by_state[old.state] -= 1
            if old.state is TaskState.QUEUED:
                self._queued[old.priority] -= 1
                self._queue.remove(task_id)
        self._stopping.pop(task_id, None)
        self._infeasible_since.pop(task_id, None)
        self._victims.pop(task_id, None)
        self._blocked.pop(task_id, None)
        self._room_epoch += 1
        self._tracker.resolve(task_id)
        self._nodes.release(final.node_id, task_id)
        self._recent[task_id] = final
        while len(self._recent) > _RECENT:
            self._recent.popitem(last=False)
        if self._listener is not None:
            self._listener(final)

    def _apply(self, rec: TaskRecord, *, notify_listener: bool = True) -> None:
        old = self._tasks.get(rec.task_id)
        if old is not None:
            self._by_state[old.state] -= 1
            if old.state is TaskState.QUEUED:
                self._queued[old.priority] -= 1
        self._by_state[rec.state] += 1
        if rec.state is TaskState.QUEUED:
            self._queued[rec.priority] += 1
        self._tasks[rec.task_id] = rec
        if rec.state is TaskState.RUNNING:
            self._room_epoch += 1  # a new possible preemption victim
            self._victims[rec.task_id] = Victim(
                task_id=rec.task_id,
                priority=rec.spec.priority,
                request=rec.spec.resources.vector,
                started_at=rec.started_at if rec.started_at is not None else rec.updated_at,
                last_preempted_at=rec.last_preempted_at,
                preemptible=rec.spec.preemptible,
            )
        else:
            self._victims.pop(rec.task_id, None)
        if notify_listener and self._listener is not None:
            self._listener(rec)

    # ================================================================= ports
    async def _call(self, awaitable: Awaitable[_T], what: str) -> _T:
        """Await a port call under the port deadline; a timeout becomes DeadlineExceeded."""
        timeout = self._options.port_timeout_s
        try:
            async with asyncio.timeout(timeout):
                return await awaitable
        except TimeoutError:
            raise DeadlineExceeded(
                f"{what} did not answer within {timeout:g}s", reason="PORT_TIMEOUT"
            ) from None

    async def _journal_call(self, awaitable: Awaitable[int], what: str) -> int:
        try:
            return await self._call(awaitable, what)
        except BaseException as exc:
            # The write may or may not have happened: in-memory state can no longer be
            # trusted to match the journal. Re-activation re-reads it.
            log.error("%s failed (%r); deactivating until the journal is re-read", what, exc)
            self._active = False
            raise

    async def _send_dispatch(self, order: DispatchOrder) -> bool:
        return await self._best_effort(
            lambda: self._dispatcher.dispatch(order), f"dispatch {order.dispatch_id}"
        )

    async def _send_stop(self, order: StopOrder) -> bool:
        return await self._best_effort(
            lambda: self._dispatcher.stop(order), f"stop {order.task_id} on {order.node_id}"
        )

    async def _notify(self, rec: TaskRecord, kind: TransitionKind, reason: str) -> bool:
        transition = AgentTransition(
            agent_id=rec.spec.agent_id,
            task_id=rec.task_id,
            kind=kind,
            at=self._clock.now(),
            node_id=rec.node_id,
            reason=reason,
            dispatch_id=rec.dispatch_id,
            attempt=rec.attempt,
        )
        return await self._best_effort(
            lambda: self._lifecycle.notify(transition), f"lifecycle {kind.value} {rec.task_id}"
        )

    async def _best_effort(self, call: Callable[[], Awaitable[None]], what: str) -> bool:
        """Orders and notifications after the journal write: a failure is logged, not
        raised; deadlines re-send orders, and lifecycle also learns from node results."""
        try:
            await self._call(call(), what)
        except SymbiError as exc:
            log.warning("%s failed: %s", what, exc.message)
            return False
        return True

    def _order(self, rec: TaskRecord) -> DispatchOrder:
        assert rec.dispatch_id is not None
        assert rec.node_id is not None
        assert rec.not_after is not None
        spec = rec.spec
        return DispatchOrder(
            dispatch_id=rec.dispatch_id,
            task_id=spec.task_id,
            agent_id=spec.agent_id,
            node_id=rec.node_id,
            attempt=rec.attempt,
            priority=spec.priority,
            tier=spec.tier,
            resources=spec.resources,
            not_after=rec.not_after,
            preempts=rec.preempts,
            metadata=spec.metadata,
            payload=spec.payload,
        )

    @staticmethod
    def _stop_order(rec: TaskRecord, reason: str) -> StopOrder:
        assert rec.node_id is not None
        return StopOrder(rec.node_id, rec.task_id, rec.dispatch_id, reason)

    # ================================================================= queries
    def task(self, task_id: str) -> TaskRecord:
        """The current (or, for a recently finished task, the final) record."""
        rec = self._tasks.get(task_id) or self._recent.get(task_id)
        if rec is None:
            raise NotFound(f"task {task_id!r} is not known", reason="TASK_NOT_FOUND")
        return rec

    def tasks(self, state: TaskState | None = None) -> list[TaskRecord]:
        """Live tasks (optionally of one state), in submission order."""
        recs = (r for r in self._tasks.values() if state is None or r.state is state)
        return sorted(recs, key=lambda r: r.seq)

    def queued(self, limit: int = 100) -> list[TaskRecord]:
        """The first ``limit`` queued tasks in the order they will be considered."""
        out: list[TaskRecord] = []
        for task_id in self._queue:
            if len(out) >= limit:
                break
            out.append(self._tasks[task_id])
        return out

    def nodes(self) -> list[NodeView]:
        """Every known node, in registration order."""
        return self._nodes.views()

    def status(self) -> SchedulerStatus:
        """Queue depths, nodes, utilisation and decision rate."""
        live = [n for n in self._nodes if n.reachable and n.confirmed]
        cap = [0, 0, 0, 0]
        alloc = [0, 0, 0, 0]
        for n in live:
            for i, v in enumerate(n.capacity.vector):
                cap[i] += v
            for i, v in enumerate(n.allocated):
                alloc[i] += v
        mono = self._clock.monotonic()
        now = self._clock.now()
        return SchedulerStatus(
            active=self._active,
            queued={p: self._queued[p] for p in Priority},
            dispatched=self._by_state[TaskState.DISPATCHED],
            running=self._by_state[TaskState.RUNNING],
            stopping=self._by_state[TaskState.STOPPING],
            nodes_total=len(self._nodes),
            nodes_reachable=sum(1 for n in self._nodes if n.reachable),
            nodes_accepting=sum(1 for n in self._nodes if n.accepting),
            capacity=(cap[0], cap[1], cap[2], cap[3]),
            allocated=(alloc[0], alloc[1], alloc[2], alloc[3]),
            utilisation={
                name: (alloc[i] / cap[i] if cap[i] else 0.0) for i, name in enumerate(DIMENSIONS)
            },
            decisions_per_s=self._meter.rate(mono),
            decisions_total=self._meter.total,
            preemptions_total=self._preemptions_total,
            preemptions_in_window=self._budget.used(now),
            failed_total=self._failed_total,
            journal_position=self._position,
        )
