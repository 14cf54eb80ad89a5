"""The gateway on the bus: request/reply for agents' tool calls (contract C4).

=============================================  ========================================  =======
subject                                        request → reply                           who
=============================================  ========================================  =======
symbi.rpc.mcp.invoke                           InvokeToolRequest → InvokeToolResponse    node,
                                                                                         service
symbi.rpc.mcp.list_tools                       ListToolsRequest → ListToolsResponse      node,
                                                                                         service
symbi.rpc.mcp.<replica principal>.invoke       InvokeToolRequest → InvokeToolResponse    agent
                                                                                         (any)
symbi.rpc.mcp.<replica principal>.list_tools   ListToolsRequest → ListToolsResponse      agent
                                                                                         (any)
symbi.alert.mcp                                SecurityAlert (published, topic           →
                                               ``platform``)                             operators
=============================================  ========================================  =======

Routing. Every replica answers the shared subjects in the queue group ``mcp-gateway``: nodes
and services send there, encrypted to the ``platform`` topic, which every replica can open.
An agent principal is not a member of that topic, so it encrypts its request to one
replica's principal (``svc-mcp-gateway-<instance>``); only that replica can open it, so the
agent sends it to that replica's own subject (:func:`replica_subject`), which no other
replica serves. A request that reaches a replica that cannot open it (an agent's request on
a shared subject, or sent to another replica's subject) is refused by the secure bus before
any handler runs: it is counted and audited as a ``bus.reject`` and gets no answer, so the
caller sees its own deadline pass (``DeadlineExceeded``), never an error that looks like the
gateway's verdict on the call. The replicas an agent can address are the ``svc-mcp-gateway-*``
principals of the keyring (:func:`replica_principals`); one that is not running answers at
once with ``Unavailable NO_RESPONDERS``.

Trust rule: the ``agent_id`` of a request is believed when the sender is a worker node (it
vouches for the agent it runs) or a service; an agent principal may only ask for itself
(``agent_id`` empty or equal to the sender id, else PermissionDenied). The call then goes
through the same checked path as every other: policy for that agent, schema, limits, audit.
The audit event of a bus call records ``via: bus`` and the sender.
"""

from __future__ import annotations

from symbi.mcp_gateway.v1 import mcp_gateway_pb2 as pb
from symbi_common.bus import Received
from symbi_common.crypto.keyring import Keyring
from symbi_common.errors import InvalidArgument, PermissionDenied
from symbi_mcp_gateway.convert import arguments_from_request, result_to_proto, tool_to_proto
from symbi_mcp_gateway.gateway import ToolGateway
from symbi_mcp_gateway.tokens import check_agent_id

__all__ = [
    "INVOKE",
    "INVOKE_SUBJECT",
    "LIST_TOOLS",
    "LIST_TOOLS_SUBJECT",
    "REPLICA_PRINCIPAL_PREFIX",
    "RESPONDER_QUEUE",
    "SUBJECT_PREFIX",
    "ToolResponders",
    "agent_for",
    "replica_principals",
    "replica_subject",
    "shared_subject",
]

SUBJECT_PREFIX = "symbi.rpc.mcp"
INVOKE = "invoke"
LIST_TOOLS = "list_tools"
#: Queue group of the shared responders: each request is answered by one replica.
RESPONDER_QUEUE = "mcp-gateway"
#: Principal ids of gateway replicas: ``svc-mcp-gateway-<instance>``.
REPLICA_PRINCIPAL_PREFIX = "svc-mcp-gateway-"


def shared_subject(method: str) -> str:
    """``symbi.rpc.mcp.<method>``: answered by any replica (requests for topic ``platform``)."""
    return f"{SUBJECT_PREFIX}.{method}"


def replica_subject(principal_id: str, method: str) -> str:
    """``symbi.rpc.mcp.<principal>.<method>``: answered by that replica only (requests
    encrypted to its principal, e.g. an agent's)."""
    return f"{SUBJECT_PREFIX}.{principal_id}.{method}"


def replica_principals(keyring: Keyring) -> list[str]:
    """The gateway replicas an agent may address: usable service certificates named
    ``svc-mcp-gateway-*``, sorted (a certificate does not mean the replica is running)."""
    return sorted(
        {
            cert.principal_id
            for cert in keyring.certificates("service")
            if cert.principal_id.startswith(REPLICA_PRINCIPAL_PREFIX)
        }
    )


INVOKE_SUBJECT = shared_subject(INVOKE)
LIST_TOOLS_SUBJECT = shared_subject(LIST_TOOLS)


def agent_for(received: Received, requested: str) -> str:
    """The agent a bus request acts for, by the trust rule of the module docstring.

    Raises:
        PermissionDenied: an agent asked for another agent, or the sender's role may not call
            tools.
        InvalidArgument: a node or service named no (or an invalid) agent.
    """
    role = received.sender_role
    if role == "agent":
        if requested and requested != received.sender:
            raise PermissionDenied(
                f"agent {received.sender} may not act for {requested[:80]!r}",
                reason="AGENT_MISMATCH",
            )
        return received.sender
    if role in ("node", "service"):
        if not requested:
            raise InvalidArgument(
                "agent_id is required when a node or service calls for an agent",
                reason="AGENT_REQUIRED",
            )
        return check_agent_id(requested)
    raise PermissionDenied(f"a {role or 'principal'} may not call tools", reason="ROLE_REFUSED")


class ToolResponders:
    """The responders of ``symbi.rpc.mcp.*`` over a :class:`ToolGateway`."""

    def __init__(self, gateway: ToolGateway) -> None:
        self._gateway = gateway

    async def invoke(self, received: Received) -> pb.InvokeToolResponse:
        request = received.parse(pb.InvokeToolRequest)
        agent = agent_for(received, request.agent_id)
        result = await self._gateway.invoke(
            agent,
            request.server,
            request.tool,
            arguments_from_request(request),
            timeout_s=request.timeout_ms / 1000 if request.timeout_ms else None,
            origin={"via": "bus", "caller": received.sender},
        )
        return result_to_proto(result)

    async def list_tools(self, received: Received) -> pb.ListToolsResponse:
        request = received.parse(pb.ListToolsRequest)
        server = request.server or None
        if received.sender_role == "service" and not request.agent_id:
            views = self._gateway.tools(server, include_hidden=request.include_hidden)
        else:
            agent = agent_for(received, request.agent_id)
            views = await self._gateway.tools_for_agent(agent, server)
        return pb.ListToolsResponse(tools=[tool_to_proto(view) for view in views])
