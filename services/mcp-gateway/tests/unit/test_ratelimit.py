"""rate_limit:N/U: parsing and token buckets on a fake clock."""

from __future__ import annotations

import pytest

from symbi_common.errors import InvalidArgument, ResourceExhausted
from symbi_mcp_gateway.ratelimit import CallRateLimiter, parse_rate_limit


def test_parse() -> None:
    limit = parse_rate_limit("rate_limit:10/m")
    assert limit is not None
    assert (limit.calls, limit.per_s) == (10, 60.0)
    assert parse_rate_limit("audit_full") is None
    for bad in ("rate_limit:0/m", "rate_limit:10/w", "rate_limit:ten/m", "rate_limit"):
        with pytest.raises(InvalidArgument):
            parse_rate_limit(bad)


def test_burst_then_refill() -> None:
    now = [0.0]
    limiter = CallRateLimiter(clock=lambda: now[0])
    limit = parse_rate_limit("rate_limit:3/m")
    assert limit is not None
    for _ in range(3):
        limiter.take("a", "s/t", limit)
    with pytest.raises(ResourceExhausted) as caught:
        limiter.take("a", "s/t", limit)
    assert caught.value.reason == "RATE_LIMITED"
    assert caught.value.retryable
    limiter.take("b", "s/t", limit)  # another agent has its own allowance
    now[0] = 20.0  # one call's worth refilled (3 per 60 s)
    limiter.take("a", "s/t", limit)
    with pytest.raises(ResourceExhausted):
        limiter.take("a", "s/t", limit)


def test_bucket_count_is_bounded() -> None:
    limiter = CallRateLimiter(max_buckets=10)
    limit = parse_rate_limit("rate_limit:1/d")
    assert limit is not None
    for i in range(100):
        limiter.take(f"agent-{i}", "s/t", limit)
    assert len(limiter._buckets) == 10
