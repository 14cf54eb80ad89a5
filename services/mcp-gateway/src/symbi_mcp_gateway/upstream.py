"""Sessions to upstream MCP servers, through the ``mcp`` SDK's client.

:class:`McpSession` is the seam between the gateway and an MCP connection: it speaks in
wire-form dictionaries (camelCase, JSON-ready) and raises the Symbi error tree, so nothing
above it imports ``mcp``. :func:`open_mcp_session` is the real implementation (stdio or
streamable HTTP, one ``mcp.Client`` per session); unit tests pass their own opener.

Error mapping of a call:

==============================================  ===========================================
MCP outcome                                     raised
==============================================  ===========================================
connection closed (server crashed, killed)      ``Unavailable`` (SERVER_DISCONNECTED)
read timeout                                    ``DeadlineExceeded`` (TOOL_TIMEOUT)
``HEADER_MISMATCH``: listed schema changed      ``Aborted`` (TOOL_DEFINITION_CHANGED)
``INVALID_PARAMS`` from the server              ``InvalidArgument`` (UPSTREAM_INVALID_PARAMS)
any other JSON-RPC error                        ``FailedPrecondition`` (UPSTREAM_ERROR)
a result that does not parse                    ``Unavailable`` (MALFORMED_RESPONSE)
the server asks for interactive input           ``FailedPrecondition`` (INPUT_REQUIRED)
==============================================  ===========================================
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, Protocol, runtime_checkable

import anyio
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import (
    CONNECTION_CLOSED,
    HEADER_MISMATCH,
    INVALID_PARAMS,
    REQUEST_TIMEOUT,
    CallToolResult,
    Implementation,
    InputRequiredResult,
    PaginatedRequestParams,
    ToolListChangedNotification,
)
from pydantic import ValidationError

from symbi_common.errors import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    SymbiError,
    Unavailable,
)
from symbi_mcp_gateway.config import McpServerConfig, TransportKind
from symbi_mcp_gateway.stdio_transport import MessageTooLarge, open_stdio_transport

__all__ = ["FaultSink", "McpSession", "SessionOpener", "ToolChangeWatcher", "open_mcp_session"]

logger = logging.getLogger(__name__)

_CLIENT_INFO = Implementation(name="symbi-mcp-gateway", version="0.1.0")
#: Pages of ``tools/list`` followed before a listing is refused as endless.
_MAX_PAGES = 64
_MAX_MESSAGE_CHARS = 512
#: Pause before a lost ``subscriptions/listen`` stream is opened again (doubles to the cap).
_RELISTEN_INITIAL_S = 0.5
_RELISTEN_MAX_S = 30.0

#: Called when the transport delivers something that is not an acceptable JSON-RPC message:
#: ``(what happened, reason)`` with reason ``MALFORMED_MESSAGE``, ``MESSAGE_TOO_LARGE`` or
#: ``MALFORMED_RESPONSE``.
FaultSink = Callable[[str, str], Awaitable[None]]


class McpSession(Protocol):
    """An open session to one MCP server."""

    async def list_tools(self, *, timeout_s: float) -> list[dict[str, Any]]:
        """Every tool the server lists (all pages), in wire form."""
        ...

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any], *, timeout_s: float
    ) -> dict[str, Any]:
        """Call a tool; the ``CallToolResult`` in wire form (``content``, ``isError``, ...)."""
        ...


@runtime_checkable
class ToolChangeWatcher(Protocol):
    """A session that can tell when the server's tool list changed."""

    async def watch_tool_changes(self, on_changed: Callable[[], None]) -> None:
        """Call ``on_changed`` whenever the server says its tools changed, until cancelled.
        Returns at once when the server does not announce changes."""
        ...


#: Opens a session to a server; the context manager closes it (and stops a stdio process).
SessionOpener = Callable[[McpServerConfig, FaultSink], AbstractAsyncContextManager[McpSession]]


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "…"


def _translate(exc: MCPError, server: str, what: str) -> SymbiError:
    details = {"server": server, "mcp_code": str(exc.code)}
    if exc.code == CONNECTION_CLOSED:
        return Unavailable(
            f"server {server} closed the connection during {what}; the session is reconnecting",
            reason="SERVER_DISCONNECTED",
            details=details,
        )
    if exc.code == REQUEST_TIMEOUT:
        return DeadlineExceeded(
            f"server {server} did not answer {what} in time", reason="TOOL_TIMEOUT", details=details
        )
    if exc.code == HEADER_MISMATCH:
        return Aborted(
            f"server {server} changed the definition behind {what}; the tool is being re-verified",
            reason="TOOL_DEFINITION_CHANGED",
            details=details,
        )
    if exc.code == INVALID_PARAMS:
        return InvalidArgument(
            f"server {server} rejected the parameters of {what}: {_short(exc.message)}",
            reason="UPSTREAM_INVALID_PARAMS",
            details=details,
        )
    return FailedPrecondition(
        f"server {server} answered {what} with error {exc.code}: {_short(exc.message)}",
        reason="UPSTREAM_ERROR",
        details=details,
    )


