"""Prometheus metrics of the gateway, read off the audit events it emits.

Every tool call, tool decision and session change is already one audit event
(:mod:`~symbi_mcp_gateway.audit`), so :class:`MeteredAudit` wraps the audit port and counts
what passes through it: one source of truth for the log and the dashboards.

==================================  =========  =================================================
metric                              type       labels
==================================  =========  =================================================
symbi_mcp_tool_calls_total          counter    server, outcome (ok, tool_error, refused, failed),
                                               reason, via (grpc, bus, mcp-endpoint)
symbi_mcp_tool_call_seconds         histogram  server (calls that reached the server)
symbi_mcp_tool_events_total         counter    event (pinned, quarantined, approved, …)
symbi_mcp_server_sessions_total     counter    server, event (connected, disconnected)
==================================  =========  =================================================
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from symbi_mcp_gateway.audit import AuditEvent
from symbi_mcp_gateway.ports import AuditPort

__all__ = ["MeteredAudit"]

TOOL_CALLS = Counter(
    "symbi_mcp_tool_calls_total",
    "Tool calls through the gateway, by server, outcome, refusal reason and entry point.",
    ["server", "outcome", "reason", "via"],
)
TOOL_CALL_SECONDS = Histogram(
    "symbi_mcp_tool_call_seconds",
    "Duration of tool calls that reached the server, checks included.",
    ["server"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
TOOL_EVENTS = Counter(
    "symbi_mcp_tool_events_total",
    "Verification decisions about tools (pinned, updated, rejected, quarantined, approved, …).",
    ["event"],
)
SESSIONS = Counter(
    "symbi_mcp_server_sessions_total",
    "Upstream sessions opened and closed, by server.",
    ["server", "event"],
)


class MeteredAudit:
    """An :class:`~symbi_mcp_gateway.ports.AuditPort` that counts events, then forwards them."""

    def __init__(self, inner: AuditPort) -> None:
        self._inner = inner

    async def emit(self, event: AuditEvent) -> None:
        observe(event)
        await self._inner.emit(event)


def observe(event: AuditEvent) -> None:
    """Count one event."""
    details = event.details
    server = str(details.get("server") or "")
    kind = event.event_type
    if kind == "mcp.tool_call":
        outcome = str(details.get("outcome") or "")
        TOOL_CALLS.labels(
            server, outcome, str(details.get("reason") or ""), str(details.get("via") or "")
        ).inc()
        duration = details.get("duration_ms")
        if outcome in ("ok", "tool_error") and isinstance(duration, int | float):
            TOOL_CALL_SECONDS.labels(server).observe(duration / 1000)
    elif kind.startswith("mcp.tool.") or kind == "mcp.pin.removed":
        TOOL_EVENTS.labels(kind.removeprefix("mcp.")).inc()
    elif kind in ("mcp.server.connected", "mcp.server.disconnected"):
        SESSIONS.labels(server, kind.removeprefix("mcp.server.")).inc()
