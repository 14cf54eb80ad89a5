"""Who may call which McpGatewayService method (ADR 0013).

Registering and removing servers is ``administer`` on ``McpServer::"<name>"``; verifying,
approving and unpinning tools is ``administer`` on ``Tool::"<server>/<tool>"`` (in its
server); invoking one is ``tool_call`` on it; issuing an agent's endpoint token is
``administer`` on ``Agent::"<agent id>"``; deciding a call approval is ``administer`` on the
approval's ``Tool`` (the request names it; the servicer checks it against the record). Listing
servers, tools, pins and approvals is open to every admitted caller.
"""

from __future__ import annotations

from typing import Any

from symbi_common.grpc.authz import OPEN, ByPolicy, MethodRules, Resource
from symbi_common.policy_client import EntityRef

__all__ = ["GATEWAY_RULES", "tool_resource"]


def tool_resource(server: str, tool: str) -> Resource:
    return Resource(
        "Tool",
        f"{server}/{tool}",
        {"name": tool or "(none)"},
        parents=(EntityRef("McpServer", server or "(none)"),),
    )


def _tool(request: Any) -> Resource:
    return tool_resource(request.server, request.tool)


def _pinned_tool(request: Any) -> Resource:
    server, _, tool = request.tool_id.partition("/")
    return tool_resource(server, tool)


def _server(name: str) -> Resource:
    return Resource("McpServer", name or "(none)")


GATEWAY_RULES: MethodRules = {
    "RegisterServer": ByPolicy("administer", lambda r: _server(r.server.name)),
    "RemoveServer": ByPolicy("administer", lambda r: _server(r.name)),
    "VerifyTool": ByPolicy("administer", _tool),
    "ApproveTool": ByPolicy("administer", _tool),
    "Unpin": ByPolicy("administer", _pinned_tool),
    "InvokeTool": ByPolicy("tool_call", _tool),
    "IssueAgentToken": ByPolicy("administer", lambda r: Resource("Agent", r.agent_id or "(none)")),
    "ListServers": OPEN,
    "ListTools": OPEN,
    "ListPins": OPEN,
    "ListApprovals": OPEN,
    "DecideApproval": ByPolicy("administer", _tool),
}
