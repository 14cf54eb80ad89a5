"""One long-lived, shared session per upstream server, reconnected when it breaks.

:class:`ServerConnection` owns a session in a supervisor loop (:meth:`ServerConnection.run`,
started by the gateway's task group): open under ``connection_timeout_s``, re-verify the
server's tools through the new session (the ``on_connected`` hook), then serve calls until
the session faults — the process died, a call saw the connection close, the server sent
something that is not JSON-RPC — and reconnect with exponential backoff. Calls never start a
process or a connection of their own; they share the open session, at most
``max_concurrent_connections`` at a time, and fail fast with a clear error while no session is
up. The hook runs before calls are let in, so a server that comes back with different tools
is re-verified before anyone can call them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from symbi_common.errors import DeadlineExceeded, ResourceExhausted, SymbiError, Unavailable
from symbi_mcp_gateway.audit import AlertKind, AuditEvent, SecurityAlert
from symbi_mcp_gateway.config import McpServerConfig
from symbi_mcp_gateway.upstream import McpSession, SessionOpener, ToolChangeWatcher

__all__ = ["ConnectionState", "ServerConnection"]

logger = logging.getLogger(__name__)


class ConnectionState(enum.StrEnum):
    """Where a server's supervisor is."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"  # a fault dropped the session; the supervisor is winding it down
    BACKOFF = "backoff"
    STOPPED = "stopped"


#: A session that served this long before it broke resets the backoff.
_STABLE_S = 10.0


