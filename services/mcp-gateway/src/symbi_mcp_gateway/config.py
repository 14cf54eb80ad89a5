"""The gateway's configuration: the ``[mcp]`` section and its ``[[mcp.servers]]`` list.

The section keeps the original runtime's keys (``tool_verification``, ``connection_timeout_s``,
``max_concurrent_connections``, ``discovery_enabled``) and adds the gateway's own: per-call
limits, the SchemaPin key-discovery settings and the servers. Every per-server limit defaults
to the section's value. ::

    [mcp]
    tool_verification = "strict"          # default trust mode of every server
    connection_timeout_s = 10
    max_concurrent_connections = 16       # in-flight calls per server

    [mcp.schemapin]
    trust_bundle = "/etc/symbi/schemapin-bundle.json"

    [[mcp.servers]]
    name = "time"
    command = "mcp-server-time"
    trust_mode = "permissive"

    [[mcp.servers]]
    name = "tools"
    url = "https://tools.example.com/mcp"
    domain = "tools.example.com"

:func:`load_gateway_config` turns every validation problem into one
:class:`~symbi_common.errors.ConfigError` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from symbi_common.errors import ConfigError

__all__ = [
    "SERVER_NAME_PATTERN",
    "GatewayConfig",
    "McpServerConfig",
    "SchemaPinConfig",
    "TransportKind",
    "TrustMode",
    "load_gateway_config",
]

#: Server names become part of tool names on the gateway's MCP endpoint (``<server>__<tool>``)
#: and of pin ids (``<server>/<tool>``), so they exclude ``_`` and ``/``.
SERVER_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$"

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TrustMode(enum.StrEnum):
    """How a server's unsigned or badly signed tools are treated (see docs/adr/0081)."""

    #: Unsigned or invalid → hidden and every call refused. The default.
    STRICT = "strict"
    #: Unsigned tools are usable (their definition hash is pinned on first use); a present
    #: but invalid signature, a revoked key or a changed key is still refused.
    PERMISSIVE = "permissive"
    #: Everything is usable; problems are audited as warnings and changes re-pinned. For a
    #: developer's own servers, never for production.
    DEVELOPMENT = "development"


