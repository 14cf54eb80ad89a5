"""Rate limits, the seen-set and reject reporting."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from symbi_common.bus.limits import SeenSet, SenderRateLimiter
from symbi_common.bus.rejects import RejectReporter
from symbi_common.crypto import EnvelopeRejected, RejectReason


def test_rate_limiter_is_per_sender_with_burst() -> None:
    now = [0.0]
    limiter = SenderRateLimiter(rate=10, burst=5, clock=lambda: now[0])
    assert all(limiter.allow("a") for _ in range(5))
    assert not limiter.allow("a")
    assert limiter.allow("b")  # another sender has its own bucket
    now[0] += 0.1  # one token back
    assert limiter.allow("a")
    assert not limiter.allow("a")


def test_rate_limiter_forgets_old_senders_beyond_its_bound() -> None:
    limiter = SenderRateLimiter(rate=1, burst=1, max_senders=3, clock=lambda: 0.0)
    for sender in "abcd":
        limiter.allow(sender)
    assert len(limiter._buckets) == 3


def test_seen_set_is_bounded_lru() -> None:
    seen = SeenSet(capacity=3)
    for msg_id in "abcd":
        seen.add(msg_id)
    assert "a" not in seen
    assert "d" in seen
    assert len(seen) == 3


async def test_reporter_counts_every_reject_and_audits_within_its_rate() -> None:
    events: list[tuple[str, dict[str, object]]] = []

    async def audit(event_type: str, details: dict[str, object]) -> None:
        events.append((event_type, details))

    reporter = RejectReporter("svc-x", audit, audit_rate=1, audit_burst=2)
    labels = {"reason": "bad_signature"}
    before = REGISTRY.get_sample_value("symbi_bus_rejected_total", labels) or 0
    for _ in range(5):
        await reporter.report(
            EnvelopeRejected(
                RejectReason.REJECT_REASON_BAD_SIGNATURE, "nope", sender="mallory", msg_id="m1"
            )
        )
    assert REGISTRY.get_sample_value("symbi_bus_rejected_total", labels) == before + 5
    assert len(events) == 2  # the burst; the other three are held back
    event_type, details = events[0]
    assert event_type == "bus.reject"
    assert details["reason"] == "bad_signature"
    assert details["claimed_sender"] == "mallory"
    assert details["decision"] == "deny"


@pytest.mark.parametrize("reason", [r for r in RejectReason.values() if r])
def test_every_reason_has_a_label(reason: int) -> None:
    error = EnvelopeRejected(reason, "x")
    assert error.reason_label
    assert error.reason.startswith("ENVELOPE_")


def test_rate_is_measured_on_the_senders_timestamps() -> None:
    limiter = SenderRateLimiter(rate=10, burst=5, clock=lambda: 0.0)
    # A backlog sent at 10/s but drained all at once is never refused...
    assert all(limiter.allow("a", at=i / 10) for i in range(100))
    # ...while messages a sender stamped faster than its rate are.
    assert not all(limiter.allow("b", at=1.0) for _ in range(6))
    # Out-of-order timestamps refund nothing.
    assert not limiter.allow("b", at=0.5)
