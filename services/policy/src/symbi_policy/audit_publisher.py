"""The AuditSink adapter: the engine's bounded audit buffer, drained onto the audit stream.

The engine records into a :class:`~symbi_policy.audit.QueueAuditSink` (synchronous, never
blocks; full → the engine decides: a deny stays a deny, an allow that must be audited
becomes a fail-closed deny). :class:`AuditPublisher` is the loop that empties it: it takes
up to ``concurrency`` events at a time and publishes them at once through the process's
audit recorder (signed by the service principal, on ``symbi.audit.<type>``), retrying a
failed publish with backoff for up to ``retry_s``. An event given up after that is logged
with its id and counted (``symbi_policy_audit_failed_total``), never dropped silently.

Details follow the audit log's conventions (``docs/audit.md``): a decision carries
``decision`` (``allow`` / ``deny`` / ``conditional``), ``action``, ``resource``,
``reason``, plus the principal, the determining ``policies`` and both versions.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from prometheus_client import Counter

from symbi_common.errors import SymbiError
from symbi_policy.audit import (
    EVENT_DECISION,
    EVENT_ENGINE_FAILURE,
    PolicyAuditEvent,
    QueueAuditSink,
)

__all__ = ["AuditPublisher", "AuditRecorder", "audit_details"]

logger = logging.getLogger(__name__)

PUBLISHED = Counter(
    "symbi_policy_audit_published_total", "Policy audit events published, by type.", ["type"]
)
FAILED = Counter(
    "symbi_policy_audit_failed_total",
    "Policy audit events given up after retrying (logged with their ids).",
    ["type"],
)


class AuditRecorder(Protocol):
    """The part of ``symbi_common.auditing.AuditRecorder`` this adapter uses."""

    async def record(
        self,
        event_type: str,
        *,
        details: Mapping[str, Any] | None = None,
        agent_id: str = "",
        event_id: uuid.UUID | None = None,
    ) -> object: ...


def audit_details(event: PolicyAuditEvent) -> dict[str, Any]:
    """The event's details in the audit log's shape (flat, ``decision`` on top)."""
    details = dict(event.details)
    if event.event_type == EVENT_DECISION:
        request = dict(details.get("request", {}))
        result = dict(details.get("result", {}))
        reasons = list(result.get("reasons", []))
        flat: dict[str, Any] = {
            "decision": event.decision,
            "principal": request.get("principal", ""),
            "action": request.get("action", ""),
            "resource": request.get("resource", ""),
            "context": request.get("context", {}),
            "policies": list(result.get("policies", [])),
            "version": result.get("version", 0),
            "entities_version": result.get("entities_version", 0),
            "cached": bool(result.get("cached", False)),
        }
        if reasons:
            flat["reasons"] = reasons
            flat["reason"] = "; ".join(reasons)
        if result.get("conditions"):
            flat["conditions"] = list(result["conditions"])
        if result.get("fail_closed"):
            flat["fail_closed"] = True
        return flat
    if event.event_type == EVENT_ENGINE_FAILURE:
        request = dict(details.get("request", {}))
        return {
            "decision": "deny",
            "principal": request.get("principal", ""),
            "action": request.get("action", ""),
            "resource": request.get("resource", ""),
            "context": request.get("context", {}),
            "reason": str(details.get("cause", "")),
            "fail_closed": True,
            "version": details.get("version", 0),
        }
    return details


class AuditPublisher:
    """Drains ``sink`` into ``recorder`` until cancelled (``run`` is a long-lived loop)."""

    def __init__(
        self,
        sink: QueueAuditSink,
        recorder: AuditRecorder,
        *,
        concurrency: int = 64,
        retry_s: float = 30.0,
        publish_timeout_s: float = 5.0,
    ) -> None:
        self._sink = sink
        self._recorder = recorder
        self._concurrency = concurrency
        self._retry_s = retry_s
        self._publish_timeout_s = publish_timeout_s
        self.published = 0
        self.failed = 0

    async def run(self) -> None:
        while True:
            batch = [await self._sink.get()]
            while len(batch) < self._concurrency:
                event = self._sink.get_nowait()
                if event is None:
                    break
                batch.append(event)
            async with asyncio.TaskGroup() as tasks:
                for event in batch:
                    tasks.create_task(self._deliver(event))

    async def _deliver(self, event: PolicyAuditEvent) -> None:
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._retry_s
        delay = 0.05
        while True:
            try:
                async with asyncio.timeout(self._publish_timeout_s):
                    await self._recorder.record(
                        event.event_type,
                        details=audit_details(event),
                        agent_id=event.agent_id,
                        event_id=uuid.UUID(event.event_id),
                    )
            except (SymbiError, TimeoutError) as exc:
                retryable = isinstance(exc, TimeoutError) or exc.retryable
                if retryable and loop.time() + delay < give_up_at:
                    logger.debug("audit event %s not published yet: %s", event.event_id, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                self._give_up(event, f"{type(exc).__name__}: {exc}")
                return
            except (ValueError, TypeError) as exc:  # details that cannot be encoded
                self._give_up(event, f"cannot encode: {exc}")
                return
            self.published += 1
            PUBLISHED.labels(event.event_type).inc()
            return

    def _give_up(self, event: PolicyAuditEvent, why: str) -> None:
        self.failed += 1
        FAILED.labels(event.event_type).inc()
        logger.error(
            "audit event %s (%s, %s %s) could not be published: %s",
            event.event_id,
            event.event_type,
            event.decision or "-",
            event.actor or "-",
            why,
        )
