"""A stdio MCP server that misbehaves on request (run as a process by the tests).

Tools: ``echo`` (well behaved), ``crash`` (the process exits mid-call), ``garbage`` (writes a
line that is not JSON-RPC to stdout, then never answers), ``big`` (a result of ``size``
bytes), ``hang`` (never answers), ``pid`` (the process id, to tell restarts apart).
"""

from __future__ import annotations

import asyncio
import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("faulty", log_level="WARNING")


@server.tool(description="Echo the text back")
def echo(text: str) -> str:
    return text


@server.tool(description="The server process id")
def pid() -> int:
    return os.getpid()


@server.tool(description="Exit the server process in the middle of the call")
async def crash() -> str:
    os._exit(3)


@server.tool(description="Write a line that is not JSON-RPC, then never answer")
async def garbage() -> str:
    # The SDK points fd 1 at stderr while serving and writes the wire through a private
    # duplicate, so stray prints cannot corrupt it; this writes to the wire on purpose.
    from mcp.server.stdio import _claims

    wire = _claims[1].private_fd
    os.write(wire if wire is not None else 1, b"{this is not json-rpc\n")
    await asyncio.Event().wait()
    return "unreachable"


@server.tool(description="Return a text of the given size")
def big(size: int) -> str:
    return "x" * size


@server.tool(description="Never answer")
async def hang() -> str:
    await asyncio.Event().wait()
    return "unreachable"


if __name__ == "__main__":
    server.run()
