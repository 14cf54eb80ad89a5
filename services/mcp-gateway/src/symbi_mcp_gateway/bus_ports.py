"""The domain core's ports over the secure bus: policy, audit, alerts.

- :class:`BusPolicy` asks the policy service (``symbi.rpc.policy.evaluate`` /
  ``evaluate_batch``) through :class:`~symbi_common.policy_client.PolicyClient`. The question is
  principal ``Agent::"<agent>"``, action ``tool_call``, resource ``Tool::"<server>/<tool>"``,
  context ``{tool, server, args_summary}``; the request carries the ``Tool`` entity (``name``,
  ``verified``, parent ``McpServer::"<server>"``) and the ``McpServer`` entity (``domain``,
  ``trust_mode``) — the gateway is the authority on both, so policies can test
  ``resource.verified`` or ``resource in Symbi::McpServer::"time"``. A policy service that
  cannot answer makes the call fail closed (``POLICY_UNAVAILABLE``).
- :class:`BusAudit` signs and publishes each event with the process's
  :class:`~symbi_common.auditing.AuditRecorder` (``symbi.audit.<type>``).
- :class:`BusAlerts` publishes a :class:`~symbi.mcp_gateway.v1.mcp_gateway_pb2.SecurityAlert`
  on ``symbi.alert.mcp`` (topic ``platform``) and audits it as ``mcp.alert``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from symbi.mcp_gateway.v1 import mcp_gateway_pb2
from symbi_common.auditing import AuditRecorder
from symbi_common.bus import SecureBus
from symbi_common.errors import Unavailable
from symbi_common.policy_client import EntityRef, PolicyClient, PolicyQuestion
from symbi_common.policy_client import PolicyDecision as ServiceDecision
from symbi_mcp_gateway.audit import GATEWAY_ACTOR, AuditEvent, SecurityAlert
from symbi_mcp_gateway.policy import Decision, PolicyDecision, ToolCallAuthorization

__all__ = [
    "ALERT_SUBJECT",
    "PLATFORM_TOPIC",
    "BusAlerts",
    "BusAudit",
    "BusPolicy",
    "decision_from_service",
    "question_for",
]

logger = logging.getLogger(__name__)

PLATFORM_TOPIC = "platform"
ALERT_SUBJECT = "symbi.alert.mcp"

_DECISIONS = {
    "allow": Decision.ALLOW,
    "allow_with_conditions": Decision.ALLOW_WITH_CONDITIONS,
    "deny": Decision.DENY,
}


def question_for(request: ToolCallAuthorization) -> PolicyQuestion:
    """The policy question of one tool call (or, without ``args_summary``, one listing)."""
    context: dict[str, Any] = {"tool": request.tool, "server": request.server}
    if request.args_summary is not None:
        context["args_summary"] = request.args_summary
    server_attrs: dict[str, Any] = {}
    if request.domain:
        server_attrs["domain"] = request.domain
    if request.trust_mode:
        server_attrs["trust_mode"] = request.trust_mode
    entities: list[Mapping[str, Any]] = [
        {
            "uid": {"type": "Symbi::Tool", "id": request.tool_id},
            "attrs": {"name": request.tool, "verified": request.verified},
            "parents": [{"type": "Symbi::McpServer", "id": request.server}],
        },
        {"uid": {"type": "Symbi::McpServer", "id": request.server}, "attrs": server_attrs},
    ]
    return PolicyQuestion(
        EntityRef("Agent", request.agent_id),
        "tool_call",
        EntityRef("Tool", request.tool_id),
        context=context,
        entities=entities,
    )


def decision_from_service(decision: ServiceDecision) -> PolicyDecision:
    """The domain's decision from the policy client's (a fail-closed deny stays a deny)."""
    return PolicyDecision(
        _DECISIONS.get(decision.decision, Decision.DENY),
        reasons=decision.reasons,
        conditions=decision.conditions,
        policies=decision.policies,
    )


class BusPolicy:
    """:class:`~symbi_mcp_gateway.ports.PolicyPort` over the policy service."""

    def __init__(self, client: PolicyClient) -> None:
        self._client = client

    async def authorize(self, request: ToolCallAuthorization) -> PolicyDecision:
        decision = await self._client.evaluate(question_for(request))
        if decision.fail_closed:
            # The gateway turns this into a refusal with reason POLICY_UNAVAILABLE.
            raise Unavailable(decision.reason_text(), reason="POLICY_UNAVAILABLE")
        return decision_from_service(decision)

    async def authorize_many(
        self, requests: Sequence[ToolCallAuthorization]
    ) -> Sequence[PolicyDecision]:
        decisions = await self._client.evaluate_batch([question_for(r) for r in requests])
        if decisions and all(decision.fail_closed for decision in decisions):
            raise Unavailable(decisions[0].reason_text(), reason="POLICY_UNAVAILABLE")
        return [decision_from_service(decision) for decision in decisions]


class BusAudit:
    """:class:`~symbi_mcp_gateway.ports.AuditPort` over the process's audit recorder."""

    def __init__(self, recorder: AuditRecorder, *, closing: Callable[[], bool]) -> None:
        self._recorder = recorder
        self._closing = closing

    async def emit(self, event: AuditEvent) -> None:
        details: dict[str, Any] = dict(event.details)
        if event.decision:
            details["decision"] = event.decision
        if self._closing():
            # Sessions closed by our own shutdown after the bus is drained: logged, not lost.
            logger.info("not audited (shutting down): %s %s", event.event_type, details)
            return
        await self._recorder.record(
            event.event_type,
            details=details,
            agent_id=event.agent_id,
            actor=None if event.actor == GATEWAY_ACTOR else event.actor,
            event_id=uuid.UUID(event.event_id),
        )


class BusAlerts:
    """:class:`~symbi_mcp_gateway.ports.AlertPort`: ``symbi.alert.mcp`` plus an audit event."""

    def __init__(self, bus: SecureBus, *, closing: Callable[[], bool]) -> None:
        self._bus = bus
        self._closing = closing

    async def raise_alert(self, alert: SecurityAlert) -> None:
        details = {key: value for key, value in alert.details.items() if value is not None}
        if self._closing():
            logger.warning("alert not published (shutting down): %s", alert)
            return
        message = mcp_gateway_pb2.SecurityAlert(
            kind=alert.kind.value,
            server=alert.server,
            tool=alert.tool,
            message=alert.message,
            timestamp_ms=alert.timestamp_ms,
            gateway=self._bus.principal_id,
        )
        message.details.update(details)
        try:
            await self._bus.publish(PLATFORM_TOPIC, message, subject=ALERT_SUBJECT)
        finally:
            # Audited even when the publish failed: the log is where the alert must not be lost.
            await self._bus.recorder.record(
                "mcp.alert",
                details={
                    "kind": alert.kind.value,
                    "server": alert.server,
                    "tool": alert.tool,
                    "message": alert.message,
                    **details,
                },
            )
