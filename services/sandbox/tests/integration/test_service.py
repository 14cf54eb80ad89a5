"""The sandbox as a real process on a real NATS: contract C3 end to end (runc and runsc)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from symbi.bus.v1 import events_pb2
from symbi.common.v1 import common_pb2
from symbi_sandbox.engine import DockerEngine
from symbi_sandbox.hardening import LABEL_NODE
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

from .platform import SchedulerStandIn, start_node

pytestmark = pytest.mark.docker


State = events_pb2.TaskStatus.State
RUNC, RUNSC = common_pb2.SANDBOX_TIER_DOCKER, common_pb2.SANDBOX_TIER_GVISOR


def instance() -> str:
    return f"s{uuid.uuid4().hex[:8]}"


async def test_tasks_sent_on_the_bus_run_and_report_started_then_final(
    scheduler: SchedulerStandIn,
    services: ServiceCluster,
    short_dir: Path,
    engine: DockerEngine,
) -> None:
    name = instance()
    node = f"node-{name}"
    await start_node(services, short_dir, name)
    beat = await eventually(lambda: scheduler.heartbeats.get(node), timeout=20)
    assert set(beat.tiers) == {RUNC, RUNSC}  # both probed and working here
    assert beat.memory_total_mb > 0
    assert beat.heartbeat_interval_ms == 500

    ok = await scheduler.assign(node, "ok-runc", command=("sh", "-c", "echo hi"), tier=RUNC)
    bad = await scheduler.assign(node, "bad-runsc", command=("sh", "-c", "exit 3"), tier=RUNSC)
    oom = await scheduler.assign(
        node,
        "oom-runc",
        image="symbi/python",
        command=("python3", "-c", "x = bytearray(512 * 1024 * 1024)"),
        memory_mb=64,
        tier=RUNC,
    )
    slow = await scheduler.assign(
        node, "slow-runsc", command=("sleep", "60"), timeout_s=2, tier=RUNSC
    )

    final = await scheduler.final("ok-runc")
    assert scheduler.states("ok-runc") == ["STARTED", "SUCCEEDED"]
    assert (final.exit_code, final.node_id, final.dispatch_id) == (0, node, ok.dispatch_id)
    started = scheduler.statuses["ok-runc"][0]
    assert (started.dispatch_id, started.agent_id) == (ok.dispatch_id, "agent-test")

    final = await scheduler.final("bad-runsc")
    assert scheduler.states("bad-runsc") == ["STARTED", "FAILED"]
    assert (final.exit_code, final.dispatch_id) == (3, bad.dispatch_id)

    final = await scheduler.final("oom-runc")
    assert scheduler.states("oom-runc") == ["STARTED", "OOM_KILLED"], final.reason
    assert final.dispatch_id == oom.dispatch_id

    final = await scheduler.final("slow-runsc")
    assert scheduler.states("slow-runsc") == ["STARTED", "TIMED_OUT"]
    assert "timeout" in final.reason
    assert final.dispatch_id == slow.dispatch_id

    assert scheduler.status_senders == {node}  # every status was signed by the node
    assert await engine.list_managed({LABEL_NODE: node}) == []


async def test_refused_tasks_report_why_and_leave_nothing(
    scheduler: SchedulerStandIn,
    services: ServiceCluster,
    short_dir: Path,
    engine: DockerEngine,
) -> None:
    name = instance()
    node = f"node-{name}"
    # This node's gVisor runtime is not registered in dockerd: tier 2 is unavailable here.
    await start_node(services, short_dir, name, SYMBI_SANDBOX__GVISOR_RUNTIME="runsc-absent")
    beat = await eventually(lambda: scheduler.heartbeats.get(node), timeout=20)
    assert list(beat.tiers) == [RUNC]

    await scheduler.assign(node, "no-image", image="symbi/does-not-exist")
    await scheduler.assign(node, "no-tier", tier=RUNSC)
    await scheduler.assign(node, "default-tier", tier=common_pb2.SANDBOX_TIER_UNSPECIFIED)
    await scheduler.assign(node, "bad-env", env={"SYMBI_TOKEN": "x"})
    await scheduler.assign(node, "too-big", memory_mb=1_000_000)
    await scheduler.assign(node, "no-command", command=("/no/such/binary",))

    expected = {
        "no-image": "IMAGE_NOT_FOUND",
        "no-tier": "TIER_UNAVAILABLE",
        "default-tier": "TIER_UNAVAILABLE",  # the node default (gvisor) is never downgraded
        "bad-env": "MALFORMED_TASK",
        "too-big": "LIMIT_TOO_HIGH",
        "no-command": "COMMAND_NOT_FOUND",
    }
    for task_id, reason in expected.items():
        final = await scheduler.final(task_id)
        assert scheduler.states(task_id) == ["REFUSED"], task_id
        assert final.reason.startswith(reason + ":"), final.reason
        assert final.exit_code == -1
    assert "gvisor" in (await scheduler.final("no-tier")).reason
    assert await engine.list_managed({LABEL_NODE: node}) == []
    assert os.listdir(short_dir) == []  # no task directory left either


async def test_preemption_stops_and_at_most_once_dispatch(
    scheduler: SchedulerStandIn, services: ServiceCluster, short_dir: Path, engine: DockerEngine
) -> None:
    name = instance()
    node = f"node-{name}"
    await start_node(services, short_dir, name)
    sleeper = ("sleep", "300")
    low = await scheduler.assign(node, "low", command=sleeper)
    await scheduler.started("low")
    high = await scheduler.assign(node, "high", command=sleeper, tier=RUNSC, preempts=("low",))
    await scheduler.started("high")
    # The victim's end reached the stream before the preemptor's start (one ordered subject).
    stopped = await scheduler.final("low")
    assert (stopped.state, stopped.reason) == (State.STATE_STOPPED, "preempted")
    assert stopped.dispatch_id == low.dispatch_id
    order = [(s.task_id, s.state) for s in scheduler.ordered]
    assert order.index(("low", State.STATE_STOPPED)) < order.index(("high", State.STATE_STARTED))

    # A dispatch id starts at most once, even if the order is delivered again.
    await scheduler.assign(node, "high", command=sleeper, dispatch_id=high.dispatch_id)
    # A stop for the running dispatch: cancelled, with the scheduler's reason.
    await scheduler.stop(node, "high", reason="cancelled", dispatch_id=high.dispatch_id)
    final = await scheduler.final("high")
    assert scheduler.states("high") == ["STARTED", "STOPPED"]
    assert final.reason == "cancelled"

    # An order past its not_after is never started and gets no status of its own.
    await scheduler.assign(node, "late", not_after_s=-1)
    # A stop sent before its order (they travel on two streams, so either may arrive
    # first): the order is stopped whichever way round, never left running.
    await scheduler.stop(node, "early", reason="cancelled", dispatch_id="early-1")
    await scheduler.assign(node, "early", command=sleeper, dispatch_id="early-1")
    final = await scheduler.final("early")
    assert scheduler.states("early") in (["STOPPED"], ["STARTED", "STOPPED"])
    assert final.reason == "cancelled"
    assert scheduler.states("late") == []
    beat = await eventually(
        lambda: (
            (b := scheduler.heartbeats.get(node)) is not None
            and not b.running_task_ids
            and b.running_tasks == 0
            and b
        ),
        timeout=10,
    )
    assert beat.memory_free_mb == beat.memory_total_mb
    assert await engine.list_managed({LABEL_NODE: node}) == []


async def test_kill_9_leaves_containers_that_the_next_start_reports_lost_and_removes(
    scheduler: SchedulerStandIn, services: ServiceCluster, short_dir: Path, engine: DockerEngine
) -> None:
    name = instance()
    node = f"node-{name}"
    process = await start_node(services, short_dir, name)
    runc = await scheduler.assign(node, "doomed-runc", command=("sleep", "300"))
    runsc = await scheduler.assign(node, "doomed-runsc", command=("sleep", "300"), tier=RUNSC)
    await scheduler.started("doomed-runc")
    await scheduler.started("doomed-runsc")
    process.kill()  # SIGKILL: nothing is cleaned up
    left = await engine.list_managed({LABEL_NODE: node})
    assert len(left) == 2
    assert {c.state for c in left} == {"running"}

    await start_node(services, short_dir, name)  # same node, same data directory
    for task_id, order in (("doomed-runc", runc), ("doomed-runsc", runsc)):
        final = await scheduler.final(task_id)
        assert scheduler.states(task_id) == ["STARTED", "LOST"]
        assert final.dispatch_id == order.dispatch_id
        assert "restarted" in final.reason
    assert await engine.list_managed({LABEL_NODE: node}) == []
    # The journal remembers the dispatches: delivering them again starts nothing.
    await scheduler.assign(node, "doomed-runc", command=("true",), dispatch_id=runc.dispatch_id)
    await scheduler.assign(node, "marker", command=("true",))
    await scheduler.final("marker")
    assert scheduler.states("doomed-runc") == ["STARTED", "LOST"]
