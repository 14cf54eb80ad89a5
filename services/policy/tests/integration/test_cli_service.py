"""`symbi policy push` and `symbi policy list` as real processes against a running service."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from symbi.policy.v1 import policy_pb2

from .conftest import ENTITIES, Replica, question

FILES = {
    "base.cedar": """\
@id("trusted-publish")
permit(principal is Symbi::Agent, action == Symbi::Action::"publish", resource)
when { principal has trust && principal.trust == "trusted" };
""",
    "agents/reader.cedar": """\
permit(principal == Symbi::Agent::"b", action == Symbi::Action::"subscribe", resource);
""",
}


async def symbi(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", "from symbi_cli.main import app; app()", "policy", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


async def test_push_then_list(replica: Replica, tmp_path: Path) -> None:
    address = replica.process.grpc_address
    assert address is not None
    policies = write_tree(tmp_path / "policies", FILES)
    entities = tmp_path / "entities.json"
    entities.write_text(json.dumps(ENTITIES))

    pushed = await symbi("push", str(policies), "--entities", str(entities), "--address", address)
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed base" in pushed.stdout
    assert "pushed agents/reader" in pushed.stdout
    assert "2 documents pushed" in pushed.stdout

    # In force on the service right away.
    allowed = await replica.evaluate(question("a", "publish", ("Topic", "t")))
    assert allowed.decision == policy_pb2.DECISION_ALLOW
    reader = await replica.evaluate(question("b", "subscribe", ("Topic", "t")))
    assert list(reader.policies) == ["agents/reader#0"]

    listed = await symbi("list", "--address", address, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["agents/reader", "base"]
    assert rows[1]["source"] == FILES["base.cedar"]
    assert all(r["updated_by"].startswith("grpc:") for r in rows)
    table = await symbi("list", "--address", address)
    assert table.returncode == 0, table.stderr
    assert "2 documents; policy set version" in table.stdout


async def test_push_refuses_invalid_files_and_reports_refusals(
    replica: Replica, tmp_path: Path
) -> None:
    address = replica.process.grpc_address
    assert address is not None
    bad = write_tree(
        tmp_path / "bad",
        {**FILES, "broken.cedar": "permit(principal, action, resource) when { 1 + };"},
    )
    refused = await symbi("push", str(bad), "--address", address)
    assert refused.returncode == 1
    assert "broken.cedar:1:48" in refused.stderr
    # nothing was sent
    listed = await symbi("list", "--address", address, "--json")
    assert listed.stdout.strip() == ""

    # The service refuses an @id another stored document holds: one line, exit 1.
    first = write_tree(tmp_path / "first", {"one.cedar": FILES["base.cedar"]})
    assert (await symbi("push", str(first), "--address", address)).returncode == 0
    clash = write_tree(tmp_path / "clash", {"two.cedar": FILES["base.cedar"]})
    result = await symbi("push", str(clash), "--address", address)
    assert result.returncode == 1
    assert "already used in document 'one'" in result.stderr

    unreachable = await symbi("list", "--address", "127.0.0.1:1")
    assert unreachable.returncode == 3
    assert "error: list:" in unreachable.stderr
