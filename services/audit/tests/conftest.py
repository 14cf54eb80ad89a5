"""Shared fixtures of the audit tests: deterministic events and a log key."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from symbi_audit.event import AuditEvent
from symbi_audit.note import NoteSigner

ORIGIN = "audit.symbi.test/log"
BASE_TIME = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TYPES = ("policy.decision", "tool.call", "sandbox.violation", "policy.changed")


def make_event(i: int, *, seed: str = "t") -> AuditEvent:
    """Event number ``i``: the same ``i`` and ``seed`` always give the same event."""
    event_type = TYPES[i % len(TYPES)]
    details: dict[str, object] = {"n": i}
    if event_type == "policy.decision":
        details.update(decision="deny" if i % 8 == 0 else "allow", action=f"act-{i % 3}")
    if event_type == "sandbox.violation":
        details.update(kind="oom")
    return AuditEvent.create(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"symbi-test/{seed}/{i}"),
        timestamp=BASE_TIME + timedelta(seconds=i),
        event_type=event_type,
        actor=f"svc:{event_type.split('.')[0]}",
        agent_id=f"agent-{i % 5}",
        details=details,
        trace_id=f"{i:032x}",
        compliance_tags=("GDPR",) if i % 2 else ("SOX", "HIPAA"),
    )


@pytest.fixture
def events() -> Callable[..., list[AuditEvent]]:
    """``events(start, stop)``: deterministic events numbered start..stop-1."""

    def build(start: int, stop: int | None = None, *, seed: str = "t") -> list[AuditEvent]:
        if stop is None:
            start, stop = 0, start
        return [make_event(i, seed=seed) for i in range(start, stop)]

    return build


@pytest.fixture(scope="session")
def log_key() -> NoteSigner:
    """The test log's signing key."""
    return NoteSigner.generate(ORIGIN)
