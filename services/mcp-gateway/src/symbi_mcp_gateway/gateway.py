"""The MCP gateway's domain core: servers, verified tools, and the checked call path.

:class:`ToolGateway` is an async context manager owning one task group: a supervisor per
server (:class:`~symbi_mcp_gateway.connection.ServerConnection`) and a rediscovery loop per
server. Everything else — the gRPC servicer, the bus handler, the gateway's own MCP endpoint
(:mod:`~symbi_mcp_gateway.front`) — calls its methods::

    async with ToolGateway(config, pins=..., policy=..., audit=..., alerts=..., resolver=...) as gw:
        await gw.register_server(McpServerConfig(name="time", command="mcp-server-time", ...))
        views = gw.tools()                              # every tool, with its status
        allowed = await gw.tools_for_agent("agent-7")   # verified and permitted
        result = await gw.invoke("agent-7", "time", "get_current_time", {"timezone": "UTC"})
        await gw.approve("tools", "search", actor="alice", definition_hash=...)

The call path (:meth:`ToolGateway.invoke`), in order: the tool must be known and usable
(verified or allowed by the trust mode; never quarantined); the arguments must fit the size
limit and the tool's input schema; the policy engine must allow the call, and its conditions
are enforced here (``audit_full`` records the argument summary, ``rate_limit:N/U`` spends a
token, ``require_approval`` needs an operator's approval of this very call — see
:mod:`~symbi_mcp_gateway.approvals` — and anything unknown refuses); the call runs on the server's
shared session under the timeout; the result must fit the size limit and the verified output
schema. Every outcome, refusals included, is
one ``mcp.tool_call`` audit event with SHA-256 hashes of arguments and result.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from jsonschema.exceptions import best_match

from symbi_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    SymbiError,
    Unavailable,
)
from symbi_mcp_gateway.approvals import ApprovalBook, ApprovalStore, MemoryApprovalStore
from symbi_mcp_gateway.audit import AuditEvent, SecurityAlert
from symbi_mcp_gateway.catalog import CatalogEntry, ToolCatalog, ToolView
from symbi_mcp_gateway.config import GatewayConfig, McpServerConfig
from symbi_mcp_gateway.connection import ConnectionState, ServerConnection
from symbi_mcp_gateway.definition import canonical_json
from symbi_mcp_gateway.pins import PinStore, TimedPinStore, ToolPin
from symbi_mcp_gateway.policy import (
    Decision,
    PolicyDecision,
    ToolCallAuthorization,
    summarize_arguments,
)
from symbi_mcp_gateway.ports import AlertPort, AuditPort, PolicyPort
from symbi_mcp_gateway.ratelimit import CallRateLimiter, RateLimit, parse_rate_limit
from symbi_mcp_gateway.resolver import KeyResolver
from symbi_mcp_gateway.trust import ToolStatus
from symbi_mcp_gateway.upstream import McpSession, SessionOpener, open_mcp_session

__all__ = ["ServerInfo", "ToolGateway", "ToolResult"]

logger = logging.getLogger(__name__)

#: Policy conditions the gateway honours besides ``rate_limit:N/U``; any other refuses.
_AUDIT_FULL = "audit_full"
_REQUIRE_APPROVAL = "require_approval"


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """A registered server and the state of its session."""

    config: McpServerConfig
    connected: bool
    state: ConnectionState
    last_error: str
    tool_count: int
    in_flight: int

    @property
    def name(self) -> str:
        """The server's name."""
        return self.config.name


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A call's result, as the server returned it, with what the audit log recorded."""

    server: str
    tool: str
    #: The ``CallToolResult`` in wire form (``content``, ``structuredContent``, ``isError``).
    raw: Mapping[str, Any]
    arguments_hash: str
    result_hash: str
    result_bytes: int
    duration_ms: float

    @property
    def is_error(self) -> bool:
        """The tool reported a failure (the call itself went through)."""
        return bool(self.raw.get("isError", False))

    @property
    def content(self) -> list[Mapping[str, Any]]:
        """The content blocks."""
        content = self.raw.get("content")
        return list(content) if isinstance(content, list) else []

    @property
    def structured_content(self) -> Any:
        """``structuredContent``, when the tool returned it."""
        return self.raw.get("structuredContent")

    @property
    def text(self) -> list[str]:
        """The text of every text content block."""
        return [
            block["text"]
            for block in self.content
            if block.get("type") == "text" and isinstance(block.get("text"), str)
        ]


