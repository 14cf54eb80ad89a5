"""Compliance reports over in-memory entries."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from symbi_audit.event import AuditEvent
from symbi_audit.merkle import leaf_hash
from symbi_audit.query import LogEntry
from symbi_audit.report import ReportRules, build_report

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def entry(i: int, event_type: str, *, agent: str = "a1", **details: object) -> LogEntry:
    event = AuditEvent.create(
        event_id=uuid.UUID(int=i + 1),
        timestamp=T0 + timedelta(minutes=i),
        event_type=event_type,
        actor="svc:x",
        agent_id=agent,
        details=details,  # type: ignore[arg-type]
        compliance_tags=("HIPAA",) if i % 2 else (),
    )
    return LogEntry(i, event, leaf_hash(event.canonical_bytes), bytes(32))


ENTRIES = [
    entry(0, "policy.decision", decision="allow", action="fs.read"),
    entry(
        1, "policy.decision", agent="a2", decision="deny", action="net.connect", reason="no|egress"
    ),
    entry(2, "policy.changed", policy_id="p1", change="put"),
    entry(3, "sandbox.violation", agent="a2", kind="oom"),
    entry(4, "policy.decision", decision="DENY", action="fs.write"),
    entry(5, "tool.call", tool="git.log"),
    entry(90, "policy.decision", decision="deny"),  # outside the window
]


def test_counts_and_sections() -> None:
    report = build_report(
        ENTRIES, origin="o/log", since=T0, until=T0 + timedelta(hours=1), generated_at=T0
    )
    assert report.total == 6
    assert (report.first_index, report.last_index) == (0, 5)
    assert report.by_type == {
        "policy.decision": 3,
        "policy.changed": 1,
        "sandbox.violation": 1,
        "tool.call": 1,
    }
    assert report.by_agent == {"a1": 4, "a2": 2}
    assert report.by_decision == {"none": 3, "deny": 2, "allow": 1}
    assert report.by_tag == {"HIPAA": 3}
    assert report.denied_total == 2
    assert [i.index for i in report.denied] == [1, 4]
    assert report.denied[0].summary == "action=net.connect, reason=no|egress"
    assert [i.index for i in report.policy_changes] == [2]
    assert [i.index for i in report.sandbox_violations] == [3]


def test_json_and_markdown_renderings() -> None:
    rules = ReportRules(max_listed=1)
    report = build_report(
        ENTRIES, origin="o/log", since=T0, until=T0 + timedelta(hours=1), rules=rules
    )
    data = json.loads(json.dumps(report.to_json()))
    assert data["denied"]["total"] == 2
    assert len(data["denied"]["events"]) == 1
    assert data["since"] == "2026-03-01T00:00:00.000000Z"
    md = report.to_markdown()
    assert md.startswith("# Audit compliance report — o/log")
    assert "| policy.decision | 3 |" in md
    assert "no\\|egress" in md  # a pipe in a value does not break the table
    assert "…and 1 more" in md


def test_empty_window() -> None:
    report = build_report([], origin="o/log", since=T0, until=T0)
    assert report.total == 0
    assert "None." in report.to_markdown()
