"""Ports the gateway's tests plug in: recorders and a rule-table policy (no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
from schemapin import KeyManager

from symbi_mcp_gateway import (
    AuditEvent,
    PolicyDecision,
    SecurityAlert,
    ToolCallAuthorization,
)


class RecordingAudit:
    """An AuditPort that keeps every event."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def emit(self, event: AuditEvent) -> None:
        self.events.append(event)

    def of_type(self, event_type: str) -> list[AuditEvent]:
        return [event for event in self.events if event.event_type == event_type]

    def calls(self, **match: object) -> list[AuditEvent]:
        """``mcp.tool_call`` events whose details contain ``match``."""
        return [
            event
            for event in self.of_type("mcp.tool_call")
            if all(event.details.get(key) == value for key, value in match.items())
        ]


class RecordingAlerts:
    """An AlertPort that keeps every alert."""

    def __init__(self) -> None:
        self.alerts: list[SecurityAlert] = []

    async def raise_alert(self, alert: SecurityAlert) -> None:
        self.alerts.append(alert)

    def kinds(self) -> list[str]:
        return [alert.kind.value for alert in self.alerts]


@dataclass
class RulePolicy:
    """A PolicyPort: allow everything except ``(agent, "<server>/<tool>")`` pairs in
    ``denied``; ``decide`` overrides when set."""

    denied: set[tuple[str, str]] = field(default_factory=set)
    decide: Callable[[ToolCallAuthorization], PolicyDecision] | None = None
    asked: list[ToolCallAuthorization] = field(default_factory=list)

    async def authorize(self, request: ToolCallAuthorization) -> PolicyDecision:
        self.asked.append(request)
        if self.decide is not None:
            return self.decide(request)
        if (request.agent_id, request.tool_id) in self.denied:
            return PolicyDecision.deny(f"{request.tool_id} is forbidden to {request.agent_id}")
        return PolicyDecision.allow()

    async def authorize_many(
        self, requests: Sequence[ToolCallAuthorization]
    ) -> Sequence[PolicyDecision]:
        return [await self.authorize(request) for request in requests]


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_pem: str


def new_keypair() -> KeyPair:
    private, public = KeyManager.generate_keypair()
    return KeyPair(
        KeyManager.export_private_key_pem(private), KeyManager.export_public_key_pem(public)
    )


@pytest.fixture
def audit() -> RecordingAudit:
    return RecordingAudit()


@pytest.fixture
def alerts() -> RecordingAlerts:
    return RecordingAlerts()


@pytest.fixture
def policy() -> RulePolicy:
    return RulePolicy()


@pytest.fixture
def keypair() -> KeyPair:
    return new_keypair()


@pytest.fixture
def make_keypair() -> Callable[[], KeyPair]:
    return new_keypair
