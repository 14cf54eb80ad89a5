"""The local platform behind ``symbi up``: embedded NATS plus the seven services as processes.

Everything lives under one data directory (default ``.symbi/``)::

    .symbi/state.json          where each part listens, and its pid (read by status and down)
    .symbi/keys/               the cluster root and every principal's key, certificate, NKey
    .symbi/keys/tls/           with ``--tls``: the gRPC CA, each service's and the operator's
                               X.509 certificate (see :mod:`symbi_cli.local_tls`)
    .symbi/nats/               the JetStream store and the server's config
    .symbi/services/<name>/    each service's own data (keys, embedded stores)
    .symbi/logs/<name>.log     each process's output

The supervisor (the ``symbi up`` process) owns the children: it starts them in their own
process groups so a terminal's Ctrl-C reaches only the supervisor, which then stops them in
order (services in reverse start order, then NATS). ``symbi down`` signals the supervisor, and
cleans up children itself if the supervisor died.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from symbi_cli.local_tls import LocalTls, client_options, prepare_local_tls, server_environment
from symbi_common.bus import ClusterAuthority
from symbi_common.bus.credentials import nkey_public
from symbi_common.bus.permissions import NatsUser, authorization_block
from symbi_common.crypto.identity import Certificate
from symbi_common.errors import FailedPrecondition, Unavailable
from symbi_common.grpc import ChannelOptions
from symbi_common.grpc.health import check_health, wait_for_health
from symbi_common.jetstream.server import NatsServerConfig, NatsServerProcess
from symbi_common.launcher import (
    NODE_SERVICES,
    SERVICES,
    ServiceProcess,
    credentials_to_issue,
    principal_for,
    short_work_root,
)

__all__ = [
    "DEFAULT_PORTS",
    "LocalPlatform",
    "PlatformState",
    "pid_alive",
    "read_state",
]

log = logging.getLogger(__name__)

STATE_FILE = "state.json"

#: Default gRPC and metrics ports of each service on one machine (``--ephemeral`` picks free ones).
DEFAULT_PORTS: dict[str, tuple[int, int]] = {
    "scheduler": (50051, 9464),
    "lifecycle": (50052, 9465),
    "policy": (50053, 9466),
    "audit": (50054, 9467),
    "context": (50055, 9468),
    "mcp-gateway": (50056, 9469),
    "sandbox": (50057, 9470),
}
DEFAULT_NATS_PORT = 4222
DEFAULT_NATS_MONITOR_PORT = 8222


CLI_PRINCIPAL = "svc-cli-local"


def nats_users(keys_dir: Path) -> list[NatsUser]:
    """A NATS user for every principal in ``keys_dir`` that has a certificate and an NKey and
    is not revoked (``<id>.revoked``). Issuers and the root never connect."""
    users = []
    for cert_file in sorted(keys_dir.glob("*.cert")):
        principal = cert_file.stem
        nkey_file = keys_dir / f"{principal}.nkey"
        if not nkey_file.is_file() or (keys_dir / f"{principal}.revoked").exists():
            continue
        role = Certificate.load(cert_file).role
        if role in ("root", "issuer"):
            continue
        users.append(NatsUser(principal, role, nkey_public(nkey_file.read_text().strip())))
    return users


def write_nats_users(data_dir: Path) -> Path:
    """Render ``nats/auth.conf`` (included by the server's config) from the keys directory."""
    path = data_dir / "nats" / "auth.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(authorization_block(nats_users(data_dir / "keys")))
    tmp.replace(path)
    return path


def reload_nats(state: PlatformState) -> bool:
    """Re-read the users of a running local NATS (SIGHUP); False when it is not running."""
    if not pid_alive(state.nats_pid):
        return False
    assert state.nats_pid is not None
    os.kill(state.nats_pid, signal.SIGHUP)
    return True


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists": check it is not defunct.
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()[0]
        if status == "Z":
            return False
    return True


@dataclass
class PlatformState:
    """What ``state.json`` records."""

    data_dir: str
    supervisor_pid: int
    nats_url: str = ""
    nats_monitor_url: str | None = None
    nats_pid: int | None = None
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: str = "starting"  # starting | running | stopping | failed
    error: str = ""
    #: With ``symbi up --tls``: the CA and the operator's certificate (LocalTls.as_state).
    tls: dict[str, str] | None = None

    @property
    def local_tls(self) -> LocalTls | None:
        return LocalTls.from_state(self.tls)

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=2))
        tmp.replace(path)


