"""The canonical audit event lives in ``symbi_common.auditing.event`` (every publisher signs
it); this module keeps the audit service's imports where they were."""

from symbi_common.auditing.event import (
    FORMAT_VERSION,
    MAX_EVENT_BYTES,
    AuditEvent,
    JSONValue,
    canonical_json,
    format_timestamp,
    parse_timestamp,
    sign_event,
    timestamp_micros,
    verify_event_signature,
)

__all__ = [
    "FORMAT_VERSION",
    "MAX_EVENT_BYTES",
    "AuditEvent",
    "JSONValue",
    "canonical_json",
    "format_timestamp",
    "parse_timestamp",
    "sign_event",
    "timestamp_micros",
    "verify_event_signature",
]
