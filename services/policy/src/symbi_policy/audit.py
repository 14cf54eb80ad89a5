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
from collections.abc import Callable, Mapping
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


class PolicyAuditEvent:
    """One audit record; mirrors ``symbi.bus.v1.AuditEvent`` so the adapter only converts.

    ``details`` may be given as a function: it is then called once, when first read (by
    the adapter, off the decision path). ``event_id`` is likewise drawn on first read and
    fixed from then on. Treat instances as immutable.
    """

    __slots__ = (
        "_details",
        "_event_id",
        "_make_details",
        "actor",
        "agent_id",
        "decision",
        "event_type",
        "timestamp_ms",
    )

    def __init__(
        self,
        event_type: str,
        decision: str,
        actor: str,
        agent_id: str,
        details: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
        *,
        event_id: str | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        self.event_type = event_type
        #: ``allow`` | ``deny`` | ``conditional`` | "" when not a decision.
        self.decision = decision
        #: The principal the decision was about (``Symbi::Agent::"a"``), or "".
        self.actor = actor
        #: The agent id when the principal is an agent, else "".
        self.agent_id = agent_id
        self.timestamp_ms = time.time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms
        self._event_id = event_id
        if callable(details):
            self._make_details: Callable[[], Mapping[str, Any]] | None = details
            self._details: Mapping[str, Any] | None = None
        else:
            self._make_details = None
            self._details = details

    @property
    def details(self) -> Mapping[str, Any]:
        """JSON-like details: request, determining policies, versions, reasons, conditions."""
        if self._details is None:
            assert self._make_details is not None  # one of the two is always set
            self._details = self._make_details()
            self._make_details = None
        return self._details

    @property
    def event_id(self) -> str:
        """A UUID; the audit log is idempotent on it."""
        if self._event_id is None:
            self._event_id = str(uuid.uuid4())
        return self._event_id

    def __repr__(self) -> str:
        return (
            f"PolicyAuditEvent({self.event_type!r}, decision={self.decision!r}, "
            f"actor={self.actor!r})"
        )


class AuditSink(Protocol):
    """Where audit events go. ``record`` must not block; it raises if it cannot accept."""

    def record(self, event: PolicyAuditEvent) -> None:
        """Accept ``event`` for delivery, or raise ResourceExhausted / Unavailable."""
        ...


class QueueAuditSink:
    """A bounded in-process buffer: the engine records, one task drains with ``get``.

    The service drains it to the audit stream (``symbi_policy.audit_publisher``) and makes
    callers wait for room before deciding (:meth:`wait_for_room`), so that a sustained
    decision rate above what the audit stream takes slows callers down instead of losing
    audit events. The CLI and tests read it directly.
    """

    def __init__(self, maxsize: int = 10_000) -> None:
        if maxsize <= 0:
            raise ValueError("QueueAuditSink needs a positive bound")
        self._queue: asyncio.Queue[PolicyAuditEvent] = asyncio.Queue(maxsize)
        self._taken = asyncio.Event()

    @property
    def maxsize(self) -> int:
        return self._queue.maxsize

    def has_room(self, needed: int) -> bool:
        """Whether ``needed`` more events fit now (``needed`` capped at ``maxsize``)."""
        return self._queue.qsize() + min(needed, self._queue.maxsize) <= self._queue.maxsize

    async def wait_for_room(self, needed: int) -> None:
        """Return once ``needed`` more events fit (at most ``maxsize``). Waits without
        limit: wrap it in ``asyncio.timeout()``. Room cannot vanish between this returning
        and a synchronous caller recording: only ``record`` fills the buffer."""
        while not self.has_room(needed):
            self._taken.clear()
            await self._taken.wait()

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
        event = await self._queue.get()
        self._taken.set()
        return event

    def get_nowait(self) -> PolicyAuditEvent | None:
        """The next event, or None when the buffer is empty."""
        try:
            event = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        self._taken.set()
        return event

    def __len__(self) -> int:
        return self._queue.qsize()
