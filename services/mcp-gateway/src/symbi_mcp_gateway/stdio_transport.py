"""A stdio transport for MCP servers that never buffers more than one bounded message.

The ``mcp`` SDK's ``stdio_client`` reads a server's stdout line by line with an unbounded
buffer: a server that writes one endless line grows the gateway's memory until it dies. This
transport is the same protocol (one JSON-RPC message per line, UTF-8) with a ceiling: a line
longer than ``max_message_bytes`` is not buffered further — the transport hands the session
an error item (the gateway treats it as a protocol violation, audits it and drops the
session) and stops reading. Everything else mirrors the SDK: the server runs in its own
process group with the SDK's inherited environment; on close, stdin is closed, the server gets
two seconds to exit, then its whole group is terminated (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import anyio
from anyio.abc import Process
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client.stdio import get_default_environment
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter

from symbi_mcp_gateway.config import McpServerConfig

__all__ = ["MessageTooLarge", "open_stdio_transport"]

logger = logging.getLogger(__name__)

_EXIT_GRACE_S = 2.0
_KILL_GRACE_S = 2.0


class MessageTooLarge(ValueError):
    """A server wrote a line longer than the transport accepts."""


def _parse(line: bytes) -> SessionMessage | Exception:
    try:
        return SessionMessage(jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        return exc


async def _stop(process: Process) -> None:
    with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        if process.stdin is not None:
            await process.stdin.aclose()
    with anyio.move_on_after(_EXIT_GRACE_S):
        await process.wait()
    if process.returncode is None:
        await terminate_posix_process_tree(process, _KILL_GRACE_S)
        with anyio.move_on_after(_KILL_GRACE_S):
            await process.wait()
    if process.returncode is None:
        logger.warning("MCP server process %d survived SIGKILL; abandoning it", process.pid)
    else:
        with anyio.move_on_after(_KILL_GRACE_S):
            await process.aclose()  # closes the pipes
    # asyncio's subprocess transport is only marked closed by close(), and warns when it is
    # collected otherwise; nothing public reaches it (the SDK's stdio client does the same).
    transport = getattr(getattr(process, "_process", None), "_transport", None)
    close = getattr(transport, "close", None)
    if callable(close):
        with suppress(PermissionError):
            close()


@asynccontextmanager
async def open_stdio_transport(
    config: McpServerConfig, *, max_message_bytes: int
) -> AsyncIterator[
    tuple[
        MemoryObjectReceiveStream[SessionMessage | Exception],
        MemoryObjectSendStream[SessionMessage],
    ]
]:
    """Spawn ``config.command`` and speak JSON-RPC lines over its stdin/stdout.

    Raises:
        OSError: the command cannot be started.
    """
    assert config.command is not None  # a stdio server config always has one
    process = await anyio.open_process(
        [config.command, *config.args],
        env=get_default_environment() | dict(config.env),
        cwd=config.cwd,
        stderr=sys.stderr,
        start_new_session=True,  # its own group: stopping it stops its children too
    )
    inbound_send, inbound = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    outbound, outbound_receive = anyio.create_memory_object_stream[SessionMessage](0)

    async def read_stdout() -> None:
        assert process.stdout is not None
        buffer = bytearray()
        async with inbound_send:
            try:
                async for chunk in process.stdout:
                    buffer += chunk
                    too_large = False
                    while (end := buffer.find(b"\n")) >= 0:
                        line = bytes(buffer[:end])
                        del buffer[: end + 1]
                        if len(line) > max_message_bytes:
                            too_large = True
                            break
                        if line.strip():
                            await inbound_send.send(_parse(line))
                    if too_large or len(buffer) > max_message_bytes:
                        await inbound_send.send(
                            MessageTooLarge(
                                f"server {config.name} wrote a message longer than "
                                f"{max_message_bytes} bytes"
                            )
                        )
                        return  # the session is being dropped; nothing after this is trusted
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return  # the session went away first

    async def write_stdin() -> None:
        assert process.stdin is not None
        async with outbound_receive:
            try:
                async for message in outbound_receive:
                    text = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await process.stdin.send((text + "\n").encode("utf-8"))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                # The server stopped reading: end the inbound side so no request waits forever.
                await inbound_send.aclose()

    async with anyio.create_task_group() as group:
        group.start_soon(read_stdout)
        group.start_soon(write_stdin)
        try:
            yield inbound, outbound
        finally:
            with anyio.CancelScope(shield=True):
                await outbound.aclose()
                await _stop(process)
                await inbound.aclose()
            group.cancel_scope.cancel()
