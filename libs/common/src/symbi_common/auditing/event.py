"""Audit events and their one canonical byte encoding.

An :class:`AuditEvent` is what every service reports about an action. Its *canonical bytes*
are the only input of the log's hashes (leaf hash, chain hash, Merkle tree), so they are
defined exactly here and an offline verifier can recompute them from an export alone.

Canonical encoding, format version 1
------------------------------------
A JSON object with exactly these keys, serialised with sorted keys, no insignificant
whitespace (``,`` and ``:`` separators), UTF-8 without escaping non-ASCII characters, and
no NaN/Infinity — in Python ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=False, allow_nan=False).encode("utf-8")``:

=====================  ================================================================
``v``                  ``1`` (the format version)
``event_id``           lower-case hyphenated UUID text
``timestamp``          UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six fraction digits)
``agent_id``           string, ``""`` when the event concerns no agent
``actor``              string, the principal that acted (never empty)
``event_type``         string such as ``policy.decision`` (never empty)
``details``            JSON object (any JSON values inside; floats as Python's shortest
                       round-trip repr, integers exact)
``trace_id``           string, ``""`` when unknown
``publisher_key_id``   string, the publisher's key id, ``""`` when unsigned
``publisher_signature`` standard base64 of the publisher's Ed25519 signature, ``""``
                       when unsigned
``compliance_tags``    array of tags, sorted, without duplicates
=====================  ================================================================

Re-encoding a parsed canonical object yields the same bytes, so the encoding survives a
round trip through any JSON file. The publisher's signature covers the *signing payload*:
the canonical bytes of the same object without the ``publisher_signature`` key.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import nacl.exceptions
import nacl.signing

from symbi_common.errors import InvalidArgument

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

JSONValue: TypeAlias = bool | int | float | str | list[Any] | dict[str, Any] | None

FORMAT_VERSION = 1
"""Version of the canonical encoding, written as the ``v`` key."""

MAX_EVENT_BYTES = 256 * 1024
"""Largest canonical encoding accepted; bigger payloads belong in an external store."""

_MAX_TEXT = 512
_MAX_TAGS = 32
_TAG = re.compile(r"[A-Z0-9][A-Z0-9_.-]{0,31}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_KEYS = frozenset(
    {
        "v",
        "event_id",
        "timestamp",
        "agent_id",
        "actor",
        "event_type",
        "details",
        "trace_id",
        "publisher_key_id",
        "publisher_signature",
        "compliance_tags",
    }
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def canonical_json(value: JSONValue) -> bytes:
    """Deterministic JSON bytes of ``value`` (sorted keys, no whitespace, UTF-8)."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        # TypeError: not JSON (bytes, sets, objects); ValueError: NaN/Infinity or a cycle;
        # UnicodeEncodeError: lone surrogates, which have no UTF-8 encoding.
        raise InvalidArgument(
            f"value is not canonical-JSON encodable ({exc}); allowed are JSON objects, "
            "arrays, strings, finite numbers, booleans and null",
            reason="NOT_JSON",
        ) from exc


def format_timestamp(moment: datetime) -> str:
    """The canonical text of a timestamp: UTC with exactly six fraction digits and ``Z``."""
    utc = moment.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond:06d}Z"
    )


def parse_timestamp(text: str) -> datetime:
    """Parse the canonical timestamp text; anything else is an :class:`InvalidArgument`."""
    if not _TIMESTAMP.fullmatch(text):
        raise InvalidArgument(
            f"timestamp {text!r} is not canonical; expected YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC)",
            reason="BAD_TIMESTAMP",
        )
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidArgument(f"timestamp {text!r} is not a real date: {exc}") from exc


