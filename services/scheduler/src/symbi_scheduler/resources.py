"""Resource requests of tasks and capacities of nodes.

Four dimensions are accounted: memory (MiB), CPU (millicores), disk I/O (MB/s) and network
I/O (MB/s). Integers only, as in the Cedar schema, so sums never drift. A request of 0 disk
or network I/O means the task reserves none of that bandwidth (most agents have no network at
all); memory, CPU and the execution timeout must be positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeAlias

from symbi_common.errors import InvalidArgument

__all__ = ["NodeCapacity", "ResourceRequest", "Vector"]

#: (memory_mb, cpu_millicores, disk_io_mbps, network_io_mbps): the accounted dimensions.
Vector: TypeAlias = tuple[int, int, int, int]

DIMENSIONS: tuple[str, ...] = ("memory_mb", "cpu_millicores", "disk_io_mbps", "network_io_mbps")


def _check_int(field: str, value: object, *, minimum: int) -> None:
    # bool is an int subclass; `memory_mb=True` is a caller bug, not one MiB.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(
            f"{field} must be an integer, got {type(value).__name__}",
            reason="INVALID_RESOURCE",
            details={"field": field},
        )
    if value < minimum:
        rule = "positive" if minimum == 1 else f"at least {minimum}"
        raise InvalidArgument(
            f"{field} must be {rule}, got {value}",
            reason="INVALID_RESOURCE",
            details={"field": field, "value": str(value), "minimum": str(minimum)},
        )


@dataclass(frozen=True, slots=True)
class ResourceRequest:
    """What one task asks for; the sandbox enforces the same numbers as limits."""

    memory_mb: int
    cpu_millicores: int
    disk_io_mbps: int = 0
    network_io_mbps: int = 0
    execution_timeout_s: float = 3600.0

    def __post_init__(self) -> None:
        _check_int("memory_mb", self.memory_mb, minimum=1)
        _check_int("cpu_millicores", self.cpu_millicores, minimum=1)
        _check_int("disk_io_mbps", self.disk_io_mbps, minimum=0)
        _check_int("network_io_mbps", self.network_io_mbps, minimum=0)
        timeout = self.execution_timeout_s
        if (
            not isinstance(timeout, int | float)
            or isinstance(timeout, bool)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise InvalidArgument(
                f"execution_timeout_s must be a positive number of seconds, got {timeout!r}",
                reason="INVALID_RESOURCE",
                details={"field": "execution_timeout_s", "value": str(timeout)},
            )

    @classmethod
    def of(
        cls,
        *,
        memory_mb: int,
        cpu_cores: float,
        disk_io_mbps: int = 0,
        network_io_mbps: int = 0,
        execution_timeout_s: float = 3600.0,
    ) -> ResourceRequest:
        """A request with CPU given in cores (``0.5`` → 500 millicores)."""
        if not isinstance(cpu_cores, int | float) or not math.isfinite(cpu_cores):
            raise InvalidArgument(
                f"cpu_cores must be a finite number, got {cpu_cores!r}",
                reason="INVALID_RESOURCE",
                details={"field": "cpu_cores"},
            )
        return cls(
            memory_mb=memory_mb,
            cpu_millicores=round(cpu_cores * 1000),
            disk_io_mbps=disk_io_mbps,
            network_io_mbps=network_io_mbps,
            execution_timeout_s=execution_timeout_s,
        )

    @property
    def vector(self) -> Vector:
        """The accounted dimensions as a tuple (see ``DIMENSIONS``)."""
        return (self.memory_mb, self.cpu_millicores, self.disk_io_mbps, self.network_io_mbps)


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    """What a worker node offers to tasks in total (its allocatable share, not free space)."""

    memory_mb: int
    cpu_millicores: int
    disk_io_mbps: int
    network_io_mbps: int
    max_tasks: int

    def __post_init__(self) -> None:
        _check_int("memory_mb", self.memory_mb, minimum=0)
        _check_int("cpu_millicores", self.cpu_millicores, minimum=0)
        _check_int("disk_io_mbps", self.disk_io_mbps, minimum=0)
        _check_int("network_io_mbps", self.network_io_mbps, minimum=0)
        _check_int("max_tasks", self.max_tasks, minimum=0)

    @property
    def vector(self) -> Vector:
        """The accounted dimensions as a tuple (see ``DIMENSIONS``)."""
        return (self.memory_mb, self.cpu_millicores, self.disk_io_mbps, self.network_io_mbps)