@dataclass(slots=True)
class _Server:
    config: McpServerConfig
    connection: ServerConnection
    refresh_requested: asyncio.Event = field(default_factory=asyncio.Event)
    #: The server announced a tool-list change since the last rediscovery began.
    list_changed: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


class ToolGateway:
    """Servers, their verified tools, and the checked call path (see the module docstring)."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        pins: PinStore,
        policy: PolicyPort,
        audit: AuditPort,
        alerts: AlertPort,
        resolver: KeyResolver,
        opener: SessionOpener = open_mcp_session,
        clock: Callable[[], float] = time.time,
        approvals: ApprovalStore | None = None,
    ) -> None:
        self.config = config
        pins = TimedPinStore(pins, timeout_s=config.pin_store_timeout_s)
        self._pins = pins
        self._policy = policy
        self._audit = audit
        self._alerts = alerts
        self._opener = opener
        self._clock = clock
        self._catalog = ToolCatalog(
            pins=pins, resolver=resolver, emit=self._emit, alert=self._raise_alert, clock=clock
        )
        self._servers: dict[str, _Server] = {}
        self._rate_limiter = CallRateLimiter()
        #: Calls that policy allows only with a human approval (ADR 0086).
        self.approvals = ApprovalBook(
            approvals if approvals is not None else MemoryApprovalStore(),
            ttl_s=config.approval_ttl_s,
            emit=self._emit,
            alert=self._raise_alert,
            timeout_s=config.pin_store_timeout_s,
            clock_ms=lambda: int(clock() * 1000),
        )
        self._group: asyncio.TaskGroup | None = None
        self._closed = False
        #: Audit events that could not be delivered (also logged in full).
        self.audit_failures = 0

    # ---- lifecycle

    async def __aenter__(self) -> Self:
        if self._group is not None or self._closed:
            raise FailedPrecondition("a ToolGateway is entered once", reason="ALREADY_STARTED")
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        for server in self.config.servers:
            await self.register_server(server, wait=False)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop every session (and its process); idempotent."""
        if self._closed:
            return
        self._closed = True
        group, self._group = self._group, None
        for server in list(self._servers.values()):
            for task in server.tasks:
                task.cancel()
        if group is not None:
            await group.__aexit__(None, None, None)
        self._servers.clear()

    # ---- servers

    async def register_server(self, config: McpServerConfig, *, wait: bool = True) -> ServerInfo:
        """Start a session to a server and discover its tools.

        With ``wait``, returns once the first discovery is done or the connection timeout
        has passed (the returned info says which); the session keeps retrying either way.

        Raises:
            AlreadyExists: a different server is registered under the same name.
            FailedPrecondition: the gateway is not running.
        """
        if self._group is None:
            raise FailedPrecondition("the gateway is not running", reason="NOT_STARTED")
        existing = self._servers.get(config.name)
        if existing is not None:
            if existing.config != config:
                raise AlreadyExists(
                    f"a server named {config.name!r} is already registered with other settings; "
                    "remove it first",
                    reason="SERVER_EXISTS",
                )
            return self.server_info(config.name)

        server: _Server

        async def on_connected(session: McpSession) -> None:
            await self._discover(server, session)

        connection = ServerConnection(
            config,
            self._opener,
            on_connected=on_connected,
            emit=self._emit,
            alert=self._raise_alert,
            reconnect_initial_s=self.config.reconnect_initial_s,
            reconnect_max_s=self.config.reconnect_max_s,
            on_tools_changed=(
                (lambda: self._tools_changed(server)) if config.follows_list_changed else None
            ),
        )
        server = _Server(config, connection)
        self._servers[config.name] = server
        self._catalog.add_server(config.name)
        server.tasks.append(
            self._group.create_task(connection.run(), name=f"mcp-session-{config.name}")
        )
        server.tasks.append(
            self._group.create_task(self._refresh_loop(server), name=f"mcp-refresh-{config.name}")
        )
        if wait:
            with contextlib.suppress(SymbiError):
                await connection.session(config.connection_timeout_s)
        return self.server_info(config.name)

    async def remove_server(self, name: str) -> None:
        """Close a server's session and forget its tools (pins stay).

        Raises:
            NotFound: no such server.
        """
        server = self._server(name)
        del self._servers[name]
        for task in server.tasks:
            task.cancel()
        # asyncio.wait, not awaiting each task: their CancelledError is theirs, while a
        # cancellation of this caller still propagates.
        await asyncio.wait(server.tasks)
        self._catalog.remove_server(name)

    async def wait_connected(self, name: str, timeout_s: float) -> ServerInfo:
        """Wait (at most ``timeout_s``) until a server's session serves, i.e. its first
        discovery is done; its info either way.

        Raises:
            NotFound: no such server.
        """
        state = self._server(name)
        with contextlib.suppress(SymbiError):
            await state.connection.session(timeout_s)
        return self.server_info(name)

    def server_info(self, name: str) -> ServerInfo:
        """One server's state.

        Raises:
            NotFound: no such server.
        """
        server = self._server(name)
        connection = server.connection
        return ServerInfo(
            config=server.config,
            connected=connection.connected,
            state=connection.state,
            last_error=connection.last_error,
            tool_count=self._catalog.count(name),
            in_flight=connection.in_flight,
        )

    def servers(self) -> list[ServerInfo]:
        """Every registered server, by name."""
        return [self.server_info(name) for name in sorted(self._servers)]

    # ---- tools

    def tools(self, server: str | None = None, *, include_hidden: bool = True) -> list[ToolView]:
        """Known tools (of one server) with their status; ``include_hidden=False`` keeps only
        the usable ones.

        Raises:
            NotFound: no such server.
        """
        views = self._catalog.views(server)
        return views if include_hidden else [view for view in views if view.usable]

    def tool(self, server: str, tool: str) -> ToolView:
        """One tool.

        Raises:
            NotFound: no such server or tool.
        """
        return self._catalog.entry(server, tool).view

    async def tools_for_agent(self, agent_id: str, server: str | None = None) -> list[ToolView]:
        """The usable tools the policy lets ``agent_id`` call.

        Raises:
            Unavailable: the policy engine did not answer (nothing is shown then).
        """
        candidates = self.tools(server, include_hidden=False)
        if not candidates:
            return []
        requests = [self._authorization(agent_id, view, None) for view in candidates]
        try:
            async with asyncio.timeout(self.config.policy_timeout_s):
                decisions = await self._policy.authorize_many(requests)
        except TimeoutError:
            raise Unavailable(
                "the policy engine did not answer in time", reason="POLICY_UNAVAILABLE"
            ) from None
        except SymbiError as exc:
            raise Unavailable(
                f"the policy engine failed ({exc.message})", reason="POLICY_UNAVAILABLE"
            ) from None
        if len(decisions) != len(candidates):
            raise Unavailable(
                f"the policy engine answered {len(decisions)} of {len(candidates)} questions",
                reason="POLICY_UNAVAILABLE",
            )
        return [
            view
            for view, decision in zip(candidates, decisions, strict=True)
            if decision.allowed and _REQUIRE_APPROVAL not in decision.conditions
        ]

    async def refresh(self, server: str) -> list[ToolView]:
        """Rediscover and re-verify one server's tools now.

        Raises:
            NotFound: no such server.
            Unavailable: the server is not connected.
        """
        state = self._server(server)
        session, generation = await state.connection.session(state.config.connection_timeout_s)
        try:
            return await self._discover(state, session)
        except Unavailable as exc:
            if exc.reason in ("SERVER_DISCONNECTED", "MALFORMED_RESPONSE"):
                state.connection.fault(exc.message, generation=generation)
            raise

    def request_refresh(self, server: str) -> bool:
        """Ask for one server's rediscovery soon (e.g. another replica changed one of its
        pins); whether the server is registered here."""
        state = self._servers.get(server)
        if state is None:
            return False
        state.refresh_requested.set()
        return True

    async def verify_tool(self, server: str, tool: str) -> ToolView:
        """Re-verify one server's tools against freshly fetched SchemaPin discovery (so a
        revocation published a moment ago counts); the named tool's view.

        Raises:
            NotFound: no such server or tool.
            Unavailable: the server is not connected.
        """
        state = self._server(server)
        session, _ = await state.connection.session(state.config.connection_timeout_s)
        await self._discover(state, session, fresh_discovery=True)
        return self.tool(server, tool)

    async def approve(
        self, server: str, tool: str, *, actor: str, definition_hash: str | None = None
    ) -> ToolView:
        """An operator approves a quarantined tool's current definition (and new key).

        Pass the ``definition_hash`` the operator reviewed: if the tool changed again since,
        the approval is refused rather than applied to something nobody looked at.

        Raises:
            NotFound: no such server or tool.
            FailedPrecondition: the tool is not quarantined, or its key is revoked.
            Aborted: the definition is not the reviewed one, or a concurrent pin change won.
        """
        state = self._server(server)
        async with state.lock:
            return await self._catalog.approve(
                state.config, tool, actor=actor, definition_hash=definition_hash
            )

    async def pins(self) -> list[ToolPin]:
        """Every pin (of all servers, registered or not)."""
        return await self._pins.list()

    async def unpin(self, tool_id: str, *, actor: str) -> bool:
        """Remove a pin (``<server>/<tool>``); the tool is trusted on first use again at its
        server's next discovery, which is requested at once. Whether a pin existed."""
        removed = await self._pins.delete(tool_id)
        await self._emit(
            AuditEvent(
                "mcp.pin.removed", actor=actor, details={"tool_id": tool_id, "existed": removed}
            )
        )
        server = self._servers.get(tool_id.split("/", 1)[0])
        if removed and server is not None:
            server.refresh_requested.set()
        return removed

    # ---- the call path

    async def invoke(
        self,
        agent_id: str,
        server: str,
        tool: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        origin: Mapping[str, str] | None = None,
    ) -> ToolResult:
        """Call a tool for an agent through every check (see the module docstring).

        ``origin`` says how the call arrived (``{"via": "bus", "caller": "node-a"}``); it is
        recorded in the call's audit event.

        Raises:
            NotFound: no such server or tool.
            PermissionDenied: the tool is not usable (unverified, quarantined) or the policy
                denied the call (reasons in the message and details).
            InvalidArgument: the arguments are too large or do not match the input schema.
            Unavailable: the server is not connected, dropped during the call, or answered
                with malformed JSON-RPC; or the policy engine did not answer.
            DeadlineExceeded: the tool did not answer in time.
            ResourceExhausted: the result is larger than ``max_result_bytes``, or too many
                calls are in flight.
        """
        started = time.perf_counter()
        arguments = dict(arguments or {})
        record: dict[str, Any] = {**(origin or {}), "server": server, "tool": tool}
        decision: PolicyDecision | None = None
        try:
            state = self._server(server)
            entry = self._catalog.entry(server, tool)
            record |= {
                "definition_hash": entry.view.definition_hash,
                "tool_status": entry.view.status.value,
            }
            args_text = canonical_json(arguments)
            record |= {
                "arguments_sha256": _digest(args_text),
                "arguments_bytes": len(args_text.encode()),
            }
            self._check_usable(entry)
            self._check_arguments(state.config, entry, arguments, record["arguments_bytes"])
            decision = await self._authorize(agent_id, entry, arguments, record)
            if _AUDIT_FULL in decision.conditions:
                record["args_summary"] = summarize_arguments(arguments)
            timeout = min(timeout_s or state.config.call_timeout_s, state.config.call_timeout_s)
            raw = await state.connection.call_tool(tool, arguments, timeout_s=timeout)
            result_text = canonical_json(raw)
            result_bytes = len(result_text.encode())
            record |= {"result_sha256": _digest(result_text), "result_bytes": result_bytes}
            await self._check_result(state, entry, raw, result_bytes)
        except SymbiError as exc:
            if exc.reason == "TOOL_DEFINITION_CHANGED" and server in self._servers:
                self._servers[server].refresh_requested.set()
            await self._audit_call(agent_id, record, decision, started, error=exc)
            raise
        duration_ms = (time.perf_counter() - started) * 1000
        await self._audit_call(
            agent_id, record, decision, started, is_error=bool(raw.get("isError"))
        )
        return ToolResult(
            server=server,
            tool=tool,
            raw=raw,
            arguments_hash=record["arguments_sha256"],
            result_hash=record["result_sha256"],
            result_bytes=result_bytes,
            duration_ms=duration_ms,
        )

    def _check_usable(self, entry: CatalogEntry) -> None:
        view = entry.view
        if view.usable:
            return
        reason = {
            ToolStatus.QUARANTINED: "TOOL_QUARANTINED",
            ToolStatus.UNSIGNED: "TOOL_UNSIGNED",
        }.get(view.status, "TOOL_NOT_VERIFIED")
        raise PermissionDenied(
            f"{view.tool_id} is {view.status.value}: {view.detail}",
            reason=reason,
            details={"tool": view.tool_id, "status": view.status.value},
        )

    def _check_arguments(
        self,
        config: McpServerConfig,
        entry: CatalogEntry,
        arguments: Mapping[str, Any],
        size: int,
    ) -> None:
        if size > config.max_argument_bytes:
            raise InvalidArgument(
                f"arguments are {size} bytes; {entry.view.tool_id} accepts at most "
                f"{config.max_argument_bytes}",
                reason="ARGUMENTS_TOO_LARGE",
            )
        validator = entry.validator
        if validator is None:
            raise FailedPrecondition(
                f"{entry.view.tool_id} has no usable input schema", reason="TOOL_NOT_VERIFIED"
            )
        if validator.is_valid(dict(arguments)):
            return
        error = best_match(validator.iter_errors(dict(arguments)))
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path) or "(root)"
            raise InvalidArgument(
                f"arguments do not match the input schema of {entry.view.tool_id} at {where}: "
                f"{error.message}",
                reason="INVALID_ARGUMENTS",
                details={"path": where, "tool": entry.view.tool_id},
            )

    async def _authorize(
        self,
        agent_id: str,
        entry: CatalogEntry,
        arguments: Mapping[str, Any],
        record: dict[str, Any],
    ) -> PolicyDecision:
        request = self._authorization(agent_id, entry.view, summarize_arguments(arguments))
        try:
            async with asyncio.timeout(self.config.policy_timeout_s):
                decision = await self._policy.authorize(request)
        except TimeoutError:
            raise Unavailable(
                "the policy engine did not answer in time; the call is refused",
                reason="POLICY_UNAVAILABLE",
            ) from None
        except SymbiError as exc:
            raise Unavailable(
                f"the policy engine failed ({exc.message}); the call is refused",
                reason="POLICY_UNAVAILABLE",
            ) from None
        if decision.decision is Decision.DENY:
            why = "; ".join(decision.reasons) or "no policy permits it"
            raise PermissionDenied(
                f"policy denies {agent_id} calling {entry.view.tool_id}: {why}",
                reason="POLICY_DENIED",
                details={"tool": entry.view.tool_id, "policies": ",".join(decision.policies)},
            )
        limits: list[RateLimit] = []
        unsupported: list[str] = []
        for condition in decision.conditions:
            if condition in (_AUDIT_FULL, _REQUIRE_APPROVAL):
                continue
            try:
                limit = parse_rate_limit(condition)
            except InvalidArgument:
                limit = None
            if limit is None:
                unsupported.append(condition)
            else:
                limits.append(limit)
        if unsupported:
            # Fail closed: a condition nobody enforces would make a guarded call unguarded.
            raise PermissionDenied(
                f"policy allows {entry.view.tool_id} only under conditions the gateway cannot "
                f"enforce: {', '.join(unsupported)}",
                reason="CONDITION_UNSUPPORTED",
            )
        for limit in limits:
            self._rate_limiter.take(agent_id, entry.view.tool_id, limit)
        if _REQUIRE_APPROVAL in decision.conditions:
            # Last: a call refused by another condition does not use up its approval.
            approval = await self.approvals.gate(
                agent_id,
                entry.view.server,
                entry.view.name,
                record["arguments_sha256"],
                policies=decision.policies,
                reasons=decision.reasons,
            )
            record["approval_id"] = approval.approval_id
            record["approved_by"] = approval.decided_by
        return decision

    def _authorization(
        self, agent_id: str, view: ToolView, args_summary: str | None
    ) -> ToolCallAuthorization:
        config = self._servers[view.server].config
        return ToolCallAuthorization(
            agent_id=agent_id,
            server=view.server,
            tool=view.name,
            args_summary=args_summary,
            verified=view.status is ToolStatus.VERIFIED,
            domain=config.domain,
            trust_mode=config.trust_mode.value,
        )

    async def _check_result(
        self, state: _Server, entry: CatalogEntry, raw: Mapping[str, Any], size: int
    ) -> None:
        limit = state.config.max_result_bytes
        if size > limit:
            message = f"{entry.view.tool_id} returned {size} bytes; at most {limit} are accepted"
            await self._emit(
                AuditEvent(
                    "mcp.server.protocol_violation",
                    decision="deny",
                    details={
                        "server": state.config.name,
                        "tool": entry.view.name,
                        "message": message,
                    },
                )
            )
            raise ResourceExhausted(message, reason="RESULT_TOO_LARGE", retryable=False)
        validator = entry.output_validator
        structured = raw.get("structuredContent")
        if validator is not None and not raw.get("isError") and not validator.is_valid(structured):
            error = best_match(validator.iter_errors(structured))
            if error is not None:
                raise FailedPrecondition(
                    f"{entry.view.tool_id} returned structured content that does not match its "
                    f"verified output schema: {error.message}",
                    reason="OUTPUT_SCHEMA_VIOLATION",
                )

    async def _audit_call(
        self,
        agent_id: str,
        record: dict[str, Any],
        decision: PolicyDecision | None,
        started: float,
        *,
        error: SymbiError | None = None,
        is_error: bool = False,
    ) -> None:
        details = dict(record)
        details["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        if decision is not None:
            details["policy_conditions"] = ",".join(decision.conditions)
            details["policies"] = ",".join(decision.policies)
        if error is None:
            details["outcome"] = "tool_error" if is_error else "ok"
            verdict = "conditional" if decision and decision.conditions else "allow"
        else:
            refused = isinstance(error, PermissionDenied | InvalidArgument | NotFound) or (
                error.reason
                in (
                    "RESULT_TOO_LARGE",
                    "MESSAGE_TOO_LARGE",
                    "TOO_MANY_CALLS",
                    "POLICY_UNAVAILABLE",
                    "RATE_LIMITED",
                )
            )
            details |= {
                "outcome": "refused" if refused else "failed",
                "reason": error.reason,
                "message": error.message,
            }
            verdict = "deny" if refused else ("allow" if decision is not None else "")
        await self._emit(
            AuditEvent(
                "mcp.tool_call",
                actor=agent_id,
                agent_id=agent_id,
                decision=verdict,
                details=details,
            )
        )

    # ---- discovery

    def _tools_changed(self, state: _Server) -> None:
        # Called from the session's notification path: never blocks, only asks the refresh
        # loop (one rediscovery in flight per server; a burst while one runs makes one more).
        state.list_changed = True
        state.refresh_requested.set()

    async def _discover(
        self, state: _Server, session: McpSession, *, fresh_discovery: bool = False
    ) -> list[ToolView]:
        async with state.lock:
            listed = await session.list_tools(timeout_s=state.config.connection_timeout_s)
            return await self._catalog.discover(
                state.config, listed, fresh_discovery=fresh_discovery
            )

    async def _refresh_loop(self, state: _Server) -> None:
        interval = state.config.refresh_interval_s
        periodic = self.config.discovery_enabled and interval > 0
        while True:
            try:
                async with asyncio.timeout(interval if periodic else None):
                    await state.refresh_requested.wait()
            except TimeoutError:
                pass
            notified = state.list_changed
            if notified and self.config.list_changed_debounce_s > 0:
                await asyncio.sleep(self.config.list_changed_debounce_s)  # coalesce a burst
            state.list_changed = False
            state.refresh_requested.clear()
            if not state.connection.connected:
                continue  # the next session re-verifies on connect
            if notified:
                await self._emit(
                    AuditEvent("mcp.server.tools_changed", details={"server": state.config.name})
                )
            try:
                await self.refresh(state.config.name)
            except SymbiError as exc:
                logger.warning("server %s: rediscovery failed: %s", state.config.name, exc.message)
            except Exception:
                # A bug here must not take every other server's tasks down with this one.
                logger.exception("server %s: rediscovery failed", state.config.name)

    # ---- helpers

    def _server(self, name: str) -> _Server:
        server = self._servers.get(name)
        if server is None:
            raise NotFound(f"no MCP server named {name!r} is registered", reason="SERVER_NOT_FOUND")
        return server

    async def _emit(self, event: AuditEvent) -> None:
        await self._deliver(self._audit.emit, event, "audit event")

    async def _raise_alert(self, alert: SecurityAlert) -> None:
        await self._deliver(self._alerts.raise_alert, alert, "alert")

    async def _deliver(self, send: Callable[[Any], Awaitable[None]], item: Any, what: str) -> None:
        # A failing sink never breaks a call or a discovery, and never loses the record
        # silently: it goes to the log in full and is counted.
        try:
            async with asyncio.timeout(self.config.audit_timeout_s):
                await send(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.audit_failures += 1
            logger.error("could not deliver %s: %r", what, item, exc_info=True)