def read_state(data_dir: Path) -> PlatformState | None:
    path = data_dir / STATE_FILE
    try:
        return PlatformState(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise FailedPrecondition(
            f"{path} is corrupt ({exc}); remove it and run `symbi down`"
        ) from None


@dataclass
class LocalPlatform:
    """Starts and stops the embedded platform under one data directory."""

    data_dir: Path
    ephemeral_ports: bool = False
    services: Sequence[str] = SERVICES
    start_timeout_s: float = 20.0
    env: dict[str, str] = field(default_factory=dict)
    #: gRPC over mTLS (``symbi up --tls``): certificates issued, every service's ``[grpc]
    #: tls_*`` set, the operator made a member of ``Role::"operators"``.
    tls: bool = False
    on_progress: Callable[[str], None] = lambda message: None

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.nats: NatsServerProcess | None = None
        self.processes: dict[str, ServiceProcess] = {}
        self.state = PlatformState(data_dir=str(self.data_dir), supervisor_pid=os.getpid())
        self._stopped = False
        self.keys_dir = self.data_dir / "keys"
        self.local_tls: LocalTls | None = None

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    def _check_not_running(self) -> None:
        existing = read_state(self.data_dir)
        if (
            existing is not None
            and pid_alive(existing.supervisor_pid)
            and existing.supervisor_pid != os.getpid()
        ):
            raise FailedPrecondition(
                f"the platform is already running from {self.data_dir} (pid {existing.supervisor_pid}); "
                "`symbi status` shows it, `symbi down` stops it"
            )

    def _service_env(self, service: str) -> dict[str, str]:
        grpc_port, metrics_port = (0, 0) if self.ephemeral_ports else DEFAULT_PORTS[service]
        assert self.nats is not None
        env = {
            "SYMBI_SECURITY__KEYS_DIR": str(self.keys_dir),
            "SYMBI_INSTANCE_ID": "local",
            "SYMBI_DATA_DIR": str(self.data_dir / "services" / service),
            "SYMBI_GRPC__PORT": str(grpc_port),
            "SYMBI_TELEMETRY__METRICS_PORT": str(metrics_port),
            "SYMBI_NATS__URL": self.nats.url,
            "PYTHONUNBUFFERED": "1",
        }
        if self.nats.monitor_url:
            env["SYMBI_NATS__MONITOR_URL"] = self.nats.monitor_url
        if service in NODE_SERVICES:
            env["SYMBI_SANDBOX__WORK_ROOT"] = str(short_work_root(self.data_dir))
        if self.local_tls is not None:
            principal, _ = principal_for(service, "local")
            env.update(server_environment(self.data_dir, principal))
            if service == "policy":
                # The policy service writes the membership itself at start (ADR 0012 addendum).
                env["SYMBI_POLICY__OPERATORS"] = json.dumps([self.local_tls.operator])
        env.update(self.env)
        return env

    def _save(self) -> None:
        self.state.services = {
            name: {
                "pid": p.pid,
                "grpc": p.grpc_address,
                "metrics": p.metrics_address,
                "log": str(p.log_file) if p.log_file else None,
            }
            for name, p in self.processes.items()
        }
        self.state.write(self.state_path)

    def issue_credentials(self) -> None:
        """The cluster root (created once), every service's credentials, the CLI's own
        (``svc-cli-local``, for admin operations), and the NATS users of all of them."""
        authority = ClusterAuthority.open(self.keys_dir)
        for service in self.services:
            for principal, role in credentials_to_issue(service, "local"):
                authority.issue(principal, role)
        authority.issue(CLI_PRINCIPAL, "service")
        write_nats_users(self.data_dir)
        if self.tls:
            self.local_tls = prepare_local_tls(
                self.data_dir, [principal_for(service, "local") for service in self.services]
            )
            self.state.tls = self.local_tls.as_state()

    def start_nats(self) -> NatsServerProcess:
        port = 0 if self.ephemeral_ports else DEFAULT_NATS_PORT
        monitor = 0 if self.ephemeral_ports else DEFAULT_NATS_MONITOR_PORT
        self.on_progress("starting NATS JetStream")
        self.nats = NatsServerProcess(
            NatsServerConfig(
                store_dir=self.data_dir / "nats",
                port=port,
                monitor_port=monitor,
                log_file=self.data_dir / "logs" / "nats.log",
                extra='include "auth.conf"',  # NKey users; rewritten by `symbi keys`, then reloaded
            )
        )
        self.nats.start()
        self.state.nats_url = self.nats.url
        self.state.nats_monitor_url = self.nats.monitor_url
        self.state.nats_pid = self.nats.process.pid if self.nats.process else None
        return self.nats

    async def start(self) -> None:
        """Start NATS and every service; returns once all are SERVING (or raises)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        self._check_not_running()
        self.state.write(self.state_path)
        self.on_progress("issuing credentials")
        await asyncio.to_thread(self.issue_credentials)
        await asyncio.to_thread(self.start_nats)
        self._save()
        for name in self.services:
            self.on_progress(f"starting {name}")
            process = ServiceProcess(
                name, self._service_env(name), log_file=self.data_dir / "logs" / f"{name}.log"
            )
            self.processes[name] = process
            process.spawn()  # all at once: each takes a moment to import
        self._save()
        for process in self.processes.values():
            await process.wait_ready_async(self.start_timeout_s)
        self._save()
        deadline = time.monotonic() + self.start_timeout_s
        tls = self.local_tls.options() if self.local_tls is not None else None
        for name, process in self.processes.items():
            remaining = max(1.0, deadline - time.monotonic())
            if tls is None:
                await process.wait_serving(timeout_s=remaining)
            else:
                await _wait_serving_tls(process, tls, remaining)
            self.on_progress(f"{name} is SERVING on {process.grpc_address}")
        self.state.status = "running"
        self._save()

    async def watch(self, stop: asyncio.Event) -> None:
        """Until ``stop``: report children that die (they are not restarted: the log says why)."""
        reported: set[str] = set()
        while not stop.is_set():
            for name, process in self.processes.items():
                if name not in reported and process.returncode is not None:
                    reported.add(name)
                    self.on_progress(
                        f"{name} exited with code {process.returncode}; see {process.log_file}"
                    )
            if self.nats is not None and not self.nats.running and "nats" not in reported:
                reported.add("nats")
                self.on_progress("NATS exited; see the nats log")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)

    def stop(self) -> None:
        """Stop services in reverse order, then NATS; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.state.status = "stopping"
        with contextlib.suppress(OSError):
            self._save()
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.returncode is None:
                self.on_progress(f"stopping {name}")
            process.stop(timeout_s=15)
        if self.nats is not None:
            self.on_progress("stopping NATS")
            self.nats.stop()
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()


async def _wait_serving_tls(process: ServiceProcess, tls: ChannelOptions, timeout_s: float) -> None:
    # ServiceProcess.wait_serving asks in plaintext; a TLS listener answers only over mTLS.
    if process.grpc_address is None:
        raise Unavailable(f"service {process.service} is not started")
    try:
        await wait_for_health(process.grpc_address, timeout_s=timeout_s, tls=tls)
    except TimeoutError as exc:
        tail = "\n".join(list(process.output_tail)[-25:])
        raise Unavailable(f"service {process.service}: {exc}; its output:\n{tail}") from None


async def service_health(
    state: PlatformState, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """Health of every service recorded in ``state`` (``DOWN`` when its process is gone),
    over mTLS when the platform was started with ``--tls``."""
    tls = client_options(state.local_tls, environ)

    async def one(info: dict[str, Any]) -> str:
        if not pid_alive(info.get("pid")):
            return "DOWN"
        if not info.get("grpc"):
            return "STARTING"
        return await check_health(info["grpc"], timeout_s=2.0, tls=tls)

    names = list(state.services)
    results = await asyncio.gather(*(one(state.services[n]) for n in names))
    return dict(zip(names, results, strict=True))


def stop_recorded(state: PlatformState, timeout_s: float = 30.0) -> list[int]:
    """Stop a platform from its state file: the supervisor first, then any survivor.

    Returns the pids that had to be killed because they ignored SIGTERM.
    """
    killed: list[int] = []
    if pid_alive(state.supervisor_pid) and state.supervisor_pid != os.getpid():
        os.kill(state.supervisor_pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while pid_alive(state.supervisor_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    # Whatever the supervisor did not stop (it may have been killed): children, then NATS.
    pids = [info.get("pid") for info in state.services.values()] + [state.nats_pid]
    for pid in pids:
        if pid_alive(pid):
            assert pid is not None
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for pid in pids:
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    if pid_alive(state.supervisor_pid):
        os.kill(state.supervisor_pid, signal.SIGKILL)
        killed.append(state.supervisor_pid)
    with contextlib.suppress(FileNotFoundError):
        (Path(state.data_dir) / STATE_FILE).unlink()
    return killed


def require_state(data_dir: Path) -> PlatformState:
    state = read_state(data_dir.resolve())
    if state is None:
        raise Unavailable(
            f"the platform is not running from {data_dir.resolve()} (no {STATE_FILE}); start it with `symbi up`"
        )
    return state
