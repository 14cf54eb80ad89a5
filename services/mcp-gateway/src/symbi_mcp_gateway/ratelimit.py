"""The ``rate_limit:N/U`` policy condition, enforced where the call happens.

A permitting policy may carry ``@condition("rate_limit:10/m")`` (docs/adr/0020): the caller
enforces it. :class:`CallRateLimiter` keeps one token bucket per (agent, tool, limit) — ``N``
tokens, refilled at ``N`` per unit — so an agent may burst up to ``N`` calls and then proceeds
at the limit's rate. Buckets live in process memory: with several gateway replicas, each
enforces the limit on the calls it serves (docs/adr/0081).
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from symbi_common.errors import InvalidArgument, ResourceExhausted

__all__ = ["CallRateLimiter", "RateLimit", "parse_rate_limit"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
_PATTERN = re.compile(r"^rate_limit:(\d{1,9})/([smhd])$")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``calls`` per ``per_s`` seconds."""

    calls: int
    per_s: float
    text: str


def parse_rate_limit(condition: str) -> RateLimit | None:
    """The limit a ``rate_limit:N/U`` condition states; None for other conditions.

    Raises:
        InvalidArgument: the condition starts with ``rate_limit`` but is malformed.
    """
    if not condition.startswith("rate_limit"):
        return None
    match = _PATTERN.match(condition)
    if match is None or int(match.group(1)) == 0:
        raise InvalidArgument(
            f"malformed condition {condition!r}; expected rate_limit:N/U with N ≥ 1 and "
            "U one of s, m, h, d",
            reason="CONDITION_UNSUPPORTED",
        )
    return RateLimit(int(match.group(1)), _UNITS[match.group(2)], condition)


class CallRateLimiter:
    """Token buckets per (agent, tool, limit), at most ``max_buckets`` of them (the least
    recently used is forgotten, which only ever errs towards allowing)."""

    def __init__(
        self, *, max_buckets: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._buckets: OrderedDict[tuple[str, str, str], tuple[float, float]] = OrderedDict()
        self._max = max_buckets
        self._clock = clock

    def take(self, agent_id: str, tool_id: str, limit: RateLimit) -> None:
        """Spend one call of the agent's allowance.

        Raises:
            ResourceExhausted: the allowance is used up (retryable; the message says when).
        """
        key = (agent_id, tool_id, limit.text)
        now = self._clock()
        tokens, stamp = self._buckets.pop(key, (float(limit.calls), now))
        rate = limit.calls / limit.per_s
        tokens = min(float(limit.calls), tokens + (now - stamp) * rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            wait_s = (1.0 - tokens) / rate
            raise ResourceExhausted(
                f"{agent_id} may call {tool_id} {limit.text.removeprefix('rate_limit:')}; "
                f"try again in {wait_s:.1f}s",
                reason="RATE_LIMITED",
                details={"retry_after_s": f"{wait_s:.3f}"},
            )
        self._buckets[key] = (tokens - 1.0, now)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
