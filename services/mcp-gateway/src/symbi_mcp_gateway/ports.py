"""The outside world, as the gateway's domain core sees it.

The wiring phase supplies adapters: the policy service (gRPC or bus), the audit stream, an
alert subject, a JetStream KV bucket of pins (:class:`~symbi_mcp_gateway.pins.PinStore`), and
the agent identity check for the gateway's own MCP endpoint. Every method here may be slow or
fail; the gateway calls each under a deadline.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from typing import Protocol

from symbi_mcp_gateway.audit import AuditEvent, SecurityAlert
from symbi_mcp_gateway.policy import PolicyDecision, ToolCallAuthorization

__all__ = [
    "AgentAuthenticator",
    "AlertPort",
    "AuditPort",
    "PolicyPort",
    "StaticTokenAuthenticator",
]


class PolicyPort(Protocol):
    """Asks the policy engine."""

    async def authorize(self, request: ToolCallAuthorization) -> PolicyDecision:
        """Decide one tool call.

        Raises:
            SymbiError: the engine could not decide (the gateway then refuses: fail closed).
        """
        ...

    async def authorize_many(
        self, requests: Sequence[ToolCallAuthorization]
    ) -> Sequence[PolicyDecision]:
        """Decide several (one per request, same order); used to filter tool listings."""
        ...


class AuditPort(Protocol):
    """Appends to the audit log."""

    async def emit(self, event: AuditEvent) -> None:
        """Record one event durably, or raise."""
        ...


class AlertPort(Protocol):
    """Tells operators about something that needs them."""

    async def raise_alert(self, alert: SecurityAlert) -> None:
        """Deliver one alert, or raise."""
        ...


class AgentAuthenticator(Protocol):
    """Maps the bearer token an agent presents on the gateway's MCP endpoint to its id."""

    async def authenticate(self, token: str) -> str | None:
        """The agent id the token belongs to, or None when it is not valid."""
        ...


class StaticTokenAuthenticator:
    """An :class:`AgentAuthenticator` over a fixed token → agent id table (development and
    tests; the platform uses signed, expiring tokens). Comparison is constant-time."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._tokens = tuple((token.encode(), agent) for token, agent in tokens.items())

    async def authenticate(self, token: str) -> str | None:
        presented = token.encode()
        found: str | None = None
        for known, agent in self._tokens:
            # No early exit: every token is compared, whichever matches.
            if hmac.compare_digest(known, presented):
                found = agent
        return found
