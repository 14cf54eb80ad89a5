"""Bounded per-consumer state: sender rate limits and the seen-set of processed ids."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SeenSet", "SenderRateLimiter", "TokenBucket"]


@dataclass
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float, cost: float = 1.0) -> bool:
        if now > self.updated:  # a clock that goes back refunds nothing
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class SenderRateLimiter:
    """A token bucket per sender; remembers at most ``max_senders`` (least recent forgotten).

    The bus measures a sender's rate on the sender's own (signed) envelope timestamps, passed
    as ``at``: a durable consumer draining a backlog sees the rate at which the messages were
    sent, not the rate at which it catches up, so catching up never refuses anyone.
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_senders: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_senders = max_senders
        self.clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def allow(self, sender: str, at: float | None = None) -> bool:
        if self.rate <= 0:
            return True
        now = self.clock() if at is None else at
        bucket = self._buckets.get(sender)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, self.burst, now)
            self._buckets[sender] = bucket
            if len(self._buckets) > self.max_senders:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(sender)
        return bucket.take(now)


class SeenSet:
    """The ids of the last ``capacity`` messages processed (a bounded LRU set).

    JetStream already drops duplicate publishes within its window (``Nats-Msg-Id``); this
    catches what gets past it — a redelivery after a lost ack, or a replayed envelope — for as
    long as the id is remembered. Envelopes older than their TTL are refused anyway, so the
    capacity only has to cover one TTL's worth of traffic to make replay protection complete.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._ids

    def add(self, msg_id: str) -> None:
        self._ids[msg_id] = None
        self._ids.move_to_end(msg_id)
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    def __len__(self) -> int:
        return len(self._ids)