class ServerConnection:
    """The pooled session of one server (see the module docstring)."""

    def __init__(
        self,
        config: McpServerConfig,
        opener: SessionOpener,
        *,
        on_connected: Callable[[McpSession], Awaitable[None]],
        emit: Callable[[AuditEvent], Awaitable[None]],
        alert: Callable[[SecurityAlert], Awaitable[None]],
        reconnect_initial_s: float = 0.2,
        reconnect_max_s: float = 30.0,
        on_tools_changed: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self._on_tools_changed = on_tools_changed
        self._opener = opener
        self._on_connected = on_connected
        self._emit = emit
        self._alert = alert
        self._initial_s = reconnect_initial_s
        self._max_s = reconnect_max_s
        self._session: McpSession | None = None
        self._generation = 0
        self._ready = asyncio.Event()
        self._fault = asyncio.Event()
        #: (generation, reason, code) of the last session dropped on purpose.
        self._dropped: tuple[int, str, str] = (0, "", "")
        self._slots = asyncio.Semaphore(config.max_concurrent_connections)
        self._in_flight = 0
        self.state = ConnectionState.CONNECTING
        self.last_error = ""
        self.connected_since: float | None = None

    @property
    def name(self) -> str:
        """The server's name."""
        return self.config.name

    @property
    def connected(self) -> bool:
        """Whether calls are being served."""
        return self._ready.is_set()

    @property
    def in_flight(self) -> int:
        """Calls currently running on the session."""
        return self._in_flight

    async def run(self) -> None:
        """Keep a session open until cancelled (the gateway cancels it on close)."""
        attempt = 0
        try:
            while True:
                reason, lived_s = await self._serve_one_session()
                if lived_s >= _STABLE_S:
                    attempt = 0  # a crash after a healthy run is not a crash loop
                delay = min(self._max_s, self._initial_s * 2**attempt)
                delay *= random.uniform(0.5, 1.0)  # jitter: replicas do not reconnect in step
                attempt = min(attempt + 1, 30)
                self.state = ConnectionState.BACKOFF
                logger.info("server %s: reconnecting in %.2fs (%s)", self.name, delay, reason)
                await asyncio.sleep(delay)
        finally:
            self.state = ConnectionState.STOPPED
            self._ready.clear()

    async def _serve_one_session(self) -> tuple[str, float]:
        """Open, verify, serve until a fault; why it ended and how long it served calls."""
        self.state = ConnectionState.CONNECTING
        self._fault.clear()
        up_at: float | None = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    async with asyncio.timeout(self.config.connection_timeout_s):
                        session = await stack.enter_async_context(
                            self._opener(self.config, self._transport_fault)
                        )
                except TimeoutError:
                    raise Unavailable(
                        f"no session within {self.config.connection_timeout_s}s",
                        reason="CONNECT_TIMEOUT",
                    ) from None
                self._generation += 1
                self._session = session
                await self._on_connected(session)
                if self._fault.is_set():
                    raise Unavailable(self._dropped[1], reason="SESSION_DROPPED")
                self._ready.set()
                up_at = time.monotonic()
                self.state = ConnectionState.CONNECTED
                self.connected_since = up_at
                self.last_error = ""
                await self._emit(
                    AuditEvent(
                        "mcp.server.connected",
                        details={"server": self.name, "transport": self.config.transport.value},
                    )
                )
                async with asyncio.TaskGroup() as watchers:
                    watcher = None
                    if self._on_tools_changed is not None and isinstance(
                        session, ToolChangeWatcher
                    ):
                        watcher = watchers.create_task(
                            self._watch_tools(session, self._on_tools_changed),
                            name=f"mcp-list-changed-{self.name}",
                        )
                    await self._fault.wait()
                    if watcher is not None:
                        watcher.cancel()
                reason = self._dropped[1] or "session dropped"
        except asyncio.CancelledError:
            raise
        except SymbiError as exc:
            reason = exc.message
        except Exception as exc:  # a transport failure of any kind ends this session only
            reason = f"{type(exc).__name__}: {exc}"
            logger.warning("server %s: session failed", self.name, exc_info=True)
        finally:
            self._ready.clear()
            self._session = None
            self.connected_since = None
        self.last_error = reason
        lived_s = time.monotonic() - up_at if up_at is not None else 0.0
        await self._emit(
            AuditEvent(
                "mcp.server.disconnected",
                details={"server": self.name, "reason": reason, "served_s": round(lived_s, 3)},
            )
        )
        return reason, lived_s

    async def _watch_tools(
        self, session: ToolChangeWatcher, on_changed: Callable[[], None]
    ) -> None:
        # A broken change stream never ends the session: periodic rediscovery still runs.
        try:
            await session.watch_tool_changes(on_changed)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("server %s: following tool changes failed", self.name, exc_info=True)

    def fault(
        self, reason: str, *, generation: int | None = None, code: str = "SESSION_DROPPED"
    ) -> None:
        """Drop the current session (the supervisor reconnects). A ``generation`` that is not
        the current one is ignored: that session is already gone."""
        if generation is not None and generation != self._generation:
            return
        if not self._fault.is_set():
            self._dropped = (self._generation, reason, code)
            # At once, not when the supervisor gets to run: no new call may pick up a
            # session that is going away.
            self._ready.clear()
            self._session = None
            self.state = ConnectionState.RECONNECTING
            self._fault.set()

    async def _transport_fault(self, message: str, code: str) -> None:
        # Drop first: no call may be answered from a stream we no longer trust.
        self.fault(message, code=code)
        await self._alert(SecurityAlert(AlertKind.PROTOCOL_VIOLATION, self.name, message))
        await self._emit(
            AuditEvent(
                "mcp.server.protocol_violation",
                decision="deny",
                details={"server": self.name, "message": message, "reason": code},
            )
        )

    async def session(self, timeout_s: float) -> tuple[McpSession, int]:
        """The open session and its generation, waiting up to ``timeout_s`` for one.

        Raises:
            Unavailable: no session came up in time.
        """
        if not self._ready.is_set():
            try:
                async with asyncio.timeout(timeout_s):
                    await self._ready.wait()
            except TimeoutError:
                raise Unavailable(
                    f"server {self.name} is not connected"
                    + (f" (last error: {self.last_error})" if self.last_error else ""),
                    reason="SERVER_UNAVAILABLE",
                    details={"server": self.name, "state": self.state},
                ) from None
        session = self._session
        if session is None:
            raise Unavailable(f"server {self.name} is not connected", reason="SERVER_UNAVAILABLE")
        return session, self._generation

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any], *, timeout_s: float
    ) -> dict[str, Any]:
        """Call a tool on the shared session, within ``timeout_s`` all told.

        Raises:
            Unavailable: not connected, or the connection broke during the call.
            ResourceExhausted: ``max_concurrent_connections`` calls stayed in flight for the
                whole timeout.
            DeadlineExceeded: the tool did not answer in time.
        """
        deadline = asyncio.get_running_loop().time() + timeout_s
        session, generation = await self.session(min(timeout_s, self.config.connection_timeout_s))
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            if self._slots.locked():
                async with asyncio.timeout(max(remaining, 0)):
                    await self._slots.acquire()
            else:
                await self._slots.acquire()  # a free slot: no timer to arm on the hot path
        except TimeoutError:
            raise ResourceExhausted(
                f"server {self.name} already has {self.config.max_concurrent_connections} calls "
                "in flight",
                reason="TOO_MANY_CALLS",
                details={"server": self.name},
            ) from None
        self._in_flight += 1
        try:
            remaining = max(deadline - asyncio.get_running_loop().time(), 0.001)
            try:
                # The SDK's read timeout answers first; this is the backstop for a transport
                # that never delivers the timeout.
                async with asyncio.timeout(remaining + 1.0):
                    return await session.call_tool(name, arguments, timeout_s=remaining)
            except TimeoutError:
                raise DeadlineExceeded(
                    f"server {self.name} did not answer the call to {name} in {timeout_s}s",
                    reason="TOOL_TIMEOUT",
                ) from None
            except Unavailable as exc:
                if exc.reason == "SERVER_DISCONNECTED":
                    # Prefer the reason the session was dropped for (malformed JSON-RPC...).
                    dropped_generation, reason, code = self._dropped
                    self.fault(exc.message, generation=generation)
                    if reason and dropped_generation == generation:
                        if code == "MESSAGE_TOO_LARGE":
                            raise ResourceExhausted(
                                f"server {self.name} was dropped during the call to {name}: "
                                f"{reason}",
                                reason="MESSAGE_TOO_LARGE",
                                retryable=False,
                            ) from None
                        raise Unavailable(
                            f"server {self.name} dropped during the call to {name}: {reason}",
                            reason="SERVER_DISCONNECTED",
                        ) from None
                elif exc.reason == "MALFORMED_RESPONSE":
                    self.fault(exc.message, generation=generation, code=exc.reason)
                raise
        finally:
            self._in_flight -= 1
            self._slots.release()
