"""Task priorities and sandbox tiers: the two closed vocabularies of a scheduling request."""

from __future__ import annotations

import enum

from symbi_common.errors import InvalidArgument

__all__ = ["Priority", "SandboxTier"]


class Priority(enum.IntEnum):
    """How urgent a task is. A lower value is more urgent.

    Critical tasks always go before every other task; High, Normal and Low are ordered by
    aging (see ``TaskQueue``). Critical and High tasks may preempt running tasks of a strictly
    lower priority when they cannot be placed otherwise.
    """

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3

    @classmethod
    def parse(cls, value: str | int | Priority) -> Priority:
        """The priority named by ``value`` (a name in any case, or its number)."""
        if isinstance(value, Priority):
            return value
        if isinstance(value, int):
            try:
                return cls(value)
            except ValueError:
                pass
        else:
            member = cls.__members__.get(value.strip().upper())
            if member is not None:
                return member
        allowed = ", ".join(p.name.lower() for p in cls)
        raise InvalidArgument(
            f"unknown priority {value!r}; allowed: {allowed}",
            reason="UNKNOWN_PRIORITY",
            details={"field": "priority", "value": str(value), "allowed": allowed},
        )

    @property
    def label(self) -> str:
        """The lower-case name used on the wire, in policies and in logs."""
        return self.name.lower()


class SandboxTier(enum.Enum):
    """Isolation a task requires: plain Docker (runc) or gVisor (runsc through Docker)."""

    DOCKER = "docker"
    GVISOR = "gvisor"

    @classmethod
    def parse(cls, value: str | SandboxTier) -> SandboxTier:
        """The tier named by ``value`` (``docker`` or ``gvisor``, any case)."""
        if isinstance(value, SandboxTier):
            return value
        try:
            return cls(value.strip().lower())
        except ValueError:
            allowed = ", ".join(t.value for t in cls)
            raise InvalidArgument(
                f"unknown sandbox tier {value!r}; allowed: {allowed}",
                reason="UNKNOWN_TIER",
                details={"field": "tier", "value": value, "allowed": allowed},
            ) from None
