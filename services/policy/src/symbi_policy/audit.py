"""Audit events the policy domain emits, and the port they leave through.

Which decisions are audited: every deny; allows when ``audit_allows`` is configured or when
a satisfied permit carries ``@condition("audit_full")``; every fail-closed decision (engine
error, timeout) with its cause; every policy set installed or rejected by hot reload.

The port is synchronous and must not block (the engine calls it on the decision path). An
adapter enqueues into a bounded buffer that a task drains to the audit stream; when the
buffer is full it raises ``ResourceExhausted`` (or ``Unavailable`` when it cannot deliver at
all) and the engine decides what that means: a deny stays a deny, an allow that had to be
audited becomes a fail-closed deny. Events are never dropped silently.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from symbi_common.errors import ResourceExhausted

__all__ = [
    "EVENT_DECISION",
    "EVENT_ENGINE_FAILURE",
    "EVENT_SET_INSTALLED",
    "EVENT_SET_REJECTED",
    "AuditSink",
    "PolicyAuditEvent",
    "QueueAuditSink",
]

#: ``event_type`` values (the audit log's `symbi.audit.<event_type>` subjects).
EVENT_DECISION = "policy.decision"
EVENT_ENGINE_FAILURE = "policy.engine_failure"
EVENT_SET_INSTALLED = "policy.set_installed"
EVENT_SET_REJECTED = "policy.set_rejected"


@dataclass(frozen=True, slots=True)
class PolicyAuditEvent:
    """One audit record; mirrors ``symbi.bus.v1.AuditEvent`` so the adapter only converts."""

    event_type: str
    #: ``allow`` | ``deny`` | ``conditional`` | "" when not a decision.
    decision: str
    #: The principal the decision was about (``Symbi::Agent::"a"``), or "".
    actor: str
    #: The agent id when the principal is an agent, else "".
    agent_id: str
    #: JSON-like details: request, determining policies, versions, reasons, conditions.
    details: Mapping[str, Any]
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timestamp_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)


class AuditSink(Protocol):
    """Where audit events go. ``record`` must not block; it raises if it cannot accept."""

    def record(self, event: PolicyAuditEvent) -> None:
        """Accept ``event`` for delivery, or raise ResourceExhausted / Unavailable."""
        ...


class QueueAuditSink:
    """A bounded in-process buffer: the engine records, one task drains with ``get``.

    The wiring phase drains it to the audit stream; the CLI and tests read it directly.
    """

    def __init__(self, maxsize: int = 10_000) -> None:
        if maxsize <= 0:
            raise ValueError("QueueAuditSink needs a positive bound")
        self._queue: asyncio.Queue[PolicyAuditEvent] = asyncio.Queue(maxsize)

    def record(self, event: PolicyAuditEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            raise ResourceExhausted(
                f"audit buffer full ({self._queue.maxsize} events waiting for delivery)",
                reason="AUDIT_BUFFER_FULL",
            ) from None

    async def get(self) -> PolicyAuditEvent:
        """The next event, waiting for one."""
        return await self._queue.get()

    def get_nowait(self) -> PolicyAuditEvent | None:
        """The next event, or None when the buffer is empty."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def __len__(self) -> int:
        return self._queue.qsize()