class TransportKind(enum.StrEnum):
    """How the gateway reaches a server."""

    STDIO = "stdio"
    STREAMABLE_HTTP = "streamable-http"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class McpServerConfig(_Model):
    """One upstream MCP server: how to reach it and how far to trust it.

    Exactly one of ``command`` (a process spoken to over stdio) or ``url`` (streamable HTTP)
    is set. ``domain`` is where the server's SchemaPin key is discovered; it comes from the
    operator, never from the server, so a server cannot choose whose key vouches for it.
    """

    name: str = Field(pattern=SERVER_NAME_PATTERN)
    command: str | None = Field(None, min_length=1)
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = Field(default_factory=dict)
    cwd: Path | None = None
    url: str | None = None
    #: Extra HTTP headers sent to a streamable-HTTP server (e.g. its own bearer token).
    headers: Mapping[str, str] = Field(default_factory=dict)
    domain: str | None = None
    trust_mode: TrustMode = TrustMode.STRICT
    connection_timeout_s: float = Field(30.0, gt=0, le=3600)
    max_concurrent_connections: int = Field(16, ge=1, le=10_000)
    call_timeout_s: float = Field(60.0, gt=0, le=3600)
    max_result_bytes: int = Field(1_048_576, ge=1024, le=256 * 1024 * 1024)
    max_argument_bytes: int = Field(262_144, ge=256, le=64 * 1024 * 1024)
    #: Longest JSON-RPC message read from a stdio server (one line); a longer one drops the
    #: session before it is buffered. At least ``max_result_bytes``.
    max_message_bytes: int = Field(8 * 1024 * 1024, ge=4096, le=1024 * 1024 * 1024)
    #: Discovery is repeated this often (and after every reconnect); 0 turns periodic
    #: rediscovery off.
    refresh_interval_s: float = Field(300.0, ge=0, le=86_400)
    #: Rediscover when the server announces that its tool list changed
    #: (``notifications/tools/list_changed`` or a ``subscriptions/listen`` event). Unset:
    #: on for stdio servers, off for streamable HTTP ones — the held-open listen request
    #: keeps servers that drain connections on shutdown (uvicorn) from stopping.
    follow_list_changed: bool | None = None
    #: Largest number of tools accepted from the server; a longer list is refused.
    max_tools: int = Field(512, ge=1, le=10_000)

    @property
    def follows_list_changed(self) -> bool:
        """Whether announced tool-list changes are followed (see ``follow_list_changed``)."""
        if self.follow_list_changed is not None:
            return self.follow_list_changed
        return self.transport is TransportKind.STDIO

    @property
    def transport(self) -> TransportKind:
        """stdio when a command is set, streamable HTTP otherwise."""
        return TransportKind.STDIO if self.command is not None else TransportKind.STREAMABLE_HTTP

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL of the server's MCP endpoint")
        return value

    @field_validator("domain")
    @classmethod
    def _check_domain(cls, value: str | None) -> str | None:
        if value is not None and not _DOMAIN_RE.match(value):
            raise ValueError("must be a host name such as tools.example.com (optionally :port)")
        return value

    @field_validator("env")
    @classmethod
    def _check_env(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        for key in value:
            if not _ENV_NAME_RE.match(key):
                raise ValueError(f"environment variable name {key!r} is not a valid name")
        return value

    @model_validator(mode="after")
    def _check_transport(self) -> Self:
        if (self.command is None) == (self.url is None):
            raise ValueError(
                "set exactly one of 'command' (a stdio server) or 'url' (a streamable-HTTP server)"
            )
        if self.command is None and (self.args or self.env or self.cwd is not None):
            raise ValueError("'args', 'env' and 'cwd' apply to stdio servers only (set 'command')")
        if self.max_message_bytes < self.max_result_bytes:
            raise ValueError(
                f"max_message_bytes ({self.max_message_bytes}) must be at least "
                f"max_result_bytes ({self.max_result_bytes})"
            )
        if self.url is None and self.headers:
            raise ValueError("'headers' apply to streamable-HTTP servers only (set 'url')")
        if self.trust_mode is not TrustMode.DEVELOPMENT and self.domain is None:
            raise ValueError(
                f"trust_mode {self.trust_mode.value!r} needs 'domain' (where the server's "
                "SchemaPin key is discovered); only 'development' may omit it"
            )
        return self


class SchemaPinConfig(_Model):
    """Where SchemaPin discovery documents come from (``[mcp.schemapin]``).

    Resolvers are tried in order: the trust bundle, then the local directory, then the
    domain's ``.well-known/schemapin.json`` over HTTPS (unless ``well_known_enabled`` is
    false). ``well_known_urls`` replaces the HTTPS URL of chosen domains, for servers that
    publish their document elsewhere (and for tests on loopback).
    """

    trust_bundle: Path | None = None
    discovery_dir: Path | None = None
    revocation_dir: Path | None = None
    well_known_enabled: bool = True
    well_known_urls: Mapping[str, str] = Field(default_factory=dict)
    discovery_timeout_s: float = Field(5.0, gt=0, le=120)
    #: Discovery documents (and the revocations they point to) are reused this long.
    discovery_ttl_s: float = Field(60.0, ge=0, le=86_400)
    max_document_bytes: int = Field(65_536, ge=1024, le=16 * 1024 * 1024)

    @field_validator("well_known_urls")
    @classmethod
    def _check_urls(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        for domain, url in value.items():
            if not _DOMAIN_RE.match(domain):
                raise ValueError(f"{domain!r} is not a host name")
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} (for {domain}) must be an http:// or https:// URL")
        return value


class GatewayConfig(_Model):
    """The whole ``[mcp]`` section as the gateway reads it."""

    #: Accepted from the original runtime: with it off, tools are discovered at registration
    #: and on request only, never periodically.
    discovery_enabled: bool = True
    #: Default trust mode of servers that do not set ``trust_mode``.
    tool_verification: TrustMode = TrustMode.STRICT
    connection_timeout_s: float = Field(30.0, gt=0, le=3600)
    max_concurrent_connections: int = Field(16, ge=1, le=10_000)
    call_timeout_s: float = Field(60.0, gt=0, le=3600)
    max_result_bytes: int = Field(1_048_576, ge=1024, le=256 * 1024 * 1024)
    max_argument_bytes: int = Field(262_144, ge=256, le=64 * 1024 * 1024)
    max_message_bytes: int = Field(8 * 1024 * 1024, ge=4096, le=1024 * 1024 * 1024)
    refresh_interval_s: float = Field(300.0, ge=0, le=86_400)
    #: After a server announces a tool-list change, wait this long for more announcements
    #: before rediscovering (a burst costs one rediscovery).
    list_changed_debounce_s: float = Field(0.2, ge=0, le=60)
    #: Backoff between reconnection attempts: doubles from the first to the cap.
    reconnect_initial_s: float = Field(0.2, gt=0, le=60)
    reconnect_max_s: float = Field(30.0, gt=0, le=3600)
    #: How long an audit emission may take before it is logged as failed.
    audit_timeout_s: float = Field(2.0, gt=0, le=60)
    #: How long a policy decision may take; no answer in time refuses the call.
    policy_timeout_s: float = Field(2.0, gt=0, le=60)
    #: How long an approval of a ``require_approval`` call stays valid after the refused call
    #: asked for it (pending, then approved and unused, or denied).
    approval_ttl_s: float = Field(3600.0, ge=1, le=30 * 86_400)
    #: How long a pin store operation may take.
    pin_store_timeout_s: float = Field(5.0, gt=0, le=60)
    schemapin: SchemaPinConfig = SchemaPinConfig()
    servers: tuple[McpServerConfig, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _inherit_server_defaults(cls, data: Any) -> Any:
        # A server that does not set a limit or trust mode takes the section's value.
        if not isinstance(data, Mapping):
            return data
        servers = data.get("servers")
        if not isinstance(servers, list | tuple):
            return data
        inherited = {
            "trust_mode": data.get("tool_verification"),
            **{
                key: data.get(key)
                for key in (
                    "connection_timeout_s",
                    "max_concurrent_connections",
                    "call_timeout_s",
                    "max_result_bytes",
                    "max_argument_bytes",
                    "max_message_bytes",
                    "refresh_interval_s",
                )
            },
        }
        merged = []
        for server in servers:
            if isinstance(server, Mapping):
                defaults = {k: v for k, v in inherited.items() if v is not None and k not in server}
                server = {**defaults, **server}
            merged.append(server)
        return {**data, "servers": merged}

    @model_validator(mode="after")
    def _check_servers(self) -> Self:
        names = [server.name for server in self.servers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"server names must be unique; repeated: {', '.join(duplicates)}")
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be at least reconnect_initial_s")
        return self

    def server(self, name: str) -> McpServerConfig | None:
        """The configured server called ``name``, if any."""
        return next((server for server in self.servers if server.name == name), None)


def _describe(exc: ValidationError, data: Mapping[str, Any], prefix: str) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = prefix
        for part in loc:
            key += f"[{part}]" if isinstance(part, int) else f".{part}"
        node: Any = data
        found = True
        for part in loc:
            in_mapping = isinstance(node, Mapping) and part in node
            in_list = isinstance(node, list | tuple) and isinstance(part, int) and part < len(node)
            if in_mapping or in_list:
                node = node[part]
            else:
                found = False
                break
        shown = repr(node) if found else "(missing)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        lines.append(f"{key} = {shown}: {message}")
    return "invalid MCP gateway configuration:\n  " + "\n  ".join(lines)


def load_gateway_config(section: Mapping[str, Any], *, prefix: str = "mcp") -> GatewayConfig:
    """Validate the ``[mcp]`` section (as a plain mapping) into a :class:`GatewayConfig`.

    Raises:
        ConfigError: naming every offending key (``mcp.servers[1].url``), its value and what
            is allowed.
    """
    try:
        return GatewayConfig.model_validate(dict(section))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, section, prefix), reason="CONFIG_INVALID") from None
