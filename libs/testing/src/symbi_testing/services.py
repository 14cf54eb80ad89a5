"""Starting services as processes against a test NATS server."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from symbi_common.bus import ClusterAuthority
from symbi_common.errors import Unavailable
from symbi_common.grpc import ChannelOptions
from symbi_common.grpc.health import wait_for_health
from symbi_common.launcher import (
    NODE_SERVICES,
    ServiceProcess,
    credentials_to_issue,
    short_work_root,
)

__all__ = ["ServiceCluster"]


class ServiceCluster:
    """Service processes of one test; every one is stopped (or killed) at the end."""

    def __init__(
        self, base_dir: Path, nats_url: str | None, monitor_url: str | None = None
    ) -> None:
        self.base_dir = base_dir
        self.nats_url = nats_url
        self.monitor_url = monitor_url
        self.processes: list[ServiceProcess] = []
        self._count = 0
        self.keys_dir = base_dir / "keys"
        #: The test cluster's root: every started service gets credentials it signed.
        self.authority = ClusterAuthority.open(self.keys_dir)

    def env_for(
        self, service: str, instance: str, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        data_dir = self.base_dir / f"{service}-{instance}"
        for principal, role in credentials_to_issue(service, instance):
            self.authority.issue(principal, role)
        env = {
            "SYMBI_SECURITY__KEYS_DIR": str(self.keys_dir),
            "SYMBI_INSTANCE_ID": instance,
            "SYMBI_DATA_DIR": str(data_dir),
            "SYMBI_GRPC__PORT": "0",
            "SYMBI_TELEMETRY__METRICS_PORT": "0",
            "SYMBI_LOG_FORMAT": "console",
            "SYMBI_CONFIG_PATH": "",
            "PYTHONUNBUFFERED": "1",
        }
        if self.nats_url:
            env["SYMBI_NATS__URL"] = self.nats_url
        if self.monitor_url:
            env["SYMBI_NATS__MONITOR_URL"] = self.monitor_url
        if service in NODE_SERVICES:
            env["SYMBI_SANDBOX__WORK_ROOT"] = str(short_work_root(data_dir))
        env.update(extra or {})
        return env

    def start(
        self, service: str, *, instance: str | None = None, env: Mapping[str, str] | None = None
    ) -> ServiceProcess:
        """Start a service and wait for its ready line (not for SERVING)."""
        self._count += 1
        instance = instance or f"t{self._count}"
        process = ServiceProcess(
            service,
            self.env_for(service, instance, env),
            log_file=self.base_dir / "logs" / f"{service}-{instance}.log",
        )
        self.processes.append(process)
        process.start()
        return process

    async def start_serving(
        self,
        service: str,
        *,
        instance: str | None = None,
        env: Mapping[str, str] | None = None,
        tls: ChannelOptions | None = None,
        timeout_s: float = 20.0,
    ) -> ServiceProcess:
        """Start a service and wait until it is SERVING; ``tls``: the client certificate to
        ask with when the process listens with mTLS (see :class:`symbi_testing.tls.TestTls`)."""
        process = await asyncio.to_thread(self.start, service, instance=instance, env=env)
        if tls is None:
            await process.wait_serving(timeout_s)
            return process
        assert process.grpc_address is not None  # set by the ready line
        try:
            await wait_for_health(process.grpc_address, timeout_s=timeout_s, tls=tls)
        except TimeoutError as exc:
            tail = "\n".join(list(process.output_tail)[-25:])
            raise Unavailable(f"service {service}: {exc}; its output:\n{tail}") from None
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop(timeout_s=10)
        self.processes.clear()