def timestamp_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch (exact integer arithmetic, no float rounding)."""
    return (moment.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_text(name: str, value: object, *, required: bool) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string, got {type(value).__name__}")
    if required and not value:
        raise InvalidArgument(f"{name} must not be empty", details={"field": name})
    if len(value) > _MAX_TEXT:
        raise InvalidArgument(
            f"{name} is {len(value)} characters; at most {_MAX_TEXT} are allowed",
            details={"field": name},
        )
    if _CONTROL.search(value):
        raise InvalidArgument(f"{name} contains control characters", details={"field": name})
    return value


def _normalise_tags(tags: Iterable[str]) -> tuple[str, ...]:
    if isinstance(tags, str):
        raise InvalidArgument("compliance_tags must be a list of tags, not one string")
    result = tuple(sorted(set(tags)))
    if len(result) > _MAX_TAGS:
        raise InvalidArgument(f"{len(result)} compliance tags; at most {_MAX_TAGS} are allowed")
    for tag in result:
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise InvalidArgument(
                f"compliance tag {tag!r} is invalid; tags are 1-32 characters of A-Z, 0-9, "
                "'_', '.', '-' starting with a letter or digit (e.g. HIPAA, GDPR, SOX)",
                reason="BAD_TAG",
            )
    return result


@dataclasses.dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audited action, immutable; see the module docstring for its canonical bytes.

    Build one with :meth:`create` (which takes ``details`` as a mapping); the constructor
    takes ``details_json`` as text and normalises it to canonical JSON. Values are checked
    on construction and every failure is an :class:`InvalidArgument` naming the field.
    """

    event_id: uuid.UUID
    timestamp: datetime
    actor: str
    event_type: str
    agent_id: str = ""
    details_json: str = "{}"
    trace_id: str = ""
    publisher_key_id: str = ""
    publisher_signature: bytes = b""
    compliance_tags: tuple[str, ...] = ()
    _canonical: bytes = dataclasses.field(init=False, repr=False, compare=False, hash=False)
    _signing_payload: bytes | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.event_id, uuid.UUID):
            raise InvalidArgument("event_id must be a UUID")
        if not isinstance(self.timestamp, datetime) or self.timestamp.tzinfo is None:
            raise InvalidArgument("timestamp must be a timezone-aware datetime")
        _check_text("actor", self.actor, required=True)
        _check_text("event_type", self.event_type, required=True)
        _check_text("agent_id", self.agent_id, required=False)
        _check_text("trace_id", self.trace_id, required=False)
        _check_text("publisher_key_id", self.publisher_key_id, required=False)
        if not isinstance(self.publisher_signature, bytes):
            raise InvalidArgument("publisher_signature must be bytes")
        if len(self.publisher_signature) > 1024:
            raise InvalidArgument("publisher_signature is longer than 1024 bytes")
        try:
            details = json.loads(self.details_json)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"details are not valid JSON: {exc}") from exc
        if not isinstance(details, dict):
            raise InvalidArgument(
                f"details must be a JSON object, got {type(details).__name__}",
                details={"field": "details"},
            )
        set_ = object.__setattr__
        set_(self, "timestamp", self.timestamp.astimezone(UTC))
        set_(self, "details_json", canonical_json(details).decode("utf-8"))
        set_(self, "compliance_tags", _normalise_tags(self.compliance_tags))
        canonical = canonical_json(self._json_object(details))
        if len(canonical) > MAX_EVENT_BYTES:
            raise InvalidArgument(
                f"event {self.event_id} encodes to {len(canonical)} bytes; at most "
                f"{MAX_EVENT_BYTES} are allowed",
                reason="EVENT_TOO_LARGE",
            )
        set_(self, "_canonical", canonical)

    # ------------------------------------------------------------------ construction

    @classmethod
    def create(
        cls,
        *,
        event_type: str,
        actor: str,
        details: Mapping[str, JSONValue] | None = None,
        agent_id: str = "",
        trace_id: str = "",
        compliance_tags: Iterable[str] = (),
        event_id: uuid.UUID | None = None,
        timestamp: datetime | None = None,
        publisher_key_id: str = "",
        publisher_signature: bytes = b"",
    ) -> AuditEvent:
        """A new event; ``event_id`` defaults to a random UUID and ``timestamp`` to now."""
        if details is not None and not isinstance(details, Mapping):
            raise InvalidArgument("details must be a mapping (a JSON object)")
        if isinstance(compliance_tags, str):
            raise InvalidArgument("compliance_tags must be a list of tags, not one string")
        return cls(
            event_id=event_id or uuid.uuid4(),
            timestamp=timestamp or datetime.now(UTC),
            actor=actor,
            event_type=event_type,
            agent_id=agent_id,
            details_json=canonical_json(dict(details or {})).decode("utf-8"),
            trace_id=trace_id,
            publisher_key_id=publisher_key_id,
            publisher_signature=publisher_signature,
            compliance_tags=tuple(compliance_tags),
        )

    @classmethod
    def from_json_object(cls, obj: object) -> AuditEvent:
        """Parse the canonical JSON object (as found in an export); strict about keys."""
        if not isinstance(obj, dict):
            raise InvalidArgument("an audit event must be a JSON object")
        keys = set(obj)
        if keys != _KEYS:
            missing = sorted(_KEYS - keys)
            extra = sorted(keys - _KEYS)
            raise InvalidArgument(
                f"audit event keys do not match format v{FORMAT_VERSION}: missing {missing}, "
                f"unexpected {extra}",
                reason="BAD_EVENT_KEYS",
            )
        if obj["v"] != FORMAT_VERSION or isinstance(obj["v"], bool):
            raise InvalidArgument(
                f"audit event format v={obj['v']!r} is not supported; only {FORMAT_VERSION}"
            )
        try:
            event_id = uuid.UUID(obj["event_id"])
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidArgument(f"event_id {obj['event_id']!r} is not a UUID") from exc
        if str(event_id) != obj["event_id"]:
            raise InvalidArgument(
                f"event_id {obj['event_id']!r} is not in canonical lower-case hyphenated form"
            )
        if not isinstance(obj["timestamp"], str):
            raise InvalidArgument("timestamp must be a string")
        signature_text = obj["publisher_signature"]
        if not isinstance(signature_text, str):
            raise InvalidArgument("publisher_signature must be a base64 string")
        try:
            signature = base64.b64decode(signature_text, validate=True)
        except binascii.Error as exc:
            raise InvalidArgument(f"publisher_signature is not base64: {exc}") from exc
        tags = obj["compliance_tags"]
        if not isinstance(tags, list):
            raise InvalidArgument("compliance_tags must be an array")
        if not isinstance(obj["details"], dict):
            raise InvalidArgument("details must be a JSON object")
        return cls(
            event_id=event_id,
            timestamp=parse_timestamp(obj["timestamp"]),
            actor=obj["actor"],
            event_type=obj["event_type"],
            agent_id=obj["agent_id"],
            details_json=canonical_json(obj["details"]).decode("utf-8"),
            trace_id=obj["trace_id"],
            publisher_key_id=obj["publisher_key_id"],
            publisher_signature=signature,
            compliance_tags=tuple(tags),
        )

    @classmethod
    def from_canonical(cls, data: bytes) -> AuditEvent:
        """Parse canonical bytes (as stored by the log)."""
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"audit event bytes are not JSON: {exc}") from exc
        return cls.from_json_object(obj)

    # ------------------------------------------------------------------ encodings

    @property
    def details(self) -> dict[str, JSONValue]:
        """A fresh copy of the details object (the event itself stays immutable)."""
        result: dict[str, JSONValue] = json.loads(self.details_json)
        return result

    @property
    def canonical_bytes(self) -> bytes:
        """The canonical encoding (format v1): the input of every hash in the log."""
        return self._canonical

    def to_json_object(self) -> dict[str, JSONValue]:
        """The canonical JSON object (a fresh dict)."""
        return self._json_object(self.details)

    def signing_payload(self) -> bytes:
        """The bytes a publisher signs: canonical JSON without ``publisher_signature``
        (computed once per event: verifiers call it on every ingest)."""
        cached = self._signing_payload
        if cached is None:
            obj = self.to_json_object()
            del obj["publisher_signature"]
            cached = canonical_json(obj)
            object.__setattr__(self, "_signing_payload", cached)
        return cached

    @property
    def time_micros(self) -> int:
        """The timestamp as microseconds since the Unix epoch."""
        return timestamp_micros(self.timestamp)

    def _json_object(self, details: dict[str, JSONValue]) -> dict[str, JSONValue]:
        return {
            "v": FORMAT_VERSION,
            "event_id": str(self.event_id),
            "timestamp": format_timestamp(self.timestamp),
            "agent_id": self.agent_id,
            "actor": self.actor,
            "event_type": self.event_type,
            "details": details,
            "trace_id": self.trace_id,
            "publisher_key_id": self.publisher_key_id,
            "publisher_signature": base64.b64encode(self.publisher_signature).decode("ascii"),
            "compliance_tags": list(self.compliance_tags),
        }


def sign_event(event: AuditEvent, key_id: str, key: nacl.signing.SigningKey) -> AuditEvent:
    """A copy of ``event`` signed by a publisher: Ed25519 over its signing payload."""
    unsigned = event
    if event.publisher_key_id != key_id or event.publisher_signature:
        unsigned = dataclasses.replace(event, publisher_key_id=key_id, publisher_signature=b"")
    signature = key.sign(unsigned.signing_payload()).signature
    return dataclasses.replace(unsigned, publisher_signature=signature)


def verify_event_signature(event: AuditEvent, public_key: bytes) -> bool:
    """Whether the publisher signature is a valid Ed25519 signature by ``public_key``."""
    if len(event.publisher_signature) != 64 or len(public_key) != 32:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(
            event.signing_payload(), event.publisher_signature
        )
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True
