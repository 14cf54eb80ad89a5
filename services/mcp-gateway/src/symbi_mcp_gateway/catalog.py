"""What the gateway knows about each server's tools, and how it comes to know it.

:class:`ToolCatalog` turns a server's ``tools/list`` into :class:`ToolView` records: it parses
each definition, resolves the server's SchemaPin domain once, checks every signature
(:mod:`~symbi_mcp_gateway.verifier`), decides each status (:mod:`~symbi_mcp_gateway.trust`),
writes pins with compare-and-set so replicas agree, and reports what is news — a first pin, a
signed update, a rejection, a quarantine, a removal — as audit events and alerts. Argument
validators are compiled here, once per definition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jsonschema import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from referencing import Registry

from symbi_common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    SymbiError,
)
from symbi_mcp_gateway.audit import AuditEvent, SecurityAlert
from symbi_mcp_gateway.config import McpServerConfig
from symbi_mcp_gateway.definition import ToolDefinition
from symbi_mcp_gateway.pins import PinStore, StoredPin, ToolPin
from symbi_mcp_gateway.resolver import Discovery, KeyResolver
from symbi_mcp_gateway.trust import Assessment, PinAction, ToolStatus, assess
from symbi_mcp_gateway.trust import approve as approve_pin
from symbi_mcp_gateway.verifier import SignatureCheck, SignatureOutcome, check_signature

__all__ = ["MAX_DEFINITION_BYTES", "CatalogEntry", "ToolCatalog", "ToolView"]

logger = logging.getLogger(__name__)

#: Largest tool document accepted (canonical JSON).
MAX_DEFINITION_BYTES = 65_536
_PIN_RACE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class ToolView:
    """A tool as operators and agents see it."""

    server: str
    definition: ToolDefinition
    status: ToolStatus
    detail: str
    key_fingerprint: str | None = None
    approved_by: str | None = None

    @property
    def name(self) -> str:
        """The tool's name on its server."""
        return self.definition.name

    @property
    def tool_id(self) -> str:
        """``<server>/<tool>``."""
        return f"{self.server}/{self.definition.name}"

    @property
    def definition_hash(self) -> str:
        """``sha256:<hex>`` of the tool document."""
        return self.definition.definition_hash

    @property
    def usable(self) -> bool:
        """Whether agents may see and call it."""
        return self.status.usable


@dataclass(slots=True)
class CatalogEntry:
    """A :class:`ToolView` plus what the call path and approvals need."""

    view: ToolView
    check: SignatureCheck
    validator: Validator | None = None
    output_validator: Validator | None = None
    domain: str | None = None


def _compile(schema: Mapping[str, Any]) -> Validator:
    cls = validator_for(schema)
    cls.check_schema(schema)
    # An empty registry: a $ref resolves inside the schema or not at all, never over the
    # network.
    validator: Validator = cls(schema, registry=Registry())
    return validator


@dataclass(slots=True)
class _ServerTools:
    entries: dict[str, CatalogEntry] = field(default_factory=dict)


