"""How task statuses (contract C3) move agents (contract C2): a pure planning function.

=========================  ==============================================================
status                     agent
=========================  ==============================================================
STARTED                    → Running (records the task and dispatch)
SUCCEEDED                  → Completed; a scheduled agent → Waiting (for its next run)
FAILED / OOM_KILLED /      → Failed, then its restart policy
TIMED_OUT / REFUSED
STOPPED "preempted"        → Suspended (a later STARTED → Running again)
STOPPED (other reasons)    → Ready ("cancelled")
LOST                       stays (the scheduler requeues; a later status moves it)
=========================  ==============================================================

Statuses are applied in stream order: each carries its stream sequence, and one not newer
than the agent's ``status_seq`` is stale and ignored, whichever replica handles it. A status
of a task other than the one the agent runs, a status for an agent being terminated, and one
that would be an illegal move are ignored too; those still advance the watermark so that a
redelivery can never apply them later (ADR 0042).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from symbi_lifecycle.record import AgentRecord
from symbi_lifecycle.states import AgentState, is_allowed

__all__ = ["StatusPlan", "TaskEvent", "TaskPhase", "plan_status"]


class TaskPhase(enum.Enum):
    STARTED = "STARTED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    OOM_KILLED = "OOM_KILLED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"
    REFUSED = "REFUSED"
    LOST = "LOST"


_FAILURES = frozenset(
    {TaskPhase.FAILED, TaskPhase.OOM_KILLED, TaskPhase.TIMED_OUT, TaskPhase.REFUSED}
)


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """A task status as the lifecycle sees it."""

    agent_id: str
    task_id: str
    phase: TaskPhase
    stream_seq: int
    reason: str = ""
    exit_code: int = 0
    dispatch_id: str = ""
    node_id: str = ""
    sender: str = ""


@dataclass(frozen=True, slots=True)
class StatusPlan:
    """What to do with one status: move to ``target`` (None: no transition), write
    ``changes`` (None: write nothing), and why."""

    target: AgentState | None
    changes: dict[str, Any] | None
    note: str
    #: A failure the restart policy may recover from.
    restartable: bool = False

    @property
    def ignored(self) -> bool:
        return self.target is None


def _describe(event: TaskEvent) -> str:
    text = f"task {event.task_id} {event.phase.value.lower()}"
    if event.phase in _FAILURES and event.phase is not TaskPhase.REFUSED:
        text += f" (exit {event.exit_code})"
    if event.node_id:
        text += f" on {event.node_id}"
    return f"{text}: {event.reason}" if event.reason else text


def plan_status(record: AgentRecord, event: TaskEvent) -> StatusPlan:
    """What ``event`` does to the agent ``record`` describes."""
    if event.stream_seq and event.stream_seq <= record.status_seq:
        return StatusPlan(None, None, f"stale (sequence {event.stream_seq} ≤ {record.status_seq})")
    watermark: dict[str, Any] = {"status_seq": max(record.status_seq, event.stream_seq)}
    state = record.state
    if state in (AgentState.TERMINATING, AgentState.TERMINATED):
        return StatusPlan(None, watermark, f"agent is {state.value}")
    phase = event.phase
    describe = _describe(event)
    if phase is TaskPhase.LOST:
        return StatusPlan(None, watermark, "lost: the scheduler requeues it")
    if phase is TaskPhase.STARTED:
        changes = {**watermark, "task_id": event.task_id, "dispatch_id": event.dispatch_id}
        if state is AgentState.RUNNING:
            note = "already running" if event.task_id == record.task_id else "new run"
            return StatusPlan(None, changes, note)
        return _move(state, AgentState.RUNNING, changes, watermark, describe)
    # A final status: it is about the task the agent runs, or about one it has not seen start.
    if record.task_id and event.task_id != record.task_id:
        return StatusPlan(
            None, watermark, f"status of task {event.task_id}; the agent runs {record.task_id}"
        )
    cleared = {**watermark, "task_id": "", "dispatch_id": ""}
    if phase is TaskPhase.SUCCEEDED:
        target = AgentState.WAITING if record.scheduled else AgentState.COMPLETED
        return _move(state, target, cleared, watermark, describe)
    if phase in _FAILURES:
        plan = _move(state, AgentState.FAILED, cleared, watermark, describe)
        return StatusPlan(plan.target, plan.changes, plan.note, restartable=plan.target is not None)
    # STOPPED
    if state is AgentState.SUSPENDED:
        return StatusPlan(None, cleared, "stopped while suspended: stays suspended")
    target = AgentState.SUSPENDED if event.reason == "preempted" else AgentState.READY
    return _move(state, target, cleared, watermark, describe)


def _move(
    state: AgentState,
    target: AgentState,
    changes: dict[str, Any],
    watermark: dict[str, Any],
    describe: str,
) -> StatusPlan:
    if state is target:
        return StatusPlan(None, changes, f"already {state.value}")
    if not is_allowed(state, target):
        return StatusPlan(
            None, watermark, f"ignored: {state.value} → {target.value} is not a transition"
        )
    return StatusPlan(target, changes, describe)
