"""``symbi agent`` as a process against a lifecycle service process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import NO_POLICY, start_lifecycle


def symbi(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYMBI_LIFECYCLE_ADDRESS": address, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "symbi_cli", "agent", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def run(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(symbi, address, *args)


async def test_agent_commands(services, examples, tmp_path: Path) -> None:
    process = await start_lifecycle(services, "a", NO_POLICY)
    address = process.grpc_address or ""
    researcher = next(p for p in examples if p.name == "researcher.symbi")

    created = await run(address, "create", str(researcher), "--id", "agent-cli-1", "--owner", "ops")
    assert created.returncode == 0, created.stderr
    assert "agent-cli-1" in created.stdout
    assert "READY" in created.stdout

    toml = next(p for p in examples if p.suffix == ".toml")
    as_json = await run(address, "create", str(toml), "--json")
    assert as_json.returncode == 0, as_json.stderr
    second = json.loads(as_json.stdout)
    assert second["state"] == "AGENT_STATE_READY"

    listing = await run(address, "list", "--json")
    assert listing.returncode == 0, listing.stderr
    data = json.loads(listing.stdout)
    assert data["total"] == 2
    assert {a["id"] for a in data["agents"]} == {"agent-cli-1", second["id"]}
    table = await run(address, "list", "--owner", "ops")
    assert "agent-cli-1" in table.stdout
    assert second["id"] not in table.stdout

    got = await run(address, "get", "agent-cli-1", "--source")
    assert got.returncode == 0, got.stderr
    assert "researcher" in got.stdout
    assert "web_search" in got.stdout  # from the source

    watcher = asyncio.create_task(
        run(address, "watch", "agent-cli-1", "--until", "TERMINATED", "--timeout", "40")
    )
    suspended = await run(address, "suspend", "agent-cli-1", "--reason", "maintenance")
    assert suspended.returncode == 0, suspended.stderr
    assert "SUSPENDED" in suspended.stdout
    again = await run(address, "suspend", "agent-cli-1")
    assert again.returncode == 1
    assert "from SUSPENDED to SUSPENDED" in again.stderr
    stale = await run(address, "resume", "agent-cli-1", "--revision", "1")
    assert stale.returncode == 1
    assert "revision" in stale.stderr
    resumed = await run(address, "resume", "agent-cli-1")
    assert "READY" in resumed.stdout
    ended = await run(address, "terminate", "agent-cli-1")
    assert "TERMINATED" in ended.stdout
    watched = await watcher
    assert watched.returncode == 0, watched.stderr
    lines = [line for line in watched.stdout.splitlines() if "→" in line]
    assert [line.split("→")[1].split()[0] for line in lines][-3:] == [
        "READY",
        "TERMINATING",
        "TERMINATED",
    ]

    history = await run(address, "history", "agent-cli-1")
    assert history.returncode == 0
    assert "maintenance" in history.stdout
    assert history.stdout.count("→") == 7


async def test_agent_command_errors(services, tmp_path: Path) -> None:
    process = await start_lifecycle(services, "a", NO_POLICY)
    address = process.grpc_address or ""
    broken = tmp_path / "broken.symbi"
    broken.write_text('agent a {\n    capabilities = ["x"]\n    policy p { permit: x }\n}\n')
    refused = await run(address, "create", str(broken))
    assert refused.returncode == 1
    assert "broken.symbi:3:16" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing = await run(address, "create", str(tmp_path / "nope.symbi"))
    assert missing.returncode == 2
    unknown = await run(address, "get", "agent-nobody")
    assert unknown.returncode == 1
    assert "no agent agent-nobody" in unknown.stderr
    bad_state = await run(address, "list", "--state", "sleeping")
    assert bad_state.returncode == 2
    unreachable = await run("127.0.0.1:1", "list")
    assert unreachable.returncode == 3
