"""The audit event model and its canonical encoding."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symbi_audit.event import (
    AuditEvent,
    canonical_json,
    format_timestamp,
    parse_timestamp,
    sign_event,
    verify_event_signature,
)
from symbi_common.errors import InvalidArgument

EVENT_ID = uuid.UUID("0b9e4c2e-8f1a-4c56-9d1e-2a3b4c5d6e7f")
WHEN = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def sample(**overrides: object) -> AuditEvent:
    fields: dict[str, object] = {
        "event_type": "policy.decision",
        "actor": "svc:policy",
        "agent_id": "agent-7",
        "details": {"decision": "deny", "action": "net.connect", "n": 3, "ü": [1.5, None]},
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "compliance_tags": ["SOX", "GDPR", "SOX"],
        "event_id": EVENT_ID,
        "timestamp": WHEN,
    }
    fields.update(overrides)
    return AuditEvent.create(**fields)  # type: ignore[arg-type]


def test_canonical_bytes_are_exactly_the_documented_encoding() -> None:
    event = sample()
    expected = (
        '{"actor":"svc:policy","agent_id":"agent-7","compliance_tags":["GDPR","SOX"],'
        '"details":{"action":"net.connect","decision":"deny","n":3,"ü":[1.5,null]},'
        '"event_id":"0b9e4c2e-8f1a-4c56-9d1e-2a3b4c5d6e7f","event_type":"policy.decision",'
        '"publisher_key_id":"","publisher_signature":"",'
        '"timestamp":"2026-01-02T03:04:05.123456Z",'
        '"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","v":1}'
    ).encode()
    assert event.canonical_bytes == expected


def test_round_trip_through_json_reproduces_the_bytes() -> None:
    event = sign_event(sample(), "svc:policy#1", nacl.signing.SigningKey.generate())
    text = json.dumps(event.to_json_object(), indent=2)  # any formatting
    again = AuditEvent.from_json_object(json.loads(text))
    assert again == event
    assert again.canonical_bytes == event.canonical_bytes
    assert AuditEvent.from_canonical(event.canonical_bytes) == event


def test_timestamps_are_normalised_to_utc() -> None:
    local = WHEN.astimezone(timezone(timedelta(hours=5)))
    assert sample(timestamp=local).canonical_bytes == sample().canonical_bytes
    assert format_timestamp(WHEN) == "2026-01-02T03:04:05.123456Z"
    assert parse_timestamp("2026-01-02T03:04:05.123456Z") == WHEN
    for bad in [
        "2026-01-02T03:04:05Z",
        "2026-01-02 03:04:05.123456Z",
        "2026-13-02T03:04:05.000000Z",
    ]:
        with pytest.raises(InvalidArgument):
            parse_timestamp(bad)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"actor": ""}, "actor must not be empty"),
        ({"event_type": "x" * 600}, "at most"),
        ({"agent_id": "a\nb"}, "control"),
        ({"compliance_tags": ["hipaa"]}, "compliance tag"),
        ({"compliance_tags": "HIPAA"}, "list of tags"),
        ({"details": {"x": float("nan")}}, "canonical-JSON"),
        ({"details": {"x": b"bytes"}}, "canonical-JSON"),
        ({"details": {"x": "\ud800"}}, "canonical-JSON"),
        ({"details": {"blob": "x" * 300_000}}, "at most"),
        ({"timestamp": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_invalid_events_are_rejected_with_the_field_named(
    overrides: dict[str, object], fragment: str
) -> None:
    with pytest.raises(InvalidArgument, match=fragment):
        sample(**overrides)


def test_strict_parsing_of_exported_objects() -> None:
    obj = sample().to_json_object()
    for mutate in [
        lambda o: o.pop("trace_id"),
        lambda o: o.update(extra=1),
        lambda o: o.update(v=2),
        lambda o: o.update(event_id=str(EVENT_ID).upper()),
        lambda o: o.update(details=[1]),
        lambda o: o.update(publisher_signature="%%%"),
    ]:
        bad = json.loads(json.dumps(obj))
        mutate(bad)
        with pytest.raises(InvalidArgument):
            AuditEvent.from_json_object(bad)


def test_details_are_a_copy() -> None:
    event = sample()
    event.details["decision"] = "allow"
    assert event.details["decision"] == "deny"


def test_publisher_signature_covers_everything_but_itself() -> None:
    key = nacl.signing.SigningKey.generate()
    signed = sign_event(sample(), "svc:policy#1", key)
    public = bytes(key.verify_key)
    assert verify_event_signature(signed, public)
    import dataclasses

    tampered = dataclasses.replace(signed, agent_id="agent-8")
    assert not verify_event_signature(tampered, public)
    assert not verify_event_signature(sample(), public)  # unsigned
    assert not verify_event_signature(signed, bytes(nacl.signing.SigningKey.generate().verify_key))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_any_json_details_round_trip_to_identical_bytes(details: dict[str, object]) -> None:
    event = sample(details=details)
    reparsed = AuditEvent.from_json_object(json.loads(event.canonical_bytes))
    assert reparsed.canonical_bytes == event.canonical_bytes
    assert canonical_json(json.loads(event.canonical_bytes)) == event.canonical_bytes
