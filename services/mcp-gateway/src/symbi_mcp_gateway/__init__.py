"""symbi_mcp_gateway."""
