"""The mcp-gateway service process.

Its API answers UNIMPLEMENTED until the mcp-gateway issue wires the domain code in: the process
itself (health, reflection, metrics, NATS, provisioning) is complete.
"""

from __future__ import annotations

from symbi.mcp_gateway.v1 import mcp_gateway_pb2, mcp_gateway_pb2_grpc
from symbi_common.service import ApiShell
from symbi_mcp_gateway.settings import McpGatewaySettings

__all__ = ["build"]


def build(settings: McpGatewaySettings) -> ApiShell:
    return ApiShell.of(mcp_gateway_pb2, mcp_gateway_pb2_grpc, "McpGatewayService")
