"""The platform's main job, shown on a running local platform (``symbi up --demo``).

An example agent (``examples/agents/code_runner.symbi``, or a built-in copy) is created
through lifecycle (validated, registered with policy), a policy permitting placement is
installed, a task of the agent is scheduled, runs in a sandbox on the local node, and the
agent's states and its audit trail are printed.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from symbi.audit.v1 import audit_pb2, audit_pb2_grpc
from symbi.common.v1 import common_pb2
from symbi.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from symbi_cli.local import PlatformState
from symbi_cli.local_tls import client_options
from symbi_common.errors import DeadlineExceeded, FailedPrecondition
from symbi_common.grpc import open_channel

__all__ = ["run_demo"]

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "agents" / "code_runner.symbi"
FALLBACK_AGENT = """
agent demo_runner() -> String {
    capabilities = ["execute"]
    with sandbox = "docker", timeout = "60s" {
        return "done";
    }
}
"""
ALLOCATE_POLICY = """@id("demo-allocate")
permit(principal is Symbi::Agent, action == Symbi::Action::"allocate", resource is Symbi::Node);
"""


async def _until(check: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.2)
    raise DeadlineExceeded(f"{what} did not happen within {timeout_s:.0f} s")


async def run_demo(
    state: PlatformState, say: Callable[[str], None], environ: Mapping[str, str] = os.environ
) -> None:
    """Run the main job on the platform ``state`` describes; over mTLS as the local operator
    when it was started with ``--tls`` (``SYMBI_GRPC_TLS_*`` in ``environ`` override)."""
    services = state.services
    options = client_options(state.local_tls, environ)
    if options.tls:
        say(f"calling over mTLS as {options.tls_cert_file}")
    async with (
        open_channel(services["lifecycle"]["grpc"], options) as lc_channel,
        open_channel(services["scheduler"]["grpc"], options) as sc_channel,
        open_channel(services["policy"]["grpc"], options) as po_channel,
        open_channel(services["audit"]["grpc"], options) as au_channel,
    ):
        lifecycle = lifecycle_pb2_grpc.LifecycleServiceStub(lc_channel)
        scheduler = scheduler_pb2_grpc.SchedulerServiceStub(sc_channel)
        policy = policy_pb2_grpc.PolicyServiceStub(po_channel)
        audit = audit_pb2_grpc.AuditServiceStub(au_channel)

        await policy.PutPolicy(
            policy_pb2.PutPolicyRequest(id="demo/allocate", source=ALLOCATE_POLICY), timeout=30
        )
        say("policy: installed demo/allocate (agents may be placed on nodes)")

        source = EXAMPLE.read_text() if EXAMPLE.is_file() else FALLBACK_AGENT
        agent = await lifecycle.CreateAgent(
            lifecycle_pb2.CreateAgentRequest(dsl=source, file_name=EXAMPLE.name, owner="demo"),
            timeout=30,
        )
        say(f"lifecycle: created agent {agent.id} ({agent.name}) from {EXAMPLE.name}")

        async def agent_state() -> str:
            current = await lifecycle.GetAgent(
                lifecycle_pb2.GetAgentRequest(id=agent.id), timeout=10
            )
            if current.state == lifecycle_pb2.AGENT_STATE_FAILED:
                raise FailedPrecondition(f"agent {agent.id} failed: {current.reason}")
            return str(lifecycle_pb2.AgentState.Name(current.state)).removeprefix("AGENT_STATE_")

        await _until(lambda: _equals(agent_state(), "READY"), 60, "the agent becoming READY")
        say("lifecycle: agent is READY (definition validated, policy registered)")

        scheduled = await scheduler.ScheduleAgent(
            scheduler_pb2.ScheduleAgentRequest(
                agent_id=agent.id,
                priority=common_pb2.PRIORITY_NORMAL,
                tier=common_pb2.SANDBOX_TIER_DOCKER,
                limits=common_pb2.ResourceLimits(memory_mb=64, cpu_millicores=250),
                image="symbi/busybox",
                command=["sh", "-c", "echo hello from a Symbi sandbox; id"],
            ),
            timeout=30,
        )
        task_id = scheduled.task.task_id
        say(f"scheduler: task {task_id} queued")

        async def task_done() -> bool:
            task = await scheduler.GetTask(
                scheduler_pb2.GetTaskRequest(task_id=task_id), timeout=10
            )
            if task.state in (scheduler_pb2.TASK_STATE_FAILED, scheduler_pb2.TASK_STATE_CANCELLED):
                raise FailedPrecondition(f"task {task_id} ended {task.state}: {task.reason}")
            return task.state == scheduler_pb2.TASK_STATE_SUCCEEDED

        await _until(task_done, 120, "the task finishing")
        task = await scheduler.GetTask(scheduler_pb2.GetTaskRequest(task_id=task_id), timeout=10)
        say(f"sandbox: task ran on {task.node_id} and exited {task.exit_code}")
        await _until(lambda: _equals(agent_state(), "COMPLETED"), 60, "the agent completing")
        history = await lifecycle.GetHistory(
            lifecycle_pb2.GetHistoryRequest(id=agent.id), timeout=10
        )
        path = " → ".join(
            lifecycle_pb2.AgentState.Name(t.to_state).removeprefix("AGENT_STATE_")
            for t in history.transitions
        )
        say(f"lifecycle: {path}")

        async def audited() -> bool:
            page = await audit.Query(audit_pb2.QueryRequest(agent_id=agent.id), timeout=10)
            return len(page.entries) >= 3

        await _until(audited, 60, "the audit trail")
        page = await audit.Query(audit_pb2.QueryRequest(agent_id=agent.id), timeout=10)
        say(f"audit: {len(page.entries)} events about {agent.id}:")
        for entry in page.entries:
            status = audit_pb2.PublisherStatus.Name(entry.publisher_status).removeprefix(
                "PUBLISHER_STATUS_"
            )
            say(
                f"  #{entry.index} {entry.event.event_type} by {entry.event.actor} ({status.lower()})"
            )
        verified = await audit.Verify(audit_pb2.VerifyRequest(), timeout=60)
        say(
            f"audit: log verifies: {verified.ok} ({verified.checked} entries: hash chain and Merkle tree)"
        )


async def _equals(value: object, want: str) -> bool:
    return bool(await value == want)  # type: ignore[misc]
