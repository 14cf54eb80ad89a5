"""Memory events as signed audit events (``symbi.audit.context_*``), and who asked.

The domain emits a :class:`~symbi_context.ports.MemoryEvent` after every write is durable;
:class:`AuditEventSink` records it through the process's audit recorder before the request
is answered, so an acknowledged write has had its audit event published. If the audit
publish fails (NATS down, no group key yet) the write stands — failing it would make the
caller retry a write that already happened — and the gap is logged and counted
(``symbi_context_audit_failures_total``).

:data:`CURRENT_CALLER` carries the caller of the request being served (set by the gRPC and
bus edges) so each event says how the write arrived and who vouched for the agent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

from prometheus_client import Counter

from symbi_common.auditing import AuditRecorder
from symbi_common.auditing.event import JSONValue

from .ports import MemoryEvent

__all__ = ["CURRENT_CALLER", "AuditEventSink", "Caller"]

log = logging.getLogger(__name__)

AUDIT_FAILURES = Counter(
    "symbi_context_audit_failures_total",
    "Audit events the context service could not publish, by event type.",
    ["event_type"],
)

_MAX_IDS = 64
#: Compliance tag of every context audit event (tags are upper-case identifiers).
COMPLIANCE_TAGS = ("AGENT_MEMORY",)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent the request being served.

    ``transport`` is ``grpc`` or ``bus``; ``principal`` and ``role`` are the verified bus
    sender (empty for gRPC, whose callers are the platform's operators and SDKs);
    ``check_writes`` says whether writes need the policy's ``write_context``.
    """

    transport: str
    principal: str = ""
    role: str = ""
    check_writes: bool = False

    def describe(self) -> dict[str, JSONValue]:
        out: dict[str, JSONValue] = {"via": self.transport}
        if self.principal:
            out["caller"] = self.principal
            out["caller_role"] = self.role
        return out


CURRENT_CALLER: ContextVar[Caller | None] = ContextVar("symbi_context_caller", default=None)


class AuditEventSink:
    """:class:`~symbi_context.ports.MemoryEventSink` that records audit events."""

    def __init__(self, recorder: Callable[[], AuditRecorder], *, timeout_s: float = 5.0) -> None:
        self._recorder = recorder
        self._timeout_s = timeout_s

    async def emit(self, event: MemoryEvent) -> None:
        """Record ``context.<kind>`` for the event's agent."""
        details: dict[str, JSONValue] = {
            "ids": list(event.ids[:_MAX_IDS]),
            "count": len(event.ids),
            **{k: v for k, v in event.details.items()},
        }
        caller = CURRENT_CALLER.get()
        if caller is not None:
            details.update(caller.describe())
        await self.record(f"context.{event.kind}", details, agent_id=event.agent_id)

    async def record(
        self, event_type: str, details: Mapping[str, JSONValue], *, agent_id: str = ""
    ) -> None:
        """Publish one audit event with a deadline; log and count a failure."""
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._recorder().record(
                    event_type,
                    details=dict(details),
                    agent_id=agent_id,
                    compliance_tags=COMPLIANCE_TAGS,
                )
        except Exception as exc:  # any publish failure: the write itself already stands
            AUDIT_FAILURES.labels(event_type).inc()
            log.error("audit event %s for %s not published: %r", event_type, agent_id, exc)
