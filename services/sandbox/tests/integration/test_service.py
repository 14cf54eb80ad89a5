"""The sandbox as a real process on a real NATS: contract C3 end to end (runc and runsc)."""

from __future__ import annotations

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
