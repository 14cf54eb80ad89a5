"""Pure parts of the service process: converters, subjects and consumer, settings, alarms,
the HTML report."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.js import api as js_api

from symbi.audit.v1 import audit_pb2
from symbi_audit import convert
from symbi_audit.event import AuditEvent
from symbi_audit.events import (
    IngestAlarms,
    checkpoint_subject,
    ingest_consumer,
    subject_token,
)
from symbi_audit.ingest import IngestRecord, PublisherStatus
from symbi_audit.log import LogCheck
from symbi_audit.merkle import leaf_hash
from symbi_audit.query import LogEntry
from symbi_audit.report import build_report
from symbi_audit.settings import AuditSettings
from symbi_audit.store import RangeCheck
from symbi_common.config import load_settings
from symbi_common.errors import ConfigError, InvalidArgument


def _event(**overrides: Any) -> AuditEvent:
    fields: dict[str, Any] = {
        "event_id": uuid.UUID(int=7),
        "timestamp": datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        "event_type": "policy.decision",
        "actor": "svc-policy-a",
        "agent_id": "agent-1",
        "details": {"decision": "deny", "action": "<script>"},
    }
    fields.update(overrides)
    return AuditEvent.create(**fields)


def test_filter_from_request_merges_types_and_converts_times() -> None:
    request = audit_pb2.QueryRequest(
        event_type="a.b",
        event_types=["c.d", "a.b"],
        since_ms=1_000,
        until_ms=2_000,
        agent_id="agent-1",
        publisher_status=audit_pb2.PUBLISHER_STATUS_UNSIGNED,
    )
    where = convert.filter_from_request(request)
    assert where.event_types == ("a.b", "c.d")
    assert where.since == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert where.until == datetime(1970, 1, 1, 0, 0, 2, tzinfo=UTC)
    assert where.agent_id == "agent-1"
    assert where.actor is None
    assert where.publisher_status == PublisherStatus.UNSIGNED
    empty = convert.filter_from_request(audit_pb2.QueryRequest())
    assert empty.event_types == ()
    assert empty.since is None
    assert empty.publisher_status is None


@pytest.mark.parametrize(
    "request_",
    [
        audit_pb2.QueryRequest(since_ms=-5),
        audit_pb2.QueryRequest(until_ms=10**18),
        audit_pb2.QueryRequest(since_ms=5000, until_ms=1000),
        audit_pb2.QueryRequest(publisher_status=99),  # type: ignore[arg-type]
    ],
)
def test_filter_from_request_refuses_bad_input(request_: audit_pb2.QueryRequest) -> None:
    with pytest.raises(InvalidArgument):
        convert.filter_from_request(request_)


def test_page_size_defaults_and_caps() -> None:
    assert convert.page_size(0) == convert.DEFAULT_PAGE_SIZE
    assert convert.page_size(5) == 5
    assert convert.page_size(50_000) == 1000


def test_entry_to_proto_carries_the_hashed_bytes_and_ingest_record() -> None:
    event = _event(compliance_tags=("GDPR",))
    record = IngestRecord(
        PublisherStatus.BAD_SIGNATURE, "svc-x-a", "svc-y-a", 1_700_000_000_123_456
    )
    entry = LogEntry(3, event, leaf_hash(event.canonical_bytes), b"\x01" * 32, record)
    message = convert.entry_to_proto(entry)
    assert message.index == 3
    assert message.canonical_event == event.canonical_bytes
    assert message.leaf_hash == leaf_hash(message.canonical_event)
    assert message.publisher_status == audit_pb2.PUBLISHER_STATUS_BAD_SIGNATURE
    assert (message.sender, message.publisher) == ("svc-x-a", "svc-y-a")
    assert message.appended_at_ms == 1_700_000_000_123
    assert message.event.event_id == str(event.event_id)
    assert list(message.event.compliance_tags) == ["GDPR"]
    bare = convert.entry_to_proto(LogEntry(0, event, b"", b""))
    assert bare.publisher_status == audit_pb2.PUBLISHER_STATUS_UNSPECIFIED


def test_check_to_proto_counts_entries_before_the_bad_one() -> None:
    bad = convert.check_to_proto(LogCheck(RangeCheck(10, 50, 17, "chain hash does not match"), 0))
    assert (bad.ok, bad.checked, bad.first_bad_entry) == (False, 7, "17")
    good = convert.check_to_proto(LogCheck(RangeCheck(10, 50), 3))
    assert (good.ok, good.checked, good.first_bad_entry, good.checkpoints_checked) == (
        True,
        40,
        "",
        3,
    )


def test_report_formats() -> None:
    assert convert.report_format("") == "json"
    assert convert.report_format(" HTML ") == "html"
    assert convert.report_format("md") == "markdown"
    with pytest.raises(InvalidArgument):
        convert.report_format("pdf")


def test_html_report_escapes_every_value() -> None:
    event = _event(agent_id="agent-<b>")
    entry = LogEntry(0, event, leaf_hash(event.canonical_bytes), b"\x00" * 32)
    since = event.timestamp - timedelta(hours=1)
    report = build_report([entry], origin="log<&>", since=since, until=since + timedelta(days=1))
    content_type, body = convert.report_body(report, "html")
    page = body.decode()
    assert content_type.startswith("text/html")
    assert "<script>" not in page
    assert "action=&lt;script&gt;" in page
    assert "agent-&lt;b&gt;" in page
    assert "log&lt;&amp;&gt;" in page
    assert page.count("<table>") == 4  # by type, agent, decision (no tags); denied actions


def test_subjects_and_the_per_replica_consumer() -> None:
    assert subject_token("audit.example.com/prod") == "audit_example_com_prod"
    assert checkpoint_subject("symbi.audit/a") == "symbi.checkpoint.symbi_audit_a"
    spec = ingest_consumer("SYMBI_AUDIT", "b", batch=500, ack_wait_s=10)
    assert spec.durable == "audit-log-b"
    assert spec.filter_subjects == ("symbi.audit.>",)
    assert spec.deliver_policy == js_api.DeliverPolicy.ALL
    assert spec.max_deliver == -1
    assert spec.max_ack_pending >= 2000


def test_settings_defaults_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBI_CONFIG_PATH", "")
    monkeypatch.setenv("SYMBI_INSTANCE_ID", "r2")
    monkeypatch.setenv("SYMBI_DATA_DIR", "/var/lib/symbi")
    monkeypatch.setenv("SYMBI_BUS__FETCH_BATCH", "128")  # a partial [bus] override
    settings = load_settings(AuditSettings)
    assert settings.log_origin == "symbi.audit/r2"
    assert str(settings.key_path) == "/var/lib/symbi/audit/log.key"
    assert str(settings.store_path) == "/var/lib/symbi/audit/audit.db"
    assert settings.bus.rate_per_sender == 0  # never rate-limit the record
    assert settings.bus.clock_skew_s == 3600  # a backlog after an outage is still accepted
    assert settings.bus.fetch_batch == 128
    monkeypatch.setenv("SYMBI_AUDIT__ORIGIN", "has space")
    with pytest.raises(ConfigError, match=r"audit\.origin"):
        load_settings(AuditSettings)
    monkeypatch.setenv("SYMBI_AUDIT__ORIGIN", "audit.example/prod")
    monkeypatch.setenv("SYMBI_AUDIT__CHECKPOINT_EVERY_SECONDS", "0")
    with pytest.raises(ConfigError, match="checkpoint_every_seconds"):
        load_settings(AuditSettings)


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any], uuid.UUID]] = []

    async def record(self, event_type: str, **kwargs: Any) -> None:
        self.events.append((event_type, kwargs["details"], kwargs["event_id"]))


class _Bus:
    def __init__(self) -> None:
        self.recorder = _Recorder()


async def test_alarms_are_rate_limited_per_sender_and_count_what_they_hold_back() -> None:
    bus = _Bus()
    alarms = IngestAlarms(bus, rate=0.001, burst=2)  # type: ignore[arg-type]
    for i in range(5):
        await alarms.raise_alarm("unverified_event", "svc-a", f"e{i}", {"n": str(i)})
    await alarms.raise_alarm("unverified_event", "svc-b", "e9", {})
    senders = [details["sender"] for _, details, _ in bus.recorder.events]
    assert senders == ["svc-a", "svc-a", "svc-b"]
    assert bus.recorder.events[0][0] == "audit.unverified_event"
    # The same alarm from two replicas is one event in the log: the id is derived.
    again = IngestAlarms(_Bus(), rate=1)  # type: ignore[arg-type]
    await again.raise_alarm("unverified_event", "svc-a", "e0", {})
    assert again.bus.recorder.events[0][2] == bus.recorder.events[0][2]  # type: ignore[attr-defined]
