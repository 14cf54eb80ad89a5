"""Task statuses move agents (contract C2), in stream order, whichever replica sees them."""

from __future__ import annotations

import itertools

import pytest

from symbi_common.errors import Unavailable
from symbi_lifecycle.lifecycle import AgentLifecycle
from symbi_lifecycle.states import AgentState
from symbi_lifecycle.task_status import TaskEvent, TaskPhase

AGENT = """
agent worker() {
    capabilities = ["summarize"]
    with sandbox = "Tier2" { return 1; }
}
"""
SCHEDULED = AGENT + '\nschedule nightly { cron = "0 2 * * *" agent = "worker" }\n'

_seq = itertools.count(1)


def status(agent_id: str, phase: TaskPhase, task: str = "t1", **kw: object) -> TaskEvent:
    return TaskEvent(agent_id, task, phase, stream_seq=next(_seq), sender="node-a", **kw)  # type: ignore[arg-type]


async def ready(lifecycle: AgentLifecycle, source: str = AGENT) -> str:
    return (await lifecycle.create(source, source_format="dsl")).record.id


async def state(lifecycle: AgentLifecycle, agent_id: str) -> AgentState:
    return (await lifecycle.get(agent_id)).record.state


async def test_started_then_succeeded(lifecycle) -> None:
    agent = await ready(lifecycle)
    outcome = await lifecycle.apply_status(status(agent, TaskPhase.STARTED, dispatch_id="t1-1"))
    assert outcome.outcome == "applied"
    record = (await lifecycle.get(agent)).record
    assert record.state is AgentState.RUNNING
    assert (record.task_id, record.dispatch_id) == ("t1", "t1-1")
    await lifecycle.apply_status(status(agent, TaskPhase.SUCCEEDED))
    record = (await lifecycle.get(agent)).record
    assert record.state is AgentState.COMPLETED
    assert record.task_id == ""


async def test_scheduled_agent_waits_for_its_next_run(lifecycle) -> None:
    agent = await ready(lifecycle, SCHEDULED)
    await lifecycle.apply_status(status(agent, TaskPhase.STARTED))
    await lifecycle.apply_status(status(agent, TaskPhase.SUCCEEDED))
    assert await state(lifecycle, agent) is AgentState.WAITING
    await lifecycle.apply_status(status(agent, TaskPhase.STARTED, task="t2"))
    assert await state(lifecycle, agent) is AgentState.RUNNING


@pytest.mark.parametrize(
    "phase", [TaskPhase.FAILED, TaskPhase.OOM_KILLED, TaskPhase.TIMED_OUT, TaskPhase.REFUSED]
)
async def test_failures_fail_the_agent_and_plan_recovery(lifecycle, clock, phase) -> None:
    agent = await ready(lifecycle)
    if phase is not TaskPhase.REFUSED:
        await lifecycle.apply_status(status(agent, TaskPhase.STARTED))
    await lifecycle.apply_status(status(agent, phase, exit_code=137, reason="boom"))
    record = (await lifecycle.get(agent)).record
    assert record.state is AgentState.FAILED
    assert phase.value.lower() in record.reason
    assert "boom" in record.reason
    assert record.restart_at_ms == clock() + 1000
    clock.advance(1)
    recovered = await lifecycle.reconcile(await lifecycle.get(agent))
    assert recovered is not None
    assert recovered.record.state is AgentState.READY


async def test_preempted_suspends_and_a_new_start_runs(lifecycle) -> None:
    agent = await ready(lifecycle)
    await lifecycle.apply_status(status(agent, TaskPhase.STARTED, dispatch_id="t1-1"))
    await lifecycle.apply_status(status(agent, TaskPhase.STOPPED, reason="preempted"))
    assert await state(lifecycle, agent) is AgentState.SUSPENDED
    await lifecycle.apply_status(status(agent, TaskPhase.STARTED, dispatch_id="t1-2"))
    assert await state(lifecycle, agent) is AgentState.RUNNING


async def test_cancelled_goes_back_to_ready(lifecycle) -> None:
    agent = await ready(lifecycle)
    await lifecycle.apply_status(status(agent, TaskPhase.STARTED))
    await lifecycle.apply_status(status(agent, TaskPhase.STOPPED, reason="cancelled"))
    assert await state(lifecycle, agent) is AgentState.READY


