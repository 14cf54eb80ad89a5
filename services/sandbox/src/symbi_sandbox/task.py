"""What a task is: the validated input of the runner.

:class:`TaskSpec` mirrors ``symbi.bus.v1.TaskAssignment`` / ``symbi.sandbox.v1.RunRequest``;
building one validates every field and raises :class:`InvalidArgument` naming the field, so a
malformed task is refused before anything touches Docker. Identifiers are restricted because
they become container names, label values and directory names on the node.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from symbi_common.errors import InvalidArgument
from symbi_sandbox.risk import RiskProfile
from symbi_sandbox.tiers import Tier

__all__ = ["LimitPolicy", "ResolvedLimits", "ResourceLimits", "TaskSpec"]

_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,254}")
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/:@-]{0,254}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
RESERVED_ENV_PREFIX = "SYMBI_"
MAX_COMMAND_ARGS = 256
MAX_ARG_BYTES = 64 * 1024
MAX_ENV_VARS = 128
MAX_CODE_BYTES = 16 * 1024 * 1024


def _bad(field_name: str, message: str, value: object) -> InvalidArgument:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return InvalidArgument(
        f"task.{field_name}: {message} (got {shown})",
        reason="MALFORMED_TASK",
        details={"field": field_name},
    )


@dataclass(frozen=True)
class ResourceLimits:
    """Requested limits; ``None`` means the node's default. Mirrors ``common.v1.ResourceLimits``.

    ``disk_io_mbps`` and ``network_io_mbps`` are megabits per second (× 125 000 = bytes/s):
    block-device read and write throughput of the container, and egress throughput through
    the channel's proxy (both directions, all of the task's tunnels together).
    """

    memory_mb: int | None = None
    cpu_millicores: int | None = None
    max_processes: int | None = None
    timeout_s: float | None = None
    disk_io_mbps: int | None = None
    network_io_mbps: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "memory_mb",
            "cpu_millicores",
            "max_processes",
            "disk_io_mbps",
            "network_io_mbps",
        ):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise _bad(f"limits.{name}", "must be a positive integer", value)
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise _bad("limits.timeout_s", "must be a positive number of seconds", self.timeout_s)


@dataclass(frozen=True)
class ResolvedLimits:
    """The limits a container actually gets; every field set (I/O: 0 = unlimited)."""

    memory_mb: int
    cpu_millicores: int
    max_processes: int
    timeout_s: float
    tmpfs_mb: int
    disk_io_mbps: int = 0
    network_io_mbps: int = 0


@dataclass(frozen=True)
class LimitPolicy:
    """A node's defaults and ceilings for task limits."""

    default: ResolvedLimits = field(
        default_factory=lambda: ResolvedLimits(
            memory_mb=256, cpu_millicores=1000, max_processes=64, timeout_s=300.0, tmpfs_mb=64
        )
    )
    maximum: ResolvedLimits = field(
        default_factory=lambda: ResolvedLimits(
            memory_mb=8192,
            cpu_millicores=2000,
            max_processes=1024,
            timeout_s=86400.0,
            tmpfs_mb=1024,
        )
    )
    # Below this a container cannot even start its runtime (gVisor's sentry needs ~20 MB).
    minimum_memory_mb: int = 16

    def resolve(self, requested: ResourceLimits) -> ResolvedLimits:
        """Fills defaults in and refuses anything above the node's ceiling."""
        resolved = ResolvedLimits(
            memory_mb=requested.memory_mb or self.default.memory_mb,
            cpu_millicores=requested.cpu_millicores or self.default.cpu_millicores,
            max_processes=requested.max_processes or self.default.max_processes,
            timeout_s=requested.timeout_s or self.default.timeout_s,
            tmpfs_mb=self.default.tmpfs_mb,
            disk_io_mbps=requested.disk_io_mbps or self.default.disk_io_mbps,
            network_io_mbps=requested.network_io_mbps or self.default.network_io_mbps,
        )
        for name in ("memory_mb", "cpu_millicores", "max_processes", "timeout_s"):
            value, ceiling = getattr(resolved, name), getattr(self.maximum, name)
            if value > ceiling:
                raise InvalidArgument(
                    f"task.limits.{name} = {value} exceeds this node's maximum {ceiling}",
                    reason="LIMIT_TOO_HIGH",
                    details={"field": f"limits.{name}", "maximum": str(ceiling)},
                )
        if resolved.memory_mb < self.minimum_memory_mb:
            raise InvalidArgument(
                f"task.limits.memory_mb = {resolved.memory_mb} is below the minimum "
                f"{self.minimum_memory_mb} a sandbox needs",
                reason="LIMIT_TOO_LOW",
                details={"field": "limits.memory_mb", "minimum": str(self.minimum_memory_mb)},
            )
        return resolved


