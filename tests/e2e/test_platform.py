"""`symbi up` / `status` / `down` with all seven services as real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from symbi_cli.local import pid_alive
from symbi_common.grpc.health import check_health
from symbi_common.launcher import SERVICES
from symbi_testing import eventually_sync, symbi_cli

SERVICE_NAMES = {
    "scheduler": "symbi.scheduler.v1.SchedulerService",
    "lifecycle": "symbi.lifecycle.v1.LifecycleService",
    "policy": "symbi.policy.v1.PolicyService",
    "audit": "symbi.audit.v1.AuditService",
    "context": "symbi.context.v1.ContextService",
    "mcp-gateway": "symbi.mcp_gateway.v1.McpGatewayService",
    "sandbox": "symbi.sandbox.v1.SandboxService",
}


symbi = symbi_cli


def all_pids(state: dict[str, object]) -> list[int]:
    services = state["services"]
    assert isinstance(services, dict)
    pids = [int(info["pid"]) for info in services.values()]
    return [*pids, int(str(state["nats_pid"])), int(str(state["supervisor_pid"]))]


async def reflected_services(target: str) -> list[str]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        async for response in stub.ServerReflectionInfo(requests(), timeout=5):
            return [s.name for s in response.list_services_response.service]
    return []


def test_up_detached_serves_all_seven_and_down_leaves_nothing(tmp_path: Path) -> None:
    data = tmp_path / "symbi"
    started = symbi("up", "--detach", "--ephemeral", "--timeout", "90", "--data-dir", str(data))
    assert started.returncode == 0, started.stdout + started.stderr
    state = json.loads((data / "state.json").read_text())
    try:
        assert set(state["services"]) == set(SERVICES)

        async def probe() -> None:
            for name, info in state["services"].items():
                assert await check_health(info["grpc"]) == "SERVING", name
                assert await check_health(info["grpc"], SERVICE_NAMES[name]) == "SERVING", name
                assert SERVICE_NAMES[name] in await reflected_services(info["grpc"]), name

        asyncio.run(probe())
        status = symbi("status", "--data-dir", str(data))
        assert status.returncode == 0, status.stdout + status.stderr
        for name in SERVICES:
            assert name in status.stdout
        assert "SERVING" in status.stdout
    finally:
        stopped = symbi("down", "--data-dir", str(data))
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    for pid in all_pids(state):
        assert not pid_alive(pid), f"process {pid} survived symbi down"
    assert not (data / "state.json").exists()
    assert symbi("status", "--data-dir", str(data)).returncode == 1


def start_foreground(data: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "symbi_cli",
            "up",
            "--ephemeral",
            "--timeout",
            "90",
            "--data-dir",
            str(data),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def read_state(data: Path) -> dict[str, object] | None:
    try:
        loaded: dict[str, object] = json.loads((data / "state.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return loaded


def test_ctrl_c_stops_the_foreground_platform(tmp_path: Path) -> None:
    data = tmp_path / "symbi"
    supervisor = start_foreground(data)
    try:
        state = eventually_sync(
            lambda: (s := read_state(data)) is not None and s.get("status") == "running" and s,
            timeout=60,
            message="platform running",
        )
        assert isinstance(state, dict)
        supervisor.send_signal(signal.SIGINT)
        assert supervisor.wait(60) == 0
        for pid in all_pids(state)[:-1]:
            assert not pid_alive(pid), f"process {pid} survived Ctrl-C"
    finally:
        if supervisor.poll() is None:
            supervisor.kill()


def test_ctrl_c_during_start_up_stops_every_child(tmp_path: Path) -> None:
    data = tmp_path / "symbi"
    supervisor = start_foreground(data)
    try:
        # As soon as the services are spawned (their pids recorded), interrupt.
        state = eventually_sync(
            lambda: (s := read_state(data)) is not None and len(s.get("services") or {}) == 7 and s,  # type: ignore[arg-type]
            timeout=60,
            interval=0.005,
            message="services spawned",
        )
        assert isinstance(state, dict)
        supervisor.send_signal(signal.SIGINT)
        supervisor.wait(60)
        for pid in all_pids(state)[:-1]:
            assert not pid_alive(pid), f"process {pid} survived Ctrl-C during start-up"
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