async def test_lost_leaves_the_agent_where_it_is(lifecycle) -> None:
    agent = await ready(lifecycle)
    await lifecycle.apply_status(status(agent, TaskPhase.STARTED))
    outcome = await lifecycle.apply_status(status(agent, TaskPhase.LOST))
    assert outcome.outcome == "recorded"
    assert await state(lifecycle, agent) is AgentState.RUNNING


async def test_older_status_is_stale(lifecycle) -> None:
    agent = await ready(lifecycle)
    started = status(agent, TaskPhase.STARTED)
    succeeded = status(agent, TaskPhase.SUCCEEDED)
    # Another replica handled the newer status first: the older one must not undo it.
    await lifecycle.apply_status(succeeded)
    assert await state(lifecycle, agent) is AgentState.COMPLETED
    outcome = await lifecycle.apply_status(started)
    assert outcome.outcome == "ignored"
    assert "stale" in outcome.note
    assert await state(lifecycle, agent) is AgentState.COMPLETED
    again = await lifecycle.apply_status(succeeded)  # a redelivery
    assert again.outcome == "ignored"


async def test_status_of_another_task_is_ignored(lifecycle) -> None:
    agent = await ready(lifecycle)
    await lifecycle.apply_status(status(agent, TaskPhase.STARTED, task="t2"))
    outcome = await lifecycle.apply_status(status(agent, TaskPhase.FAILED, task="t1"))
    assert outcome.outcome == "recorded"
    assert await state(lifecycle, agent) is AgentState.RUNNING


async def test_suspended_by_operator_then_resume_with_task(lifecycle) -> None:
    agent = await ready(lifecycle)
    await lifecycle.apply_status(status(agent, TaskPhase.STARTED))
    await lifecycle.suspend(agent)
    resumed = await lifecycle.resume(agent)
    assert resumed.record.state is AgentState.RUNNING  # its task still runs
    await lifecycle.suspend(agent)
    stop = await lifecycle.apply_status(status(agent, TaskPhase.STOPPED, reason="cancelled"))
    assert stop.outcome == "recorded"
    assert await state(lifecycle, agent) is AgentState.SUSPENDED
    resumed = await lifecycle.resume(agent)
    assert resumed.record.state is AgentState.READY  # nothing runs any more


async def test_illegal_and_terminating_statuses_only_move_the_watermark(lifecycle) -> None:
    agent = await ready(lifecycle)
    await lifecycle.apply_status(status(agent, TaskPhase.STARTED))
    await lifecycle.apply_status(status(agent, TaskPhase.SUCCEEDED))
    late = status(agent, TaskPhase.STARTED, task="t9")
    outcome = await lifecycle.apply_status(late)
    assert outcome.outcome == "recorded"
    assert "not a transition" in outcome.note
    record = (await lifecycle.get(agent)).record
    assert record.state is AgentState.COMPLETED
    assert record.status_seq == late.stream_seq
    await lifecycle.terminate(agent)
    outcome = await lifecycle.apply_status(status(agent, TaskPhase.STARTED, task="t10"))
    assert outcome.outcome == "recorded"
    assert await state(lifecycle, agent) is AgentState.TERMINATED


async def test_unknown_agent(lifecycle) -> None:
    outcome = await lifecycle.apply_status(status("agent-nobody", TaskPhase.STARTED))
    assert outcome.outcome == "ignored"


async def test_suspend_and_terminate_cancel_the_running_task(lifecycle, tasks) -> None:
    agent = await ready(lifecycle)
    await lifecycle.suspend(agent)
    assert tasks.cancelled == []  # nothing runs
    await lifecycle.resume(agent)
    await lifecycle.apply_status(status(agent, TaskPhase.STARTED, task="t7"))
    await lifecycle.suspend(agent)
    assert tasks.cancelled == [("t7", "agent suspended")]
    await lifecycle.apply_status(status(agent, TaskPhase.STOPPED, task="t7", reason="cancelled"))
    assert await state(lifecycle, agent) is AgentState.SUSPENDED
    await lifecycle.resume(agent)
    await lifecycle.apply_status(status(agent, TaskPhase.STARTED, task="t8"))
    tasks.error = Unavailable("nobody serves symbi.rpc.scheduler.cancel")
    ended = await lifecycle.terminate(agent)  # the scheduler being away does not block it
    assert ended.record.state is AgentState.TERMINATED
    tasks.error = None
    assert tasks.cancelled == [("t7", "agent suspended")]
