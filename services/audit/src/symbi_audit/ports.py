"""Ports: what the audit domain needs from outside, as protocols the app implements."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "PublisherKeyring", "SystemClock"]


class Clock(Protocol):
    """Time, injectable so checkpoint timing is testable without sleeping."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for intervals)."""
        ...

    def now(self) -> datetime:
        """The wall-clock time, timezone-aware (for records)."""
        ...


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def now(self) -> datetime:
        """``datetime.now(UTC)``."""
        return datetime.now(UTC)


class PublisherKeyring(Protocol):
    """Public keys of the principals that publish audit events, by key id.

    The app backs it with the cluster keyring (JetStream KV, certificates checked against
    the root); the domain only asks for a key.
    """

    def public_key(self, key_id: str) -> bytes | None:
        """The 32-byte Ed25519 public key of ``key_id``, or ``None`` if unknown/revoked."""
        ...
