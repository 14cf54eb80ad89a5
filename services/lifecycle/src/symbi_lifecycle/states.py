"""The agent state machine: states and the transitions allowed between them.

::

    Created ─► Initializing ─► Ready ─► Running ─► Completed
                    ▲   │        │ ▲      │ ▲ ▲
                    │   ▼        ▼ │      ▼ │ │
                    └─ Failed ◄─ (task failures, denied create)
                                 Suspended ⇄ Running, Waiting ⇄ Running
    every state but Terminated ─► Terminating ─► Terminated

The table below is the whole truth; any other move is refused with FAILED_PRECONDITION
naming both states. Moves driven by task statuses (ADR 0042) use the same table, so a final
status that overtakes its start (Ready → Completed) is a listed transition, not a special case.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from symbi_common.errors import FailedPrecondition

__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "AgentState",
    "check_transition",
    "is_allowed",
]


class AgentState(enum.Enum):
    """An agent's state; the value is the lifecycle proto's state name without its prefix."""

    CREATED = "CREATED"
    INITIALIZING = "INITIALIZING"
    READY = "READY"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    WAITING = "WAITING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"


S = AgentState

#: Allowed moves: state → the states it may move to.
TRANSITIONS: Mapping[AgentState, frozenset[AgentState]] = {
    # Stored, not yet registered with policy.
    S.CREATED: frozenset({S.INITIALIZING, S.FAILED, S.TERMINATING}),
    # Registering and asking policy; Failed when denied or policy cannot answer.
    S.INITIALIZING: frozenset({S.READY, S.FAILED, S.TERMINATING}),
    # Eligible for tasks. A final status may arrive before its start (Completed / Failed).
    S.READY: frozenset({S.RUNNING, S.SUSPENDED, S.COMPLETED, S.FAILED, S.WAITING, S.TERMINATING}),
    # A task runs. Stopped (cancelled) → Ready; preempted or suspended → Suspended;
    # a scheduled agent's finished run → Waiting for the next one.
    S.RUNNING: frozenset({S.SUSPENDED, S.WAITING, S.COMPLETED, S.FAILED, S.READY, S.TERMINATING}),
    # Paused (operator, or preempted). Resume → Ready (or Running if its task still runs);
    # a preempted task that starts again → Running; a task that ends meanwhile ends it.
    S.SUSPENDED: frozenset({S.RUNNING, S.READY, S.COMPLETED, S.FAILED, S.TERMINATING}),
    # A scheduled agent between runs.
    S.WAITING: frozenset({S.RUNNING, S.SUSPENDED, S.READY, S.FAILED, S.TERMINATING}),
    S.COMPLETED: frozenset({S.TERMINATING}),
    # Recovery (restart policy) or the end.
    S.FAILED: frozenset({S.INITIALIZING, S.TERMINATING}),
    # Unregistering from policy.
    S.TERMINATING: frozenset({S.TERMINATED}),
    S.TERMINATED: frozenset(),
}

TERMINAL: frozenset[AgentState] = frozenset({S.TERMINATED})


def is_allowed(current: AgentState, target: AgentState) -> bool:
    return target in TRANSITIONS[current]


def check_transition(agent_id: str, current: AgentState, target: AgentState) -> None:
    """Raise FailedPrecondition naming both states unless ``current → target`` is allowed."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none"
        raise FailedPrecondition(
            f"agent {agent_id} cannot move from {current.value} to {target.value} "
            f"(from {current.value} it may move to: {allowed})",
            reason="ILLEGAL_TRANSITION",
            details={"agent_id": agent_id, "from": current.value, "to": target.value},
        )
