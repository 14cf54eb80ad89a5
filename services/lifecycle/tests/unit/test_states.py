"""The full transition table: every (from, to) pair is either allowed or refused by name."""

from __future__ import annotations

import itertools

import pytest

from symbi_common.errors import FailedPrecondition
from symbi_lifecycle.states import TRANSITIONS, AgentState, check_transition

S = AgentState

# Written out independently of the implementation's table: the specification of issue 6
# (Created → Initializing → Ready → Running → Suspended / Waiting → Completed / Failed →
# Terminating → Terminated, Failed → Initializing) plus the moves task statuses need.
EXPECTED: set[tuple[AgentState, AgentState]] = {
    (S.CREATED, S.INITIALIZING),
    (S.CREATED, S.FAILED),
    (S.CREATED, S.TERMINATING),
    (S.INITIALIZING, S.READY),
    (S.INITIALIZING, S.FAILED),
    (S.INITIALIZING, S.TERMINATING),
    (S.READY, S.RUNNING),
    (S.READY, S.SUSPENDED),
    (S.READY, S.COMPLETED),  # a final status that overtakes its start
    (S.READY, S.WAITING),  # the same, for a scheduled agent
    (S.READY, S.FAILED),  # refused / never acknowledged
    (S.READY, S.TERMINATING),
    (S.RUNNING, S.SUSPENDED),
    (S.RUNNING, S.WAITING),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.READY),  # cancelled
    (S.RUNNING, S.TERMINATING),
    (S.SUSPENDED, S.RUNNING),
    (S.SUSPENDED, S.READY),
    (S.SUSPENDED, S.COMPLETED),
    (S.SUSPENDED, S.FAILED),
    (S.SUSPENDED, S.TERMINATING),
    (S.WAITING, S.RUNNING),
    (S.WAITING, S.SUSPENDED),
    (S.WAITING, S.READY),
    (S.WAITING, S.FAILED),
    (S.WAITING, S.TERMINATING),
    (S.COMPLETED, S.TERMINATING),
    (S.FAILED, S.INITIALIZING),
    (S.FAILED, S.TERMINATING),
    (S.TERMINATING, S.TERMINATED),
}

ALL_PAIRS = list(itertools.product(AgentState, AgentState))


def test_the_table_is_the_specified_one() -> None:
    actual = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert actual == EXPECTED
    assert set(TRANSITIONS) == set(AgentState)


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS, ids=lambda s: s.value)
def test_every_pair(current: AgentState, target: AgentState) -> None:
    if (current, target) in EXPECTED:
        check_transition("agent-x", current, target)
        return
    with pytest.raises(FailedPrecondition) as caught:
        check_transition("agent-x", current, target)
    error = caught.value
    assert current.value in error.message
    assert target.value in error.message
    assert error.details["from"] == current.value
    assert error.details["to"] == target.value
    assert error.reason == "ILLEGAL_TRANSITION"


def test_terminated_is_final_and_everything_else_can_end() -> None:
    assert not TRANSITIONS[S.TERMINATED]
    for state in AgentState:
        if state not in (S.TERMINATING, S.TERMINATED):
            assert S.TERMINATING in TRANSITIONS[state], state
