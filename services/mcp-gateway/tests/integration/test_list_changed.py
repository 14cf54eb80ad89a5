"""A real stdio server that changes a tool and announces it: the gateway re-verifies at once
(quarantining the silent change) instead of waiting for its periodic rediscovery."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from symbi_common.errors import PermissionDenied
from symbi_mcp_gateway import McpServerConfig, ToolGateway, ToolStatus
from symbi_testing.eventually import eventually

if TYPE_CHECKING:
    from ..conftest import RecordingAlerts, RecordingAudit

OpenGateway = Callable[..., AbstractAsyncContextManager[ToolGateway]]
CHANGING = Path(__file__).with_name("changing_server.py")


def changing_server(**overrides: object) -> McpServerConfig:
    values: dict[str, object] = {
        "name": "changing",
        "command": sys.executable,
        "args": [str(CHANGING)],
        "domain": "changing.example",
        "trust_mode": "permissive",  # unsigned tools are pinned by hash: a change is a rug pull
        "connection_timeout_s": 30,
        "refresh_interval_s": 86_400,  # periodic rediscovery cannot be what catches it
    }
    values.update(overrides)
    return McpServerConfig.model_validate(values)


async def test_announced_change_is_quarantined_promptly(
    open_gateway: OpenGateway, audit: RecordingAudit, alerts: RecordingAlerts
) -> None:
    async with open_gateway(list_changed_debounce_s=0.05) as gateway:
        info = await gateway.register_server(changing_server())
        assert info.connected, info.last_error
        assert gateway.tool("changing", "echo").status is ToolStatus.ALLOWED_UNVERIFIED
        assert (await gateway.invoke("agent-1", "changing", "echo", {"text": "hi"})).text == ["hi"]

        await gateway.invoke("agent-1", "changing", "mutate", {})

        await eventually(
            lambda: gateway.tool("changing", "echo").status is ToolStatus.QUARANTINED,
            timeout=10,
            message="echo quarantined after the server announced its change",
        )
        with pytest.raises(PermissionDenied) as refused:
            await gateway.invoke("agent-1", "changing", "echo", {"text": "hi"})
        assert refused.value.reason == "TOOL_QUARANTINED"
        assert "rug_pull" in alerts.kinds()
        assert audit.of_type("mcp.server.tools_changed")


async def test_not_followed_when_turned_off(open_gateway: OpenGateway) -> None:
    async with open_gateway(list_changed_debounce_s=0.0) as gateway:
        info = await gateway.register_server(changing_server(follow_list_changed=False))
        assert info.connected, info.last_error
        await gateway.invoke("agent-1", "changing", "mutate", {})
        # Nothing announces the change to the gateway; an explicit rediscovery still sees it.
        assert gateway.tool("changing", "echo").status is ToolStatus.ALLOWED_UNVERIFIED
        await gateway.refresh("changing")
        assert gateway.tool("changing", "echo").status is ToolStatus.QUARANTINED
