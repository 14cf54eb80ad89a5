"""Serving the gateway's MCP endpoint (an ASGI app) with uvicorn inside the service process.

The listening socket is bound when :class:`EndpointServer` is built, so the address (port 0
picks a free one) is known before the app that names it is built. :meth:`EndpointServer.serve` is a
long-lived loop for ``runtime.spawn``: cancelled at shutdown, it stops accepting, gives open
streams ``grace_s`` to finish, runs the app's lifespan shutdown (the MCP session manager), and
only then lets the cancellation through. The process runner owns the signals, so uvicorn is
kept from installing its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

__all__ = ["EndpointServer"]

logger = logging.getLogger(__name__)


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # SIGTERM/SIGINT belong to the process runner, which stops this server in order.
        yield


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class EndpointServer:
    """One uvicorn server on a socket bound at construction."""

    def __init__(self, *, host: str, port: int, grace_s: float) -> None:
        self._sock = _bind(host, port)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self._grace_s = grace_s
        self._server: _Uvicorn | None = None

    @property
    def started(self) -> bool:
        return self._server is not None and self._server.started

    def close(self) -> None:
        """Release the socket (when :meth:`serve` never ran)."""
        self._sock.close()

    async def serve(self, app: Any) -> None:
        """Serve ``app`` until cancelled, then shut down in order (see the module docstring)."""
        config = uvicorn.Config(
            app,
            lifespan="on",
            log_config=None,  # the process's logging is already configured
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=max(1, math.ceil(self._grace_s)),
        )
        server = self._server = _Uvicorn(config)
        try:
            async with asyncio.TaskGroup() as group:
                serving = group.create_task(
                    server.serve(sockets=[self._sock]), name="mcp-endpoint-http"
                )
                try:
                    await asyncio.shield(serving)
                except asyncio.CancelledError:
                    server.should_exit = True
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._grace_s + 5.0):
                            await asyncio.shield(serving)
                    raise
                if not server.should_exit:
                    raise RuntimeError("the MCP endpoint's HTTP server stopped on its own")
        finally:
            self._sock.close()
