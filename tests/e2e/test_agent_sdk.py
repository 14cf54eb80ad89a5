"""External agents: credentials from `symbi keys`, the SDK example, revocation."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from symbi_common.agent import AgentClient
from symbi_common.errors import Unauthenticated
from symbi_testing import LocalPlatform

ROOT = Path(__file__).resolve().parents[2]


def test_agents_talk_with_the_sdk_and_a_revoked_agent_is_shut_out(
    local_platform: LocalPlatform,
) -> None:
    for agent in ("agent-alice", "agent-bob"):
        issued = local_platform.cli("keys", "issue", agent)
        assert issued.returncode == 0, issued.stdout + issued.stderr
        assert "NATS: reloaded" in issued.stdout
    example = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "agent_sdk" / "ping_pong.py"),
            "--data-dir",
            str(local_platform.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert example.returncode == 0, example.stdout + example.stderr
    assert example.stdout.splitlines() == [
        "bob got a direct message from agent-alice: hello, bob",
        "alice got a reply from agent-bob: pong to ping",
        "bob read on agents.public from agent-alice: news for every agent",
    ]

    revoked = local_platform.cli("keys", "revoke", "agent-alice", "--reason", "test")
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr

    async def connect_as_alice() -> None:
        client = await AgentClient.connect(
            local_platform.data_dir / "keys", "agent-alice", local_platform.nats_url
        )
        await client.close()

    with pytest.raises(Unauthenticated, match="refused agent-alice"):
        asyncio.run(asyncio.wait_for(connect_as_alice(), 20))
