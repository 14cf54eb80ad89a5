"""Counting and auditing refused envelopes.

Every refusal increments ``symbi_bus_rejected_total{reason}`` and is logged. It is also
audited — an ``bus.reject`` audit event naming the reason, the claimed sender, the message id
and the subject — at most ``audit_rate`` per second per (reason, sender) so that a flood of
garbage cannot turn into a flood of audit events; what a bucket holds back is reported as
``suppressed`` in the next event for the same pair. Nothing is dropped silently: the counter
sees every one.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter

from symbi_common.bus.limits import TokenBucket
from symbi_common.crypto.rejects import EnvelopeRejected

__all__ = ["REJECTED", "AuditEmitter", "RejectReporter"]

log = logging.getLogger(__name__)

REJECTED = Counter(
    "symbi_bus_rejected_total",
    "Envelopes refused on consume, by reason.",
    ["reason"],
)

#: ``emit(event_type, details)``: signs and publishes an audit event (see AuditRecorder).
AuditEmitter = Callable[[str, dict[str, Any]], Awaitable[object]]


class RejectReporter:
    def __init__(
        self,
        principal_id: str,
        audit: AuditEmitter | None = None,
        *,
        audit_rate: float = 5.0,
        audit_burst: float = 20.0,
        max_pairs: int = 10_000,
    ) -> None:
        self.principal_id = principal_id
        self.audit = audit
        self.audit_rate = audit_rate
        self.audit_burst = audit_burst
        self.max_pairs = max_pairs
        self._buckets: OrderedDict[tuple[str, str], tuple[TokenBucket, int]] = OrderedDict()

    def _admit(self, key: tuple[str, str]) -> tuple[bool, int]:
        now = time.monotonic()
        bucket, suppressed = self._buckets.get(key) or (
            TokenBucket(self.audit_rate, self.audit_burst, self.audit_burst, now),
            0,
        )
        allowed = bucket.take(now)
        self._buckets[key] = (bucket, 0 if allowed else suppressed + 1)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self.max_pairs:
            self._buckets.popitem(last=False)
        return allowed, suppressed

    async def report(
        self, rejected: EnvelopeRejected, *, subject: str = "", consumer: str = ""
    ) -> None:
        label = rejected.reason_label
        REJECTED.labels(label).inc()
        subject = subject or rejected.subject
        log.warning(
            "refused envelope %s from %r on %s: %s (%s)",
            rejected.msg_id or "?",
            rejected.sender,
            subject,
            label,
            rejected.message,
        )
        if self.audit is None:
            return
        allowed, suppressed = self._admit((label, rejected.sender))
        if not allowed:
            return
        details: dict[str, Any] = {
            "decision": "deny",
            "reason": label,
            "message": rejected.message,
            "claimed_sender": rejected.sender,
            "msg_id": rejected.msg_id,
            "subject": subject,
            "consumer": consumer,
            "suppressed": suppressed,
        }
        try:
            await self.audit("bus.reject", details)
        except Exception:  # auditing must not break consumption; the counter has it
            log.exception("could not publish the audit event of a refused envelope")
