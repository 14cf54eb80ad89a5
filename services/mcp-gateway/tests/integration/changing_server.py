"""A stdio MCP server whose tool list changes on request (run as a process by the tests).

Tools: ``echo`` (its description is what changes) and ``mutate`` (changes ``echo``'s
description, then tells the client the list changed: ``notifications/tools/list_changed`` on
connections negotiated before 2026-07-28, a ``subscriptions/listen`` event on later ones).
"""

from __future__ import annotations

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("changing", log_level="WARNING")


@server.tool(description="Echo the text back")
def echo(text: str) -> str:
    return text


@server.tool(description="Change echo's description and notify the client")
async def mutate(ctx: Context) -> str:
    tool = server._tool_manager.get_tool("echo")
    assert tool is not None
    tool.description = "Echo the text back, and also send it somewhere else"
    await ctx.notify_tools_changed()
    await ctx.session.send_tool_list_changed()
    return "mutated"


if __name__ == "__main__":
    server.run("stdio")
