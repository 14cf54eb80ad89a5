"""The ``[mcp]`` section: defaults, inheritance, and errors that name key, value and rule."""

from __future__ import annotations

import pytest

from symbi_common.errors import ConfigError
from symbi_mcp_gateway import TransportKind, TrustMode, load_gateway_config


def test_defaults_and_inheritance_from_the_section() -> None:
    config = load_gateway_config(
        {
            "tool_verification": "permissive",
            "connection_timeout_s": 7,
            "max_concurrent_connections": 3,
            "servers": [
                {"name": "time", "command": "mcp-server-time", "domain": "time.example"},
                {
                    "name": "tools",
                    "url": "https://tools.example.com/mcp",
                    "domain": "tools.example.com",
                    "trust_mode": "strict",
                    "max_concurrent_connections": 9,
                },
            ],
        }
    )
    time_server, tools = config.servers
    assert time_server.transport is TransportKind.STDIO
    assert time_server.trust_mode is TrustMode.PERMISSIVE  # inherited
    assert time_server.connection_timeout_s == 7
    assert time_server.max_concurrent_connections == 3
    assert tools.transport is TransportKind.STREAMABLE_HTTP
    assert tools.trust_mode is TrustMode.STRICT  # its own
    assert tools.max_concurrent_connections == 9
    assert config.server("tools") is tools
    assert config.server("nope") is None


def test_the_original_runtime_section_alone_is_valid() -> None:
    config = load_gateway_config(
        {
            "discovery_enabled": True,
            "tool_verification": "strict",
            "connection_timeout_s": 30,
            "max_concurrent_connections": 100,
        }
    )
    assert config.servers == ()
    assert config.tool_verification is TrustMode.STRICT


@pytest.mark.parametrize(
    ("server", "key", "needle"),
    [
        ({"name": "x"}, "mcp.servers[0]", "exactly one of 'command'"),
        (
            {"name": "x", "command": "a", "url": "https://h/mcp", "domain": "h"},
            "mcp.servers[0]",
            "exactly one of 'command'",
        ),
        ({"name": "Bad_Name", "command": "a", "domain": "h"}, "mcp.servers[0].name", "pattern"),
        ({"name": "x", "url": "ftp://h/mcp", "domain": "h"}, "mcp.servers[0].url", "http"),
        ({"name": "x", "command": "a"}, "mcp.servers[0]", "needs 'domain'"),
        (
            {"name": "x", "command": "a", "domain": "h", "trust_mode": "yolo"},
            "mcp.servers[0].trust_mode",
            "strict",
        ),
        (
            {"name": "x", "command": "a", "domain": "h", "max_concurrent_connections": 0},
            "mcp.servers[0].max_concurrent_connections",
            "greater than or equal to 1",
        ),
        (
            {"name": "x", "command": "a", "domain": "h", "colour": 1},
            "mcp.servers[0].colour",
            "unknown key",
        ),
        (
            {"name": "x", "url": "https://h/mcp", "domain": "h", "args": ["-v"]},
            "mcp.servers[0]",
            "stdio servers only",
        ),
        (
            {"name": "x", "command": "a", "domain": "not a host"},
            "mcp.servers[0].domain",
            "host name",
        ),
    ],
)
def test_a_bad_server_names_key_value_and_rule(
    server: dict[str, object], key: str, needle: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_gateway_config({"servers": [server]})
    message = caught.value.message
    assert key in message
    assert needle in message


def test_development_servers_may_omit_the_domain() -> None:
    config = load_gateway_config(
        {"servers": [{"name": "dev", "command": "./server", "trust_mode": "development"}]}
    )
    assert config.servers[0].domain is None


def test_duplicate_server_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="repeated: a"):
        load_gateway_config(
            {
                "servers": [
                    {"name": "a", "command": "x", "domain": "h"},
                    {"name": "a", "command": "y", "domain": "h"},
                ]
            }
        )


def test_the_value_is_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        load_gateway_config({"connection_timeout_s": -1})
    assert "mcp.connection_timeout_s = -1" in caught.value.message


def test_schemapin_urls_are_checked() -> None:
    with pytest.raises(ConfigError, match="well_known_urls"):
        load_gateway_config({"schemapin": {"well_known_urls": {"h.example": "gopher://x"}}})
    config = load_gateway_config(
        {
            "schemapin": {
                "well_known_urls": {"h.example": "http://127.0.0.1:9/.well-known/schemapin.json"}
            }
        }
    )
    assert config.schemapin.well_known_urls["h.example"].startswith("http://127.0.0.1")


def test_the_common_settings_section_feeds_the_gateway_config() -> None:
    from symbi_common.config import McpSection

    section = McpSection.model_validate(
        {
            "tool_verification": "permissive",
            "max_concurrent_connections": 4,
            "servers": [{"name": "time", "command": "mcp-server-time", "domain": "t.example"}],
        }
    )
    config = load_gateway_config(section.model_dump())
    assert config.servers[0].trust_mode is TrustMode.PERMISSIVE
    assert config.servers[0].max_concurrent_connections == 4


def test_list_changed_is_followed_on_stdio_by_default_and_on_http_when_asked() -> None:
    from symbi_mcp_gateway import McpServerConfig

    stdio = McpServerConfig(name="s", command="srv", trust_mode="development")  # type: ignore[arg-type]
    http = McpServerConfig(name="h", url="http://h.example/mcp", trust_mode="development")  # type: ignore[arg-type]
    assert stdio.follows_list_changed
    assert not http.follows_list_changed
    assert http.model_copy(update={"follow_list_changed": True}).follows_list_changed
    assert not stdio.model_copy(update={"follow_list_changed": False}).follows_list_changed
