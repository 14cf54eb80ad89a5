"""The node's side of contract C3: task orders in, statuses and heartbeats out.

:class:`TaskDispatcher` handles the two consumers of the node:

- **assignments** (``symbi.task.<node>``): only a service may order work. The dispatch id is
  journaled durably before the order is acknowledged — so a dispatch id starts at most once,
  even across a crash — and an order past its ``not_after`` is never started (and gets no
  status: the scheduler has already moved on). A malformed order, an unknown image, an
  unavailable tier, a full node: ``REFUSED`` with the reason, nothing left behind. Otherwise
  the tasks it ``preempts`` are stopped and their ``STOPPED`` reported first, the container is
  started, and ``STARTED`` (carrying the dispatch id) is the acknowledgement; the final status
  follows with its exit code (OOM and timeout distinct).
- **stops** (``symbi.task.control.<node>``): stop a run with its grace period; its final
  status is ``STOPPED`` with the stop's reason (``preempted`` / ``cancelled``). A stop for a
  dispatch that has not arrived yet is remembered and applied when it does.

At start-up :meth:`TaskDispatcher.recover` reports what an earlier run of the process left:
containers found by the runner's reconciliation and dispatches the journal shows as accepted
but never finished are ``LOST`` (the scheduler retries them), and statuses journaled but not
published are published. :class:`Heartbeats` publishes the node's capacity every interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge

from symbi.bus.v1 import events_pb2
from symbi_common.auditing import AuditRecorder
from symbi_common.bus import Received, SecureBus
from symbi_common.errors import PermissionDenied, SymbiError, Unavailable
from symbi_common.jetstream.spec import Subjects
from symbi_sandbox import convert
from symbi_sandbox.events import PLATFORM
from symbi_sandbox.journal import DispatchJournal, DispatchRecord, Recovery
from symbi_sandbox.nursery import Nursery
from symbi_sandbox.reporting import StatusOutbox
from symbi_sandbox.runner import Execution, LostTask, SandboxRunner
from symbi_sandbox.task import TaskSpec

__all__ = ["Heartbeats", "TaskDispatcher"]

_log = logging.getLogger(__name__)

State = events_pb2.TaskStatus.State

TASKS = Counter("symbi_sandbox_tasks_total", "Dispatched tasks by reported state.", ["state"])
RUNNING = Gauge("symbi_sandbox_running_tasks", "Dispatched tasks running on this node.")
HEARTBEAT_FAILURES = Counter("symbi_sandbox_heartbeat_failures_total", "Heartbeats not published.")


@dataclass
class _Run:
    """One accepted dispatch on its way through the node."""

    record: DispatchRecord
    spec: TaskSpec
    execution: Execution | None = None
    stop: tuple[str, float] | None = None  # (reason, grace) asked by the scheduler
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # final status queued


class TaskDispatcher:
    """Assignments and stops from the scheduler (see the module docstring)."""

    def __init__(
        self,
        runner: SandboxRunner,
        journal: DispatchJournal,
        outbox: StatusOutbox,
        nursery: Nursery,
        recorder: AuditRecorder,
        *,
        node_id: str,
        start_concurrency: int = 4,
        preempt_grace_s: float = 5.0,
        stop_grace_s: float = 10.0,
        max_early_stops: int = 10_000,
    ) -> None:
        self._runner = runner
        self._journal = journal
        self._outbox = outbox
        self._nursery = nursery
        self._recorder = recorder
        self._node_id = node_id
        self._starting = asyncio.Semaphore(start_concurrency)
        self._preempt_grace_s = preempt_grace_s
        self._stop_grace_s = stop_grace_s
        self._runs: dict[str, _Run] = {}
        self._by_task: dict[str, str] = {}  # task id → dispatch id of its run here
        self._early_stops: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._max_early_stops = max_early_stops

    # ------------------------------------------------------------------ queries

    def running_task_ids(self) -> tuple[str, ...]:
        """The scheduler's tasks on this node, starting or running (heartbeats list these)."""
        return tuple(run.spec.task_id for run in self._runs.values() if not run.ended.is_set())

    async def idle(self) -> None:
        """Returns once every accepted dispatch has its final status queued."""
        while self._runs:
            await next(iter(self._runs.values())).ended.wait()

    def dispatch_of(self, task_id: str) -> str | None:
        return self._by_task.get(task_id)

    def operator_stop(self, task_id: str, grace_s: float) -> str:
        """An operator kills a task (gRPC Kill): a dispatched one is reported cancelled."""
        dispatch_id = self._by_task.get(task_id)
        run = self._runs.get(dispatch_id) if dispatch_id else None
        if run is None:
            return "killed on request"
        if run.stop is None:
            run.stop = ("cancelled", grace_s)
        return run.stop[0]

    # ------------------------------------------------------------------ recovery

    async def recover(self, recovery: Recovery, lost: tuple[LostTask, ...]) -> None:
        """Reports what an earlier run of the process left (call before consuming)."""
        self._outbox.restore(recovery.unsent)
        unfinished = {r.dispatch_id: r for r in recovery.unfinished}
        for task in lost:
            record = unfinished.pop(task.dispatch_id, None) if task.dispatch_id else None
            details = {
                "task_id": task.task_id,
                "dispatch_id": task.dispatch_id,
                "container": task.container_id[:12],
                "container_state": task.container_state,
                "instance": task.instance_id,
            }
            await self._audit("sandbox.task.lost", task.agent_id, details)
            if not task.dispatch_id:
                continue  # a direct (gRPC) run: nobody on the bus waits for it
            reason = (
                f"the node's sandbox service restarted while the task ran; its container "
                f"{task.container_id[:12]} ({task.container_state}) was removed"
            )
            if record is None and self._journal.known(task.dispatch_id):
                continue  # its final status was reported before the process died
            if record is None:
                record = DispatchRecord(
                    task.dispatch_id, task.task_id, task.agent_id, task.attempt, 0, _now_ms()
                )
            await self._report(record, State.STATE_LOST, reason, final=True)
        for record in unfinished.values():
            await self._audit(
                "sandbox.task.lost",
                record.agent_id,
                {"task_id": record.task_id, "dispatch_id": record.dispatch_id, "container": ""},
            )
            await self._report(
                record,
                State.STATE_LOST,
                "the node's sandbox service restarted before the task's run finished",
                final=True,
            )

    # ------------------------------------------------------------------ assignments

    async def on_assignment(self, received: Received) -> None:
        """Handler of the node's task queue (acked when it returns)."""
        _require_service(received, "task assignments")
        order = received.parse(events_pb2.TaskAssignment)
        dispatch_id = order.dispatch_id or f"m-{received.msg_id}"
        if self._journal.known(dispatch_id):
            _log.info(
                "dispatch %s of task %s seen before; not started again", dispatch_id, order.task_id
            )
            return
        now = _now_ms()
        record = DispatchRecord(
            dispatch_id=dispatch_id,
            task_id=order.task_id,
            agent_id=order.agent_id,
            attempt=order.attempt or 1,
            not_after_ms=order.not_after_ms,
            accepted_at_ms=now,
        )
        await self._journal.accept(record)
        if order.not_after_ms and now > order.not_after_ms:
            await self._expire(record, now)
            return
        if order.node_id and order.node_id != self._node_id:
            await self._refuse(
                record,
                f"WRONG_NODE: the order is for node {order.node_id}, this is {self._node_id}",
            )
            return
        try:
            order.dispatch_id = dispatch_id
            spec = convert.task_from_assignment(order)
        except SymbiError as exc:
            await self._refuse(record, f"{exc.reason}: {exc.message}")
            return
        run = _Run(record, spec)
        run.stop = self._early_stops.pop(dispatch_id, None)
        self._runs[dispatch_id] = run
        self._nursery.start_soon(
            self._start(run, tuple(order.preempts)), name=f"start-{dispatch_id}"
        )

    async def _start(self, run: _Run, preempts: tuple[str, ...]) -> None:
        record = run.record
        started = False
        try:
            async with self._starting:
                for victim in preempts:
                    await self._preempt(victim)
                if run.stop is not None:
                    await self._report(record, State.STATE_STOPPED, run.stop[0], final=True)
                    return
                if record.not_after_ms and _now_ms() > record.not_after_ms:
                    await self._expire(record, _now_ms())
                    return
                try:
                    execution = await self._runner.start(run.spec)
                except SymbiError as exc:
                    await self._not_started(record, exc)
                    return
                except Exception as exc:
                    _log.exception("starting task %s failed", record.task_id)
                    await self._not_started(record, Unavailable(f"start failed: {exc!r}"))
                    return
                run.execution = execution
                started = True
                self._by_task[run.spec.task_id] = record.dispatch_id
                RUNNING.inc()
                await self._report(
                    record, State.STATE_STARTED, f"running on {execution.tier.label}"
                )
                await self._audit(
                    "sandbox.task.started",
                    record.agent_id,
                    {
                        "task_id": record.task_id,
                        "dispatch_id": record.dispatch_id,
                        "tier": execution.tier.label,
                        "tier_reason": execution.tier_reason,
                        "image": run.spec.image,
                        "network": run.spec.network,
                        "container": (execution.container_id or "")[:12],
                    },
                )
                late = _stop_of(run)  # a stop may have arrived while the container started
                if late is not None:
                    self._runner.request_stop(run.spec.task_id, grace_s=late[1], reason=late[0])
        except BaseException:
            run.ended.set()
            raise
        finally:
            if not started:
                run.ended.set()
                self._runs.pop(record.dispatch_id, None)
        self._nursery.start_soon(self._watch(run), name=f"watch-{record.dispatch_id}")

    async def _not_started(self, record: DispatchRecord, exc: SymbiError) -> None:
        """A start that failed: refused (the task cannot run here) or lost (try elsewhere)."""
        reason = f"{exc.reason}: {exc.message}"
        if not exc.retryable:
            await self._refuse(record, reason)
            return
        # The node is full, shutting down or lost dockerd: nothing is wrong with the task.
        _log.warning("task %s not started here: %s", record.task_id, reason)
        await self._report(record, State.STATE_LOST, reason, final=True)
        TASKS.labels("STATE_LOST").inc()
        await self._audit(
            "sandbox.task.not_started",
            record.agent_id,
            {"task_id": record.task_id, "dispatch_id": record.dispatch_id, "reason": reason},
        )

    async def _watch(self, run: _Run) -> None:
        assert run.execution is not None
        try:
            result = await run.execution.wait()
            RUNNING.dec()
            stop_reason = run.stop[0] if run.stop is not None else None
            status = convert.final_status(
                result,
                node_id=self._node_id,
                dispatch_id=run.record.dispatch_id,
                stop_reason=stop_reason,
            )
            await self._outbox.add(status, final=True)
            TASKS.labels(State.Name(status.state)).inc()
            await self._audit(
                "sandbox.task.finished",
                run.record.agent_id,
                {
                    "task_id": result.task_id,
                    "dispatch_id": run.record.dispatch_id,
                    "state": State.Name(status.state),
                    "exit_code": status.exit_code,
                    "reason": status.reason,
                    "tier": result.tier.label if result.tier else "",
                    "log_bytes": result.log_bytes,
                },
            )
        finally:
            run.ended.set()
            self._runs.pop(run.record.dispatch_id, None)
            if self._by_task.get(run.spec.task_id) == run.record.dispatch_id:
                del self._by_task[run.spec.task_id]

    async def _preempt(self, task_id: str) -> None:
        dispatch_id = self._by_task.get(task_id)
        run = self._runs.get(dispatch_id) if dispatch_id else None
        if run is None:
            _log.info("preempted task %s does not run on this node", task_id)
            return
        if run.stop is None:
            run.stop = ("preempted", self._preempt_grace_s)
        self._runner.request_stop(task_id, grace_s=run.stop[1], reason=run.stop[0])
        # Its STOPPED goes out before this order's STARTED (one ordered outbox).
        try:
            await asyncio.wait_for(run.ended.wait(), run.stop[1] + 60.0)
        except TimeoutError:
            _log.error("preempted task %s did not end in time; starting anyway", task_id)

    async def _expire(self, record: DispatchRecord, now_ms: int) -> None:
        await self._journal.drop(record.dispatch_id, "expired")
        _log.warning(
            "dispatch %s of task %s arrived %d ms after its not_after; not started",
            record.dispatch_id,
            record.task_id,
            now_ms - record.not_after_ms,
        )
        await self._audit(
            "sandbox.dispatch.expired",
            record.agent_id,
            {
                "task_id": record.task_id,
                "dispatch_id": record.dispatch_id,
                "not_after_ms": record.not_after_ms,
                "late_ms": now_ms - record.not_after_ms,
            },
        )

    async def _refuse(self, record: DispatchRecord, reason: str) -> None:
        _log.warning(
            "refused task %s (dispatch %s): %s", record.task_id, record.dispatch_id, reason
        )
        await self._report(record, State.STATE_REFUSED, reason, final=True)
        TASKS.labels("STATE_REFUSED").inc()
        await self._audit(
            "sandbox.task.refused",
            record.agent_id,
            {"task_id": record.task_id, "dispatch_id": record.dispatch_id, "reason": reason},
        )

    async def _report(
        self,
        record: DispatchRecord,
        state: events_pb2.TaskStatus.State,
        reason: str,
        *,
        final: bool = False,
    ) -> None:
        status = convert.status(
            state,
            task_id=record.task_id,
            agent_id=record.agent_id,
            node_id=self._node_id,
            attempt=record.attempt,
            dispatch_id=record.dispatch_id,
            reason=reason,
        )
        await self._outbox.add(status, final=final)

    # ------------------------------------------------------------------ stops

    async def on_stop(self, received: Received) -> None:
        """Handler of the node's stop orders."""
        _require_service(received, "stop orders")
        stop = received.parse(events_pb2.TaskStop)
        reason = stop.reason or "cancelled"
        grace = stop.grace_ms / 1000 if stop.grace_ms else self._stop_grace_s
        run: _Run | None = None
        if stop.dispatch_id:
            run = self._runs.get(stop.dispatch_id)
            if run is None and not self._journal.known(stop.dispatch_id):
                # The order may still be on its way: apply the stop when it arrives.
                self._early_stops[stop.dispatch_id] = (reason, grace)
                while len(self._early_stops) > self._max_early_stops:
                    self._early_stops.popitem(last=False)
                return
        else:
            dispatch_id = self._by_task.get(stop.task_id)
            run = self._runs.get(dispatch_id) if dispatch_id else None
        if run is None or run.spec.task_id != stop.task_id:
            _log.info("stop for task %s: not running on this node", stop.task_id)
            return
        if run.stop is None:
            run.stop = (reason, grace)
        if run.execution is not None:
            self._runner.request_stop(run.spec.task_id, grace_s=grace, reason=reason)
        await self._audit(
            "sandbox.task.stop",
            run.record.agent_id,
            {
                "task_id": stop.task_id,
                "dispatch_id": run.record.dispatch_id,
                "reason": reason,
                "grace_ms": int(grace * 1000),
                "requested_by": received.sender,
            },
        )

    async def _audit(self, event_type: str, agent_id: str, details: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(
                self._recorder.record(
                    event_type, details={**details, "node": self._node_id}, agent_id=agent_id
                ),
                10.0,
            )
        except (SymbiError, TimeoutError) as exc:
            # Task life goes on (the status is journaled); the bus audits its own failures.
            _log.error("audit event %s for %s not written: %s", event_type, agent_id, exc)


class Heartbeats:
    """Publishes the node's capacity every interval; watches dockerd while at it."""

    def __init__(
        self,
        bus: SecureBus,
        runner: SandboxRunner,
        dispatcher: TaskDispatcher,
        *,
        interval_s: float,
        set_health: Callable[[str, bool], Awaitable[None]],
        refresh_every: int = 10,
    ) -> None:
        self._bus = bus
        self._runner = runner
        self._dispatcher = dispatcher
        self._interval_s = interval_s
        self._set_health = set_health
        self._refresh_every = refresh_every
        self.sent = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        beat = 0
        next_at = loop.time()
        docker_ok = True
        while True:
            if beat % self._refresh_every == 0:
                docker_ok = await self._refresh(docker_ok)
            beat += 1
            try:
                info = await self._runner.node_info()
                message = convert.heartbeat_from_node(
                    info,
                    interval_s=self._interval_s,
                    running_task_ids=self._dispatcher.running_task_ids(),
                )
                await asyncio.wait_for(
                    self._bus.publish(
                        PLATFORM,
                        message,
                        subject=Subjects.heartbeat(info.node_id),
                        ttl_s=max(10.0, self._interval_s * 5),
                    ),
                    max(5.0, self._interval_s * 3),
                )
                self.sent += 1
            except (SymbiError, TimeoutError) as exc:
                HEARTBEAT_FAILURES.inc()
                _log.warning("heartbeat not published: %s", _describe(exc))
            next_at = max(next_at + self._interval_s, loop.time())
            await asyncio.sleep(next_at - loop.time())  # the heartbeat period itself

    async def _refresh(self, was_ok: bool) -> bool:
        try:
            await self._runner.refresh_node()
        except SymbiError as exc:
            if was_ok:
                _log.error("dockerd is not answering: %s", exc.message)
            await self._set_health("docker", False)
            return False
        if not was_ok:
            _log.info("dockerd answers again")
        await self._set_health("docker", True)
        return True


def _require_service(received: Received, what: str) -> None:
    if received.sender_role != "service":
        raise PermissionDenied(
            f"{what} are accepted from platform services only, not from {received.sender} "
            f"({received.sender_role})",
            reason="NOT_A_SERVICE",
        )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SymbiError):
        return exc.message
    return str(exc) or type(exc).__name__


def _stop_of(run: _Run) -> tuple[str, float] | None:
    return run.stop


def _now_ms() -> int:
    return int(time.time() * 1000)
