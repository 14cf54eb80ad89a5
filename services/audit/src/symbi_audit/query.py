"""Query values: filters, entries, pages and opaque cursors."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from datetime import datetime

from symbi_audit.event import AuditEvent
from symbi_audit.ingest import IngestRecord, PublisherStatus
from symbi_common.errors import InvalidArgument

__all__ = ["MAX_PAGE_SIZE", "EventFilter", "LogEntry", "Page", "decode_cursor", "encode_cursor"]

MAX_PAGE_SIZE = 1000
"""Largest page a query returns; callers page through more with the cursor."""


@dataclasses.dataclass(frozen=True, slots=True)
class EventFilter:
    """Conditions on entries, all of which must hold (unset ones are ignored).

    ``since`` is inclusive and ``until`` exclusive. ``text`` is a case-insensitive (ASCII
    folding) substring of the event's canonical JSON, so it matches keys and values
    anywhere in the event, including details. ``event_types`` matches any of the types.
    ``publisher_status`` matches the ingest record's status (``UNSPECIFIED``: entries
    appended without one).
    """

    agent_id: str | None = None
    actor: str | None = None
    event_types: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    compliance_tag: str | None = None
    publisher_status: PublisherStatus | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise InvalidArgument(f"filter {name} must be a timezone-aware datetime")
        if self.since and self.until and self.until < self.since:
            raise InvalidArgument("filter until is before since")
        if not isinstance(self.event_types, tuple):
            raise InvalidArgument("event_types must be a tuple of types")
        if self.text is not None and len(self.text) > 256:
            raise InvalidArgument("filter text is longer than 256 characters")


@dataclasses.dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry of the log: its position, the event and the hashes over it, and how it
    arrived when the store knows (``ingest``)."""

    index: int
    event: AuditEvent
    leaf_hash: bytes
    chain_hash: bytes
    ingest: IngestRecord | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """One page of a query; ``next_cursor`` is ``None`` on the last page."""

    entries: tuple[LogEntry, ...]
    next_cursor: str | None


def encode_cursor(last_index: int, descending: bool) -> str:
    """An opaque cursor that continues after ``last_index`` in the given direction."""
    raw = f"v1:{'d' if descending else 'a'}:{last_index}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, descending: bool) -> int:
    """The index a cursor continues after; it must come from the same direction."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        version, direction, index = raw.split(":")
        value = int(index)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise InvalidArgument(f"cursor {cursor!r} is not one this log issued") from exc
    if version != "v1" or direction != ("d" if descending else "a") or value < 0:
        raise InvalidArgument(
            f"cursor {cursor!r} belongs to a query in the other direction or another version"
        )
    return value