class _ClientSession:
    """:class:`McpSession` over an entered ``mcp.Client``."""

    def __init__(self, client: Client, server: str, on_fault: FaultSink) -> None:
        self._client = client
        self._server = server
        self._on_fault = on_fault
        #: Set while :meth:`watch_tool_changes` runs; fed by the message handler.
        self.legacy_changed: Callable[[], None] | None = None

    async def watch_tool_changes(self, on_changed: Callable[[], None]) -> None:
        """Follow the server's tool-list changes (see :class:`ToolChangeWatcher`).

        Before protocol 2026-07-28 the server sends ``notifications/tools/list_changed`` on
        the connection (delivered through the message handler); from 2026-07-28 on it sends
        them only on a ``subscriptions/listen`` stream, which this opens and re-opens when
        it is lost (every loss counts as a change: events may have been missed).
        """
        capabilities = self._client.server_capabilities
        if capabilities.tools is None or not capabilities.tools.list_changed:
            return
        self.legacy_changed = on_changed
        try:
            delay = _RELISTEN_INITIAL_S
            while True:
                try:
                    async with self._client.listen(tools_list_changed=True) as subscription:
                        if not subscription.honored.tools_list_changed:
                            return
                        delay = _RELISTEN_INITIAL_S
                        async for _event in subscription:
                            on_changed()
                except ListenNotSupportedError:
                    await asyncio.Event().wait()  # legacy: the message handler delivers them
                except (SubscriptionLost, MCPError, TimeoutError) as exc:
                    logger.info("server %s: tool-change stream lost (%s)", self._server, exc)
                on_changed()
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RELISTEN_MAX_S)
        finally:
            self.legacy_changed = None

    async def list_tools(self, *, timeout_s: float) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            for _ in range(_MAX_PAGES):
                # Through the session, not Client.list_tools: the client's response cache
                # would hide a changed listing, which is exactly what we look for.
                with anyio.fail_after(timeout_s):
                    page = await self._client.session.list_tools(
                        params=PaginatedRequestParams(cursor=cursor) if cursor else None
                    )
                tools.extend(
                    tool.model_dump(by_alias=True, mode="json", exclude_none=True)
                    for tool in page.tools
                )
                cursor = page.next_cursor
                if cursor is None:
                    return tools
        except MCPError as exc:
            raise _translate(exc, self._server, "tools/list") from None
        except ValidationError as exc:
            raise await self._malformed("tools/list", exc) from None
        except TimeoutError:
            raise DeadlineExceeded(
                f"server {self._server} did not answer tools/list within {timeout_s}s",
                reason="DISCOVERY_TIMEOUT",
            ) from None
        raise Unavailable(
            f"server {self._server} paginated tools/list beyond {_MAX_PAGES} pages",
            reason="MALFORMED_RESPONSE",
        )

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any], *, timeout_s: float
    ) -> dict[str, Any]:
        what = f"the call to {name}"
        try:
            result = await self._client.session.call_tool(
                name,
                dict(arguments),
                read_timeout_seconds=timeout_s,
                allow_input_required=True,
                allow_claimed=True,
            )
        except MCPError as exc:
            raise _translate(exc, self._server, what) from None
        except ValidationError as exc:
            raise await self._malformed(what, exc) from None
        except RuntimeError as exc:
            # The SDK checks structuredContent against the server's own outputSchema.
            raise FailedPrecondition(
                f"server {self._server}: {_short(str(exc))}", reason="OUTPUT_SCHEMA_VIOLATION"
            ) from None
        if isinstance(result, InputRequiredResult):
            raise FailedPrecondition(
                f"tool {name} on {self._server} asked for interactive input, which the gateway "
                "does not relay",
                reason="INPUT_REQUIRED",
            )
        if not isinstance(result, CallToolResult):
            raise FailedPrecondition(
                f"tool {name} on {self._server} returned a {type(result).__name__}, which the "
                "gateway does not relay",
                reason="UNSUPPORTED_RESULT",
            )
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)

    async def _malformed(self, what: str, exc: ValidationError) -> SymbiError:
        message = f"server {self._server} sent a malformed answer to {what}: {exc.error_count()} problem(s)"
        await self._on_fault(message, "MALFORMED_RESPONSE")
        return Unavailable(message, reason="MALFORMED_RESPONSE", retryable=False)


@asynccontextmanager
async def open_mcp_session(
    config: McpServerConfig, on_fault: FaultSink
) -> AsyncIterator[McpSession]:
    """Open a session with the ``mcp`` SDK: spawn the stdio command or connect to the URL.

    Anything the transport cannot parse as JSON-RPC is reported to ``on_fault`` (the gateway
    audits it and drops the session).
    """

    opened: list[_ClientSession] = []

    async def message_handler(message: Any) -> None:
        if isinstance(message, ToolListChangedNotification):
            if opened and (notify := opened[0].legacy_changed) is not None:
                notify()
        elif isinstance(message, MessageTooLarge):
            await on_fault(str(message), "MESSAGE_TOO_LARGE")
        elif isinstance(message, Exception):
            await on_fault(
                f"malformed JSON-RPC from server {config.name}: {_short(repr(message))}",
                "MALFORMED_MESSAGE",
            )

    async with AsyncExitStack() as stack:
        server: Any
        if config.transport is TransportKind.STDIO:
            # Our own stdio transport: the SDK's buffers a line without limit.
            server = open_stdio_transport(config, max_message_bytes=config.max_message_bytes)
        else:
            assert config.url is not None
            http = await stack.enter_async_context(
                create_mcp_http_client(headers=dict(config.headers) or None)
            )
            server = streamable_http_client(config.url, http_client=http)
        client = Client(
            server,
            cache=None,
            message_handler=message_handler,
            client_info=_CLIENT_INFO,
        )
        await stack.enter_async_context(client)
        opened.append(_ClientSession(client, config.name, on_fault))
        yield opened[0]
