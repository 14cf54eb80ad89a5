"""The hardened container specification every task gets, as one pure function.

Nothing here is optional per task: no network interface (``network_mode="none"``; granted
egress goes through the channel's proxy), a read-only root with a private ``noexec`` tmpfs
``/tmp``, every capability dropped, ``no-new-privileges``, a non-root user of its own, memory
with swap disabled, a CPU quota, a process limit, bounded on-disk logs and labels naming the
task, the agent and the node. The wall-clock timeout is enforced by the runner. A task with
a ``disk_io_mbps`` limit gets ``device_read_bps``/``device_write_bps`` on the disk holding
Docker's data root (found by the runner, ``blockdev.py``); its ``network_io_mbps`` is
enforced by the channel's egress proxy, the container having no interface.

The process limit is ``ulimit nproc`` on both runtimes (Debian's runsc refuses ``pids_limit``);
on runc ``pids_limit`` is set as well. RLIMIT_NPROC counts processes per user id across the
whole host, so each running task gets its own uid from the node's range: tasks cannot exhaust
each other's process budget, and cannot read each other's files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any

from symbi_sandbox.task import ResolvedLimits, TaskSpec
from symbi_sandbox.tiers import Tier

__all__ = [
    "AGENT_CODE_DIR",
    "AGENT_SDK_DIR",
    "CHANNEL_DIR",
    "CHANNEL_SOCKET",
    "LABEL_AGENT",
    "LABEL_ATTEMPT",
    "LABEL_DISPATCH",
    "LABEL_INSTANCE",
    "LABEL_MANAGED",
    "LABEL_NODE",
    "LABEL_TASK",
    "LABEL_TIER",
    "BindMount",
    "ContainerSpec",
    "build_container_spec",
    "container_name",
]

LABEL_MANAGED = "org.symbi.sandbox"
LABEL_TASK = "org.symbi.task"
LABEL_AGENT = "org.symbi.agent"
LABEL_NODE = "org.symbi.node"
LABEL_INSTANCE = "org.symbi.instance"
LABEL_ATTEMPT = "org.symbi.attempt"
LABEL_TIER = "org.symbi.tier"
LABEL_DISPATCH = "org.symbi.dispatch"

CHANNEL_DIR = "/run/symbi"
CHANNEL_SOCKET = f"{CHANNEL_DIR}/agent.sock"
AGENT_SDK_DIR = "/opt/symbi/sdk"
AGENT_CODE_DIR = "/agent"

_LOG_MAX_SIZE = "16m"


@dataclass(frozen=True)
class BindMount:
    """A host directory mounted into the container (always read-only)."""

    source: str
    target: str


@dataclass(frozen=True)
class ContainerSpec:
    """Everything Docker is told about one task's container."""

    name: str
    image: str
    command: tuple[str, ...]
    runtime: str
    tier: Tier
    user: str
    env: Mapping[str, str]
    labels: Mapping[str, str]
    limits: ResolvedLimits
    mounts: tuple[BindMount, ...] = ()
    #: The disk throttled for ``limits.disk_io_mbps`` (``/dev/…``); required when it is set.
    disk_device: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def disk_bytes_per_s(self) -> int:
        """``disk_io_mbps`` in bytes/s (megabits: × 125 000); 0 = unlimited."""
        return self.limits.disk_io_mbps * 125_000

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``docker.DockerClient.containers.create`` (and ``run``)."""
        from docker.types import LogConfig, Ulimit

        nproc = self.limits.max_processes
        kwargs: dict[str, Any] = {
            "image": self.image,
            "command": list(self.command) or None,
            "name": self.name,
            "runtime": self.runtime,
            "user": self.user,
            "environment": dict(self.env),
            "labels": dict(self.labels),
            "network_mode": "none",
            "read_only": True,
            "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,size={self.limits.tmpfs_mb}m,mode=1777"},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "mem_limit": f"{self.limits.memory_mb}m",
            "memswap_limit": f"{self.limits.memory_mb}m",
            "cpu_period": 100_000,
            "cpu_quota": self.limits.cpu_millicores * 100,
            "ulimits": [Ulimit(name="nproc", soft=nproc, hard=nproc)],
            "log_config": LogConfig(
                type="json-file", config={"max-size": _LOG_MAX_SIZE, "max-file": "1"}
            ),
            "working_dir": "/tmp",
            "hostname": "sandbox",
            "stdin_open": False,
            "tty": False,
            "volumes": {m.source: {"bind": m.target, "mode": "ro"} for m in self.mounts},
            "detach": True,
        }
        if self.limits.disk_io_mbps > 0:
            if self.disk_device is None:
                raise ValueError("a disk_io_mbps limit needs the disk to throttle")
            rate = [{"Path": self.disk_device, "Rate": self.disk_bytes_per_s}]
            kwargs["device_read_bps"] = rate
            kwargs["device_write_bps"] = list(rate)
        if self.tier is Tier.DOCKER:
            # Per-container cgroup limit as well; runsc (Debian 2022) fails to start with it.
            kwargs["pids_limit"] = nproc
        kwargs.update(self.extra)
        return kwargs


def container_name(task_id: str, attempt: int) -> str:
    """Docker container name of a task attempt (unique on a node)."""
    return f"symbi-{task_id}-a{attempt}"


def build_container_spec(
    task: TaskSpec,
    *,
    tier: Tier,
    runtime: str,
    limits: ResolvedLimits,
    node_id: str,
    instance_id: str,
    uid: int,
    channel_dir: str | None = None,
    sdk_dir: str | None = None,
    code_dir: str | None = None,
    disk_device: str | None = None,
) -> ContainerSpec:
    """The hardened spec for ``task`` (pure: no I/O)."""
    env = dict(task.env)
    env.update(
        {
            "SYMBI_TASK_ID": task.task_id,
            "SYMBI_AGENT_ID": task.agent_id,
            "HOME": "/tmp",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    mounts: list[BindMount] = []
    if channel_dir is not None:
        mounts.append(BindMount(channel_dir, CHANNEL_DIR))
        env["SYMBI_AGENT_SOCKET"] = CHANNEL_SOCKET
    if sdk_dir is not None:
        mounts.append(BindMount(sdk_dir, AGENT_SDK_DIR))
        existing = env.get("PYTHONPATH")
        env["PYTHONPATH"] = AGENT_SDK_DIR + (f":{existing}" if existing else "")
    if code_dir is not None:
        mounts.append(BindMount(code_dir, AGENT_CODE_DIR))
    if task.network:
        # The agent SDK starts a local HTTP proxy bridged over the channel when it sees this.
        env["SYMBI_EGRESS"] = "proxy"
    for mount in mounts:
        if not PurePosixPath(mount.source).is_absolute():
            raise ValueError(f"bind mount source must be absolute: {mount.source!r}")
    labels = {
        LABEL_MANAGED: "1",
        LABEL_TASK: task.task_id,
        LABEL_AGENT: task.agent_id,
        LABEL_NODE: node_id,
        LABEL_INSTANCE: instance_id,
        LABEL_ATTEMPT: str(task.attempt),
        LABEL_TIER: tier.label,
    }
    if task.dispatch_id:
        labels[LABEL_DISPATCH] = task.dispatch_id
    return ContainerSpec(
        name=container_name(task.task_id, task.attempt),
        image=task.image,
        command=tuple(task.command),
        runtime=runtime,
        tier=tier,
        user=f"{uid}:{uid}",
        env=MappingProxyType(env),
        labels=MappingProxyType(labels),
        limits=limits,
        mounts=tuple(mounts),
        disk_device=disk_device if limits.disk_io_mbps > 0 else None,
    )
