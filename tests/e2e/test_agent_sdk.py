"""External agents: credentials from `symbi keys`, the SDK example, revocation."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from symbi_common.agent import AgentClient
from symbi_common.errors import Unauthenticated

ROOT = Path(__file__).resolve().parents[2]


def symbi(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "symbi_cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_agents_talk_with_the_sdk_and_a_revoked_agent_is_shut_out(tmp_path: Path) -> None:
    data = tmp_path / "symbi"
    started = symbi("up", "--detach", "--ephemeral", "--data-dir", str(data))
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        for agent in ("agent-alice", "agent-bob"):
            issued = symbi("keys", "issue", agent, "--data-dir", str(data))
            assert issued.returncode == 0, issued.stdout + issued.stderr
            assert "NATS: reloaded" in issued.stdout
        example = subprocess.run(
            [
                sys.executable,
                str(ROOT / "examples" / "agent_sdk" / "ping_pong.py"),
                "--data-dir",
                str(data),
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

        revoked = symbi(
            "keys", "revoke", "agent-alice", "--reason", "test", "--data-dir", str(data)
        )
        assert revoked.returncode == 0, revoked.stdout + revoked.stderr
        nats_url = json.loads((data / "state.json").read_text())["nats_url"]

        async def connect_as_alice() -> None:
            client = await AgentClient.connect(data / "keys", "agent-alice", nats_url)
            await client.close()

        with pytest.raises(Unauthenticated, match="refused agent-alice"):
            asyncio.run(asyncio.wait_for(connect_as_alice(), 20))
    finally:
        stopped = symbi("down", "--data-dir", str(data))
        assert stopped.returncode == 0
