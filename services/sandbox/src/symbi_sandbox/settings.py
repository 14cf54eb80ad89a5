"""Settings of the sandbox service (see symbi_common.config for the shared sections).

``[sandbox]`` (environment ``SYMBI_SANDBOX__<KEY>``) configures this worker node: where task
directories live, the node's default and maximum task limits, its labels, how often it
heartbeats, and the agent channel's bounds. The default tier comes from ``[sandbox]
default_tier`` when set, else from the platform's ``[security] default_sandbox_tier``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator

from symbi_common.config import GrpcSection, Section, ServiceSettings, TelemetrySection

__all__ = ["SandboxSection", "SandboxSettings"]

# Task directories hold the agent socket, <work_root>/<16 hex>/channel/agent.sock, and a Unix
# socket path has at most 107 bytes.
MAX_WORK_ROOT_CHARS = 64


class SandboxSection(Section):
    """``[sandbox]``: this worker node."""

    #: Tier of tasks that ask for none (``None``: ``[security] default_sandbox_tier``).
    default_tier: Literal["docker", "gvisor"] | None = None
    #: Per-task directories (agent socket, code). Default ``<data_dir>/tasks``; keep it short.
    work_root: Path | None = None
    #: dockerd's URL (``None``: ``DOCKER_HOST`` or the local socket).
    docker_url: str | None = None
    #: The dockerd runtimes of the two tiers (a tier whose runtime is not registered, or
    #: whose probe fails, is not offered: tasks that need it are refused).
    docker_runtime: str = Field("runc", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    gvisor_runtime: str = Field("runsc", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    #: Seconds between node heartbeats (contract C3: 1 s).
    heartbeat_interval_s: float = Field(1.0, gt=0, le=60)
    #: Labels advertised to the scheduler (placement constraints).
    labels: dict[str, str] = Field(default_factory=dict)
    max_concurrent_tasks: int = Field(32, ge=1, le=4096)
    #: Task assignments being started at once (container create + start).
    start_concurrency: int = Field(4, ge=1, le=64)

    default_memory_mb: int = Field(256, ge=16)
    max_memory_mb: int = Field(8192, ge=16)
    default_cpu_millicores: int = Field(1000, ge=1)
    max_cpu_millicores: int = Field(2000, ge=1)
    default_processes: int = Field(64, ge=2)
    max_processes: int = Field(1024, ge=2)
    default_timeout_s: float = Field(300.0, gt=0)
    max_timeout_s: float = Field(86_400.0, gt=0)
    tmpfs_mb: int = Field(64, ge=1, le=65_536)
    #: I/O limits (megabits/s) of tasks that ask for none; 0 = unlimited. Disk: blkio
    #: throttling of the disk under Docker's data root (runc tier only); network: the
    #: egress proxy, both directions, all of a task's tunnels together.
    default_disk_io_mbps: int = Field(0, ge=0, le=1_000_000)
    default_network_io_mbps: int = Field(0, ge=0, le=1_000_000)
    #: Bytes a rate-limited task may send at once after being idle.
    egress_burst_bytes: int = Field(65_536, ge=1024, le=64 * 1024 * 1024)

    #: Grace before SIGKILL for a TaskStop or gRPC Kill that names none, and for preemptions.
    stop_grace_s: float = Field(10.0, ge=0, le=600)
    preempt_grace_s: float = Field(5.0, ge=0, le=600)
    #: Grace the running tasks get when the service itself stops.
    shutdown_grace_s: float = Field(2.0, ge=0, le=60)
    #: Per-task uids (ADR 0061): [uid_base, uid_base + uid_count).
    uid_base: int = Field(200_000, ge=1000)
    uid_count: int = Field(4096, ge=1, le=1_000_000)

    #: Run a trivial container on every registered tier at start; only working tiers are offered.
    probe_tiers: bool = True
    probe_image: str = "symbi/busybox"

    #: Agent channel: calls per second per task (and burst), per-call deadline.
    channel_rate_per_s: float = Field(500.0, gt=0)
    channel_burst: int = Field(1000, ge=1)
    channel_call_timeout_s: float = Field(30.0, gt=0, le=600)
    #: Egress: networks agents may never reach, and exceptions to them (e.g. 127.0.0.0/8 in
    #: tests). ``None``: the built-in list of node-local and private networks.
    egress_blocked_networks: list[str] | None = None
    egress_allowed_networks: list[str] = Field(default_factory=list)
    #: Deadline of a policy decision asked over the bus (a missing answer denies).
    policy_timeout_s: float = Field(2.0, gt=0, le=60)
    #: Agent certificates are valid for the task's timeout plus this.
    agent_certificate_margin_s: float = Field(300.0, ge=60, le=86_400)
    #: Task output on the bus (``symbi.task.output.<task>``): bytes published per task before
    #: one ``truncated`` marker (0: no output on the bus), bytes per message, and how long
    #: output is coalesced into one message.
    output_max_bytes: int = Field(1024 * 1024, ge=0, le=64 * 1024 * 1024)
    output_chunk_bytes: int = Field(16 * 1024, ge=256, le=256 * 1024)
    output_linger_ms: int = Field(100, ge=0, le=5000)
    #: The latest output kept per task for gRPC ``Logs`` after (and during) a run.
    log_buffer_bytes: int = Field(1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024)
    #: How long finished dispatch ids are remembered (at-most-once start) when the order
    #: carries no not_after.
    dispatch_retention_s: float = Field(86_400.0, ge=60)

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key or len(key) > 128:
                raise ValueError("label names must be 1-128 characters")
        return value

    @field_validator("work_root")
    @classmethod
    def _check_work_root(cls, value: Path | None) -> Path | None:
        if value is not None and len(str(value.absolute())) > MAX_WORK_ROOT_CHARS:
            raise ValueError(
                f"must be at most {MAX_WORK_ROOT_CHARS} characters: agent sockets live below it "
                "and a Unix socket path is limited to 107 bytes"
            )
        return value

    @model_validator(mode="after")
    def _check_limits(self) -> Self:
        pairs = (
            ("default_memory_mb", "max_memory_mb"),
            ("default_cpu_millicores", "max_cpu_millicores"),
            ("default_processes", "max_processes"),
            ("default_timeout_s", "max_timeout_s"),
        )
        for low, high in pairs:
            if getattr(self, low) > getattr(self, high):
                raise ValueError(
                    f"{low} ({getattr(self, low)}) exceeds {high} ({getattr(self, high)})"
                )
        return self


class SandboxSettings(ServiceSettings):
    service_name: ClassVar[str] = "sandbox"
    principal_role: ClassVar[str] = "node"  # the sandbox speaks for its worker node

    grpc: GrpcSection = GrpcSection(port=50057)
    telemetry: TelemetrySection = TelemetrySection(metrics_port=9470)
    sandbox: SandboxSection = SandboxSection()

    @property
    def default_tier(self) -> str:
        return self.sandbox.default_tier or self.security.default_sandbox_tier

    @property
    def work_root(self) -> Path:
        return (self.sandbox.work_root or self.data_dir / "tasks").absolute()
