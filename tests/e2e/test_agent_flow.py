"""The platform's main job, end to end: an agent is defined, allowed, scheduled, run in a
sandbox, followed through its states, and every step is on the verifiable audit log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc

from symbi.audit.v1 import audit_pb2, audit_pb2_grpc
from symbi.common.v1 import common_pb2
from symbi.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from symbi.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from symbi_testing import LocalPlatform, eventually

ROOT = Path(__file__).resolve().parents[2]

ALLOCATE = """
@id("e2e-allocate")
permit(principal is Symbi::Agent, action == Symbi::Action::"allocate", resource is Symbi::Node);
"""


async def run_flow(platform: LocalPlatform) -> None:
    async with (
        grpc.aio.insecure_channel(platform.grpc("lifecycle")) as lifecycle_channel,
        grpc.aio.insecure_channel(platform.grpc("scheduler")) as scheduler_channel,
        grpc.aio.insecure_channel(platform.grpc("audit")) as audit_channel,
    ):
        lifecycle = lifecycle_pb2_grpc.LifecycleServiceStub(lifecycle_channel)
        scheduler = scheduler_pb2_grpc.SchedulerServiceStub(scheduler_channel)
        audit = audit_pb2_grpc.AuditServiceStub(audit_channel)

        # 1. Define the agent (DSL), through lifecycle: validated, registered with policy.
        source = (ROOT / "examples" / "agents" / "code_runner.symbi").read_text()
        agent = await lifecycle.CreateAgent(
            lifecycle_pb2.CreateAgentRequest(dsl=source, file_name="code_runner.symbi"), timeout=30
        )

        async def agent_state() -> str:
            current = await lifecycle.GetAgent(
                lifecycle_pb2.GetAgentRequest(id=agent.id), timeout=10
            )
            return str(lifecycle_pb2.AgentState.Name(current.state))

        await eventually(lambda: _is(agent_state(), "AGENT_STATE_READY"), timeout=60)

        # 2. Schedule a task for it: placed (policy `allocate`), dispatched to the node, run.
        response = await scheduler.ScheduleAgent(
            scheduler_pb2.ScheduleAgentRequest(
                agent_id=agent.id,
                priority=common_pb2.PRIORITY_HIGH,
                tier=common_pb2.SANDBOX_TIER_DOCKER,
                limits=common_pb2.ResourceLimits(memory_mb=64, cpu_millicores=250),
                image="symbi/busybox",
                command=["sh", "-c", "echo hello from the sandbox"],
            ),
            timeout=30,
        )
        task_id = response.task.task_id

        async def task_state() -> str:
            task = await scheduler.GetTask(
                scheduler_pb2.GetTaskRequest(task_id=task_id), timeout=10
            )
            state = str(scheduler_pb2.TaskState.Name(task.state))
            assert state not in ("TASK_STATE_FAILED", "TASK_STATE_CANCELLED"), (
                f"{state}: {task.reason}"
            )
            return state

        await eventually(lambda: _is(task_state(), "TASK_STATE_SUCCEEDED"), timeout=120)
        # 3. Lifecycle followed the task: Running, then Completed.
        await eventually(lambda: _is(agent_state(), "AGENT_STATE_COMPLETED"), timeout=60)
        history = await lifecycle.GetHistory(
            lifecycle_pb2.GetHistoryRequest(id=agent.id), timeout=10
        )
        reached = [lifecycle_pb2.AgentState.Name(t.to_state) for t in history.transitions]
        assert reached.index("AGENT_STATE_RUNNING") < reached.index("AGENT_STATE_COMPLETED"), (
            reached
        )

        # 4. The audit log has the agent's story, every event verified against its publisher,
        #    and the log verifies.
        async def agent_events() -> list[audit_pb2.LogEntry]:
            page = await audit.Query(audit_pb2.QueryRequest(agent_id=agent.id), timeout=10)
            types = {entry.event.event_type for entry in page.entries}
            assert any(t.startswith("lifecycle.") for t in types), types
            assert any(t.startswith("sandbox.") or t.startswith("scheduler.") for t in types), types
            return list(page.entries)

        entries = await eventually(agent_events, timeout=60)
        for entry in entries:
            assert audit_pb2.PublisherStatus.Name(entry.publisher_status).endswith("VERIFIED"), (
                entry
            )
            json.loads(entry.event.details_json)
        verified = await audit.Verify(audit_pb2.VerifyRequest(), timeout=60)
        assert verified.ok, verified.problem


async def _is(value: object, want: str) -> bool:
    got = await value  # type: ignore[misc]
    assert got == want, f"{got}, waiting for {want}"
    return True


def test_an_agent_runs_from_definition_to_audit(
    local_platform: LocalPlatform, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "allocate.cedar").write_text(ALLOCATE)
    pushed = local_platform.cli("policy", "push", str(policies))
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    asyncio.run(run_flow(local_platform))
