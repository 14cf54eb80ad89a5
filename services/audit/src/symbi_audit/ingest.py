"""What the log knows about how an entry arrived: who delivered it, who signed it, and
whether that signature checked out.

The ingest record is kept beside the entry, outside the hashed bytes: it is this replica's
observation, not part of the event. The tamper-evident form of the same check is the
offline verifier with the publishers' keys (``symbi audit verify --publisher-keys``), which
recomputes it from the signed events themselves.
"""

from __future__ import annotations

import dataclasses
import enum

from symbi_audit.event import AuditEvent, verify_event_signature
from symbi_audit.ports import PublisherKeyring

__all__ = ["IngestRecord", "PublisherStatus", "classify"]


class PublisherStatus(enum.IntEnum):
    """How an event's publisher signature checked out at ingest (values match the proto)."""

    UNSPECIFIED = 0
    """Appended without ingest metadata (e.g. through the library, not the service)."""
    VERIFIED = 1
    UNSIGNED = 2
    UNKNOWN_KEY = 3
    BAD_SIGNATURE = 4


@dataclasses.dataclass(frozen=True, slots=True)
class IngestRecord:
    """How one entry arrived at this replica."""

    status: PublisherStatus
    sender: str = ""
    """The authenticated principal that delivered the event (the envelope's signer)."""
    publisher: str = ""
    """The principal whose key signed the event, when the key is known."""
    appended_us: int = 0
    """When this replica appended it (microseconds since the epoch; 0 if unknown)."""


def classify(event: AuditEvent, keyring: PublisherKeyring) -> PublisherStatus:
    """Check the event's publisher signature against the keyring."""
    if not event.publisher_signature:
        return PublisherStatus.UNSIGNED
    key = keyring.public_key(event.publisher_key_id)
    if key is None:
        return PublisherStatus.UNKNOWN_KEY
    if not verify_event_signature(event, key):
        return PublisherStatus.BAD_SIGNATURE
    return PublisherStatus.VERIFIED
