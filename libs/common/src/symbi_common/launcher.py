"""Starting Symbi services as local processes (``symbi up`` and the test harness).

A service prints ``SYMBI-READY service=… grpc=host:port metrics=host:port pid=…`` once its
gRPC server is bound (see :mod:`symbi_common.runner`); the launcher reads that line for the
ports (services run on port 0 locally), keeps draining the output into a log file and a
bounded tail, and can wait for gRPC health, stop (SIGTERM) or kill (SIGKILL) the process.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from symbi_common.errors import Unavailable
from symbi_common.grpc.health import wait_for_health
from symbi_common.runner import READY_PREFIX

__all__ = [
    "NODE_SERVICES",
    "SERVICES",
    "ServiceProcess",
    "credentials_to_issue",
    "issuer_for",
    "module_for",
    "principal_for",
    "short_work_root",
]

#: The seven services, in the order ``symbi up`` starts them.
SERVICES: tuple[str, ...] = (
    "audit",
    "policy",
    "lifecycle",
    "scheduler",
    "context",
    "mcp-gateway",
    "sandbox",
)


#: Services whose principal is a worker node rather than a service.
NODE_SERVICES = frozenset({"sandbox"})


def principal_for(service: str, instance: str) -> tuple[str, str]:
    """The principal id and role a service instance runs as (see ServiceSettings.principal_id)."""
    if service in NODE_SERVICES:
        return f"node-{instance}", "node"
    return f"svc-{service}-{instance}", "service"


def issuer_for(principal_id: str) -> str:
    """The issuer principal a worker node uses to certify its tasks' agent identities."""
    return f"{principal_id}-issuer"


def credentials_to_issue(service: str, instance: str) -> list[tuple[str, str]]:
    """Every (principal, role) a service instance needs credentials for."""
    principal, role = principal_for(service, instance)
    needed = [(principal, role)]
    if role == "node":
        needed.append((issuer_for(principal), "issuer"))
    return needed


def short_work_root(data_dir: Path) -> Path:
    """A short directory for a worker node's per-task sockets (Unix socket paths are limited to
    107 bytes, so they cannot live under a deep data directory), unique per data directory."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return Path("/tmp") / f"symbi-{digest}"


def module_for(service: str) -> str:
    """``mcp-gateway`` → ``symbi_mcp_gateway``."""
    return "symbi_" + service.replace("-", "_")


class ServiceProcess:
    """One service process started with ``python -m symbi_<name>``."""

    def __init__(
        self,
        service: str,
        env: Mapping[str, str],
        *,
        log_file: Path | None = None,
        cwd: Path | None = None,
        python: str = sys.executable,
    ) -> None:
        self.service = service
        self.env = {**os.environ, **env}
        self.log_file = log_file
        self.cwd = cwd
        self.python = python
        self.process: subprocess.Popen[bytes] | None = None
        self.grpc_address: str | None = None
        self.metrics_address: str | None = None
        self.output_tail: collections.deque[str] = collections.deque(maxlen=300)
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def _read_output(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        handle = self.log_file.open("ab") if self.log_file else None
        try:
            for raw in iter(self.process.stdout.readline, b""):
                if handle is not None:
                    handle.write(raw)
                    handle.flush()
                line = raw.decode(errors="replace").rstrip()
                self.output_tail.append(line)
                if line.startswith(READY_PREFIX):
                    fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
                    self.grpc_address = fields.get("grpc")
                    metrics = fields.get("metrics")
                    self.metrics_address = None if metrics in (None, "off") else metrics
                    self._ready.set()
        finally:
            if handle is not None:
                handle.close()

    def spawn(self) -> ServiceProcess:
        """Start the process without waiting for it."""
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [self.python, "-m", module_for(self.service)],
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor, which stops us in order
        )
        self._reader = threading.Thread(
            target=self._read_output, daemon=True, name=f"out-{self.service}"
        )
        self._reader.start()
        return self

    def _not_ready(self, timeout_s: float) -> Unavailable:
        code = self.process.poll() if self.process else None
        if code is None:
            self.kill()
        tail = "\n".join(list(self.output_tail)[-25:])
        why = f"exited with code {code}" if code is not None else f"not ready in {timeout_s:.0f} s"
        return Unavailable(f"service {self.service} {why}; its output:\n{tail}")

    def wait_ready(self, timeout_s: float = 30.0) -> ServiceProcess:
        """Block until the ready line (gRPC bound; health may still be NOT_SERVING)."""
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.02):
            if (
                self.process is None
                or self.process.poll() is not None
                or time.monotonic() > deadline
            ):
                raise self._not_ready(timeout_s)
        return self

    async def wait_ready_async(self, timeout_s: float = 30.0) -> ServiceProcess:
        """The same, cancellable from the event loop."""
        deadline = time.monotonic() + timeout_s
        while not self._ready.is_set():
            if (
                self.process is None
                or self.process.poll() is not None
                or time.monotonic() > deadline
            ):
                raise self._not_ready(timeout_s)
            await asyncio.sleep(0.02)
        return self

    def start(self, timeout_s: float = 30.0) -> ServiceProcess:
        """Spawn and wait for the ready line."""
        return self.spawn().wait_ready(timeout_s)

    async def wait_serving(self, timeout_s: float = 20.0) -> None:
        if self.grpc_address is None:
            raise Unavailable(f"service {self.service} is not started")
        try:
            await wait_for_health(self.grpc_address, timeout_s=timeout_s)
        except TimeoutError as exc:
            tail = "\n".join(list(self.output_tail)[-25:])
            raise Unavailable(f"service {self.service}: {exc}; its output:\n{tail}") from None

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM and wait for the orderly shutdown; SIGKILL after the timeout."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=2)
        return process.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=2)