@dataclass(frozen=True)
class TaskSpec:
    """One task to run in a sandbox. Construction validates; invalid input raises.

    ``tier`` is the explicitly requested tier (``None``: risk assessment or node default);
    ``min_tier`` is a floor set by policy. ``code`` is mounted read-only at ``/agent``: a tar
    archive (optionally gzip-compressed) is unpacked there, anything else becomes
    ``/agent/main.py``. ``network`` asks for egress through the channel's proxy; the container
    itself never gets a network interface. ``channel`` mounts the agent socket.
    ``dispatch_id`` names the scheduler's dispatch this run belongs to (empty for direct
    runs); it is carried on the container's labels so that a run found after a crash is
    reported against the right dispatch.
    """

    task_id: str
    agent_id: str
    image: str
    command: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    tier: Tier | None = None
    min_tier: Tier | None = None
    risk: RiskProfile | None = None
    code: bytes = b""
    network: bool = False
    channel: bool = True
    attempt: int = 1
    dispatch_id: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.task_id, str) or not _TASK_ID.fullmatch(self.task_id):
            raise _bad(
                "task_id", "must be 1-128 of [A-Za-z0-9_.-], starting alphanumeric", self.task_id
            )
        if not isinstance(self.agent_id, str) or not _AGENT_ID.fullmatch(self.agent_id):
            raise _bad(
                "agent_id",
                "must be 1-255 of [A-Za-z0-9_.:@/-], starting alphanumeric",
                self.agent_id,
            )
        if not isinstance(self.image, str) or not _IMAGE.fullmatch(self.image):
            raise _bad(
                "image", "must be an image reference such as symbi/python:latest", self.image
            )
        command = tuple(self.command)
        if len(command) > MAX_COMMAND_ARGS:
            raise _bad("command", f"has more than {MAX_COMMAND_ARGS} arguments", len(command))
        for arg in command:
            if not isinstance(arg, str) or "\x00" in arg or len(arg.encode()) > MAX_ARG_BYTES:
                raise _bad(
                    "command",
                    f"arguments must be strings without NUL, ≤ {MAX_ARG_BYTES} bytes",
                    arg,
                )
        object.__setattr__(self, "command", command)
        env = dict(self.env)
        if len(env) > MAX_ENV_VARS:
            raise _bad("env", f"has more than {MAX_ENV_VARS} variables", len(env))
        for name, value in env.items():
            if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
                raise _bad("env", "names must match [A-Za-z_][A-Za-z0-9_]*", name)
            if name.upper().startswith(RESERVED_ENV_PREFIX):
                raise _bad(
                    "env", f"names starting with {RESERVED_ENV_PREFIX} are set by the sandbox", name
                )
            if not isinstance(value, str) or "\x00" in value:
                raise _bad("env", f"value of {name} must be a string without NUL", value)
        object.__setattr__(self, "env", MappingProxyType(env))
        if not isinstance(self.limits, ResourceLimits):
            raise _bad("limits", "must be ResourceLimits", self.limits)
        for name in ("tier", "min_tier"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Tier.parse(value))
        if not isinstance(self.code, bytes) or len(self.code) > MAX_CODE_BYTES:
            raise _bad("code", f"must be at most {MAX_CODE_BYTES} bytes", len(self.code))
        if not isinstance(self.attempt, int) or self.attempt < 1:
            raise _bad("attempt", "must be an integer ≥ 1", self.attempt)
        if not isinstance(self.dispatch_id, str) or (
            self.dispatch_id and not _TASK_ID.fullmatch(self.dispatch_id)
        ):
            raise _bad(
                "dispatch_id",
                "must be empty or 1-128 of [A-Za-z0-9_.-], starting alphanumeric",
                self.dispatch_id,
            )