class ToolCatalog:
    """The verified view of every registered server's tools."""

    def __init__(
        self,
        *,
        pins: PinStore,
        resolver: KeyResolver,
        emit: Callable[[AuditEvent], Awaitable[None]],
        alert: Callable[[SecurityAlert], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pins = pins
        self._resolver = resolver
        self._emit = emit
        self._alert = alert
        self._clock = clock
        self._servers: dict[str, _ServerTools] = {}

    # ---- reading

    def entry(self, server: str, tool: str) -> CatalogEntry:
        """The entry of one tool.

        Raises:
            NotFound: the server is not registered or does not list the tool.
        """
        tools = self._servers.get(server)
        if tools is None:
            raise NotFound(
                f"no MCP server named {server!r} is registered", reason="SERVER_NOT_FOUND"
            )
        entry = tools.entries.get(tool)
        if entry is None:
            raise NotFound(f"server {server} has no tool named {tool!r}", reason="TOOL_NOT_FOUND")
        return entry

    def views(self, server: str | None = None) -> list[ToolView]:
        """Every known tool (of one server), ordered by server and name."""
        names = [server] if server is not None else sorted(self._servers)
        views: list[ToolView] = []
        for name in names:
            tools = self._servers.get(name)
            if tools is None:
                raise NotFound(
                    f"no MCP server named {name!r} is registered", reason="SERVER_NOT_FOUND"
                )
            views.extend(tools.entries[key].view for key in sorted(tools.entries))
        return views

    def add_server(self, server: str) -> None:
        """Start tracking a server (with no tools until its first discovery)."""
        self._servers.setdefault(server, _ServerTools())

    def remove_server(self, server: str) -> None:
        """Forget a server's tools (its pins stay)."""
        self._servers.pop(server, None)

    def count(self, server: str) -> int:
        """How many tools a server lists."""
        tools = self._servers.get(server)
        return len(tools.entries) if tools else 0

    # ---- discovery

    async def discover(
        self,
        config: McpServerConfig,
        listed: Sequence[Mapping[str, Any]],
        *,
        fresh_discovery: bool = False,
    ) -> list[ToolView]:
        """Verify a server's listing and replace its entries; the new views.

        Raises:
            ResourceExhausted: the server lists more than ``max_tools`` tools.
        """
        server = config.name
        if len(listed) > config.max_tools:
            raise ResourceExhausted(
                f"server {server} lists {len(listed)} tools; at most {config.max_tools} are accepted",
                reason="TOO_MANY_TOOLS",
            )
        previous = self._servers.setdefault(server, _ServerTools()).entries
        definitions: dict[str, ToolDefinition] = {}
        for raw in listed:
            definition = await self._parse(server, raw)
            if definition is not None and definition.name not in definitions:
                definitions[definition.name] = definition

        stored = {name: await self._pins.get(f"{server}/{name}") for name in definitions}
        # Discovery is needed to check a signature or a pinned key's revocation; a server of
        # unsigned tools (permissive mode) is not made to fetch anything.
        if any(d.signature for d in definitions.values()) or any(
            s is not None and s.pin.key_fingerprint for s in stored.values()
        ):
            discovery, discovery_error = await self._discovery(config, fresh=fresh_discovery)
        else:
            discovery, discovery_error = None, "no tool is signed"
        entries: dict[str, CatalogEntry] = {}
        for name, definition in definitions.items():
            entries[name] = await self._verify(
                config, definition, discovery, discovery_error, previous.get(name), stored[name]
            )
        for name in sorted(set(previous) - set(entries)):
            await self._emit(
                AuditEvent(
                    "mcp.tool.removed",
                    details={
                        "server": server,
                        "tool": name,
                        "definition_hash": previous[name].view.definition_hash,
                    },
                )
            )
        self._servers[server].entries = entries
        return [entries[name].view for name in sorted(entries)]

    async def approve(
        self,
        config: McpServerConfig,
        tool: str,
        *,
        actor: str,
        definition_hash: str | None,
    ) -> ToolView:
        """Record an operator's approval of a quarantined tool (see :func:`trust.approve`).

        Raises:
            NotFound: no such tool.
            FailedPrecondition: the tool is not quarantined, or its key is revoked.
            Aborted: ``definition_hash`` is not the tool's current hash (it changed after
                the operator reviewed it), or another replica changed the pin meanwhile.
        """
        entry = self.entry(config.name, tool)
        view = entry.view
        if view.status is not ToolStatus.QUARANTINED:
            raise FailedPrecondition(
                f"{view.tool_id} is {view.status.value}, not quarantined; only a quarantined "
                "tool can be approved",
                reason="NOT_QUARANTINED",
            )
        if definition_hash and definition_hash != view.definition_hash:
            raise Aborted(
                f"{view.tool_id} changed since it was reviewed: its definition is now "
                f"{view.definition_hash}, not {definition_hash}",
                reason="DEFINITION_CHANGED",
            )
        stored = await self._pins.get(view.tool_id)
        now_ms = int(self._clock() * 1000)
        pin = approve_pin(
            pin=stored.pin if stored else None,
            server=config.name,
            tool=tool,
            domain=entry.domain,
            definition_hash=view.definition_hash,
            check=entry.check,
            actor=actor,
            now_ms=now_ms,
        )
        if stored is None:
            await self._pins.create(pin)
        else:
            await self._pins.update(pin, revision=stored.revision)
        assessment = assess(
            mode=config.trust_mode,
            server=config.name,
            tool=tool,
            domain=entry.domain,
            definition_hash=view.definition_hash,
            check=entry.check,
            pin=pin,
            now_ms=now_ms,
        )
        entry = self._entry(config, view.definition, assessment, entry.check, pin)
        self._servers[config.name].entries[tool] = entry
        await self._emit(
            AuditEvent(
                "mcp.tool.approved",
                actor=actor,
                decision="allow",
                details={
                    "server": config.name,
                    "tool": tool,
                    "definition_hash": view.definition_hash,
                    "key_fingerprint": pin.key_fingerprint,
                    "status": entry.view.status.value,
                },
            )
        )
        return entry.view

    # ---- internals

    async def _parse(self, server: str, raw: Mapping[str, Any]) -> ToolDefinition | None:
        try:
            definition = ToolDefinition.from_wire(raw)
            size = definition.size
            if size > MAX_DEFINITION_BYTES:
                raise InvalidArgument(
                    f"tool {definition.name!r} definition is {size} bytes; at most "
                    f"{MAX_DEFINITION_BYTES} are accepted",
                    reason="DEFINITION_TOO_LARGE",
                )
        except (InvalidArgument, TypeError, ValueError) as exc:
            message = exc.message if isinstance(exc, SymbiError) else repr(exc)
            await self._emit(
                AuditEvent(
                    "mcp.tool.rejected",
                    decision="deny",
                    details={
                        "server": server,
                        "tool": str(raw.get("name", ""))[:128],
                        "reason": message,
                    },
                )
            )
            return None
        return definition

    async def _discovery(
        self, config: McpServerConfig, *, fresh: bool
    ) -> tuple[Discovery | None, str]:
        if config.domain is None:
            return None, "no SchemaPin domain configured"
        invalidate = getattr(self._resolver, "invalidate", None)
        if fresh and callable(invalidate):
            invalidate(config.domain)
        try:
            return await self._resolver.resolve(config.domain), ""
        except SymbiError as exc:
            logger.warning("server %s: SchemaPin discovery failed: %s", config.name, exc.message)
            return None, exc.message

    async def _verify(
        self,
        config: McpServerConfig,
        definition: ToolDefinition,
        discovery: Discovery | None,
        discovery_error: str,
        previous: CatalogEntry | None,
        stored: StoredPin | None,
    ) -> CatalogEntry:
        tool_id = f"{config.name}/{definition.name}"
        for attempt in range(_PIN_RACE_ATTEMPTS):
            if attempt:
                stored = await self._pins.get(tool_id)
            pin = stored.pin if stored else None
            check = check_signature(
                definition.document,
                definition.signature,
                domain=config.domain,
                tool_id=tool_id,
                discovery=discovery,
                pin=pin,
                discovery_error=discovery_error,
            )
            assessment = assess(
                mode=config.trust_mode,
                server=config.name,
                tool=definition.name,
                domain=config.domain,
                definition_hash=definition.definition_hash,
                check=check,
                pin=pin,
                now_ms=int(self._clock() * 1000),
            )
            try:
                pin = await self._apply(assessment, stored) or pin
            except (AlreadyExists, Aborted):
                continue  # another replica pinned first: decide again against its pin
            entry = self._entry(config, definition, assessment, check, pin)
            await self._report(config, entry, assessment, previous)
            return entry
        raise Aborted(
            f"pin of {tool_id} kept changing under concurrent writers; try again",
            reason="PIN_CONTENTION",
        )

    async def _apply(self, assessment: Assessment, stored: StoredPin | None) -> ToolPin | None:
        new_pin = assessment.new_pin
        if assessment.pin_action is PinAction.CREATE and new_pin is not None:
            await self._pins.create(new_pin)
            return new_pin
        if assessment.pin_action is PinAction.UPDATE and new_pin is not None:
            if stored is None:
                raise Aborted("pin vanished", reason="PIN_CHANGED")
            await self._pins.update(new_pin, revision=stored.revision)
            return new_pin
        return None

    def _view(
        self,
        config: McpServerConfig,
        definition: ToolDefinition,
        assessment: Assessment,
        check: SignatureCheck,
        pin: ToolPin | None,
    ) -> ToolView:
        fingerprint = (
            check.key_fingerprint if check.valid else (pin.key_fingerprint if pin else None)
        )
        return ToolView(
            server=config.name,
            definition=definition,
            status=assessment.status,
            detail=assessment.detail,
            key_fingerprint=fingerprint,
            approved_by=pin.approved_by if pin else None,
        )

    def _entry(
        self,
        config: McpServerConfig,
        definition: ToolDefinition,
        assessment: Assessment,
        check: SignatureCheck,
        pin: ToolPin | None,
    ) -> CatalogEntry:
        view = self._view(config, definition, assessment, check, pin)
        entry = CatalogEntry(view=view, check=check, domain=config.domain)
        if not view.usable:
            return entry
        try:
            entry.validator = _compile(definition.input_schema)
            if definition.output_schema is not None:
                entry.output_validator = _compile(definition.output_schema)
        except SchemaError as exc:
            entry.view = ToolView(
                server=config.name,
                definition=definition,
                status=ToolStatus.INVALID,
                detail=f"its schema is not valid JSON Schema: {exc.message}",
                key_fingerprint=view.key_fingerprint,
                approved_by=view.approved_by,
            )
            entry.validator = entry.output_validator = None
        return entry

    async def _report(
        self,
        config: McpServerConfig,
        entry: CatalogEntry,
        assessment: Assessment,
        previous: CatalogEntry | None,
    ) -> None:
        view = entry.view
        news = (
            assessment.pin_action is not PinAction.KEEP
            or previous is None
            or previous.view.status is not view.status
            or previous.view.definition_hash != view.definition_hash
        )
        if not news:
            return
        event_type = assessment.event_type
        if view.status is ToolStatus.INVALID and assessment.status.usable:
            event_type = "mcp.tool.rejected"  # the schema failed to compile
        if event_type is None:
            event_type = "mcp.tool.verified" if view.usable else "mcp.tool.rejected"
        decision = "allow" if view.usable else "deny"
        details: dict[str, Any] = {
            "server": config.name,
            "tool": view.name,
            "status": view.status.value,
            "definition_hash": view.definition_hash,
            "key_fingerprint": view.key_fingerprint,
            "trust_mode": config.trust_mode.value,
            "detail": view.detail,
        }
        if previous is not None and previous.view.definition_hash != view.definition_hash:
            details["previous_definition_hash"] = previous.view.definition_hash
        for warning in entry.check.warnings:
            details.setdefault("warning", warning)
        await self._emit(AuditEvent(event_type, decision=decision, details=details))
        if assessment.alert is not None and (
            previous is None
            or previous.view.status is not view.status
            or previous.view.definition_hash != view.definition_hash
        ):
            await self._alert(
                SecurityAlert(
                    assessment.alert,
                    config.name,
                    f"{view.tool_id}: {view.detail}",
                    tool=view.name,
                    details={
                        "definition_hash": view.definition_hash,
                        "key_fingerprint": entry.check.key_fingerprint,
                    },
                )
            )
        if entry.check.outcome is SignatureOutcome.UNRESOLVED and not view.usable:
            logger.info("server %s: %s cannot be verified: %s", config.name, view.name, view.detail)
