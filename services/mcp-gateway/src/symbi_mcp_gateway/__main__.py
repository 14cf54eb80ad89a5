"""``python -m symbi_mcp_gateway``: run the mcp-gateway service."""

from symbi_common.runner import run_main
from symbi_mcp_gateway.app import build
from symbi_mcp_gateway.settings import McpGatewaySettings

if __name__ == "__main__":
    run_main(McpGatewaySettings, build)
