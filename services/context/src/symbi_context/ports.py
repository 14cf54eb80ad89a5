"""Ports the platform wires in: policy decisions, memory events and the clock.

The domain never imports grpc or nats. The service process later supplies a
:class:`PolicyPort` backed by the policy service (Cedar action ``read_context`` /
``share_context`` on the owning ``Symbi::Agent``, with ``memory_type``, ``access_level`` and
``tags`` in the request context) and a :class:`MemoryEventSink` that publishes on the bus.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "AccessDecision",
    "AccessLevel",
    "AccessRequest",
    "Clock",
    "MemoryEvent",
    "MemoryEventSink",
    "NullEventSink",
    "PolicyPort",
    "SystemClock",
]


class AccessLevel(enum.StrEnum):
    """Classification of shared memory and knowledge, from least to most protected."""

    PUBLIC = "public"
    RESTRICTED = "restricted"
    CONFIDENTIAL = "confidential"
    SECRET = "secret"

    @property
    def rank(self) -> int:
        """0 for public up to 3 for secret."""
        return _RANK[self]


_RANK = {
    AccessLevel.PUBLIC: 0,
    AccessLevel.RESTRICTED: 1,
    AccessLevel.CONFIDENTIAL: 2,
    AccessLevel.SECRET: 3,
}


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """May ``principal`` do ``action`` on data owned by ``owner``?

    ``action`` is a Cedar action of the Symbi schema: ``read_context`` (read another
    agent's shared memory or knowledge) or ``share_context`` (publish one's own memory at
    ``access_level``).
    """

    principal: str
    action: str
    owner: str
    access_level: AccessLevel
    memory_type: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AccessDecision:
    """The policy's answer; ``reason`` says why when it is a deny."""

    allowed: bool
    reason: str = ""


class PolicyPort(Protocol):
    """Decides access to shared context, in batches (one round trip per retrieval).

    Returns one decision per request, in order. Raises
    :class:`~symbi_common.errors.Unavailable` when no decision can be had: callers fail
    closed.
    """

    async def decide(self, requests: Sequence[AccessRequest]) -> list[AccessDecision]:
        """One decision per request, in order."""
        ...


class Clock(Protocol):
    """Wall-clock time in unix seconds (a port so tests can move time)."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """``time.time()``."""
        return time.time()


@dataclass(frozen=True, slots=True)
class MemoryEvent:
    """Something changed in an agent's context (published on the bus by the service).

    ``kind`` is one of ``stored``, ``forgotten``, ``shared``, ``feedback``, ``expired``,
    ``ingested``, ``document_deleted``.
    """

    kind: str
    agent_id: str
    ids: tuple[str, ...]
    at: float
    details: dict[str, str] = field(default_factory=dict)


class MemoryEventSink(Protocol):
    """Where memory events go. Must not block for long: the service bounds its queue."""

    async def emit(self, event: MemoryEvent) -> None:
        """Accept one event."""
        ...


class NullEventSink:
    """Drops events (for embedded use without a bus)."""

    async def emit(self, event: MemoryEvent) -> None:
        """Do nothing."""
