"""The process runner: ordered idempotent shutdown, crash handling, NATS arriving late."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi_common.bus import ClusterAuthority, Credentials
from symbi_common.config import GrpcSection, NatsSection, ServiceSettings, TelemetrySection
from symbi_common.grpc.health import check_health
from symbi_common.grpc.server import ServiceBinding
from symbi_common.jetstream import BucketSpec, StreamSpec
from symbi_common.jetstream.server import NatsServerConfig, NatsServerProcess
from symbi_common.runner import ProcessRunner, Runtime
from symbi_common.service import binding
from symbi_testing import ServiceCluster, eventually


class RecordingService:
    """A service that records its life and can crash a loop on demand."""

    def __init__(self, crash: bool = False) -> None:
        self.crash = crash
        self.events: list[str] = []
        self.loop_cancelled = asyncio.Event()

    def grpc_bindings(self) -> Sequence[ServiceBinding]:
        return [
            binding(
                policy_pb2,
                "PolicyService",
                policy_pb2_grpc.add_PolicyServiceServicer_to_server,
                policy_pb2_grpc.PolicyServiceServicer(),
            )
        ]

    def streams(self) -> Sequence[StreamSpec]:
        return ()

    def buckets(self) -> Sequence[BucketSpec]:
        return ()

    async def start(self, runtime: Runtime) -> None:
        self.events.append("start")
        runtime.spawn(self._loop(), name="loop")

    async def _loop(self) -> None:
        try:
            if self.crash:
                raise RuntimeError("loop failed")
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.loop_cancelled.set()
            self.events.append("loop-cancelled")
            raise

    async def close(self) -> None:
        self.events.append("close")


def credentials_in(tmp_path: Path) -> Credentials:
    return ClusterAuthority.open(tmp_path / "keys").issue("svc-symbi-test", "service")


def settings_for(url: str) -> ServiceSettings:
    return ServiceSettings(
        nats=NatsSection(url=url),
        grpc=GrpcSection(port=0, grace_s=0.5),
        telemetry=TelemetrySection(metrics_port=0),
        instance_id="test",
    )


async def test_shutdown_runs_every_step_in_order_once(
    nats_server: NatsServerProcess, tmp_path: Path
) -> None:
    service = RecordingService()
    runner = ProcessRunner(
        settings_for(nats_server.url), service, credentials=credentials_in(tmp_path)
    )
    task = asyncio.create_task(runner.run())
    await eventually(lambda: runner._started, message="service started")
    target = f"127.0.0.1:{runner.grpc.port}"
    assert await check_health(target) == "SERVING"
    runner.request_stop("test")
    runner.request_stop("again")  # idempotent
    assert await asyncio.wait_for(task, 20) == 0
    assert runner.shutdown_steps == [
        "health",
        "grpc",
        "cancel",
        "nats-drain",
        "service-close",
        "nats-close",
        "metrics-close",
    ]
    assert service.events == ["start", "loop-cancelled", "close"]
    assert runner.stop_reason == "test"


async def test_a_crashed_loop_stops_the_process_with_exit_code_1(
    nats_server: NatsServerProcess, tmp_path: Path
) -> None:
    service = RecordingService(crash=True)
    runner = ProcessRunner(
        settings_for(nats_server.url), service, credentials=credentials_in(tmp_path)
    )
    assert await asyncio.wait_for(runner.run(), 20) == 1
    assert runner.stop_reason == "task loop crashed"
    assert "service-close" in runner.shutdown_steps


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_service_is_not_serving_until_nats_appears(tmp_path: Path) -> None:
    port = free_port()
    cluster = ServiceCluster(tmp_path / "svc", f"nats://127.0.0.1:{port}")
    nats = NatsServerProcess(NatsServerConfig(store_dir=tmp_path / "nats", port=port))
    try:
        process = await asyncio.to_thread(cluster.start, "policy")
        assert process.grpc_address is not None
        assert await check_health(process.grpc_address) == "NOT_SERVING"
        await asyncio.to_thread(nats.start)
        await process.wait_serving(timeout_s=20)
        # Losing NATS flips health back, and reconnecting restores it.
        await asyncio.to_thread(nats.kill)
        await eventually(lambda: _health_is(process.grpc_address, "NOT_SERVING"), timeout=15)
        await asyncio.to_thread(nats.start)
        await process.wait_serving(timeout_s=20)
        assert process.stop() == 0
    finally:
        cluster.stop_all()
        nats.stop()


async def _health_is(target: str | None, want: str) -> bool:
    assert target is not None
    return await check_health(target) == want


def test_invalid_configuration_exits_2_naming_the_key_without_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "SYMBI_SECURITY__DEFAULT_SANDBOX_TIER": "kvm", "SYMBI_CONFIG_PATH": ""}
    result = subprocess.run(
        [sys.executable, "-m", "symbi_policy"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "security.default_sandbox_tier = 'kvm'" in result.stderr
    assert "SYMBI_SECURITY__DEFAULT_SANDBOX_TIER" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigint_during_start_up_stops_the_process(tmp_path: Path) -> None:
    # NATS is unreachable, so the service is stuck connecting when the signal arrives.
    cluster = ServiceCluster(tmp_path / "svc", f"nats://127.0.0.1:{free_port()}")
    process = cluster.start("policy")
    assert process.process is not None
    process.process.send_signal(signal.SIGINT)
    assert process.process.wait(20) == 0


def test_missing_credentials_exit_2_naming_the_file(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SYMBI_SECURITY__KEYS_DIR": str(tmp_path / "nowhere"),
        "SYMBI_CONFIG_PATH": "",
    }
    result = subprocess.run(
        [sys.executable, "-m", "symbi_policy"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "missing credential file" in result.stderr
    assert str(tmp_path / "nowhere") in result.stderr
