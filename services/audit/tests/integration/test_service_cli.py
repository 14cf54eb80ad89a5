"""``symbi audit`` against a running service: tail (as a process) follows new events, export
writes a file the offline verifier passes, fetched proofs check with ``proof``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from symbi_audit.event import AuditEvent
from symbi_cli.commands.audit import app
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

from .conftest import PUBLISHER, Publisher, StartAudit

SYMBI = str(Path(sys.executable).with_name("symbi"))


async def _symbi(*args: str) -> tuple[int, str, str]:
    """``symbi audit ARGS`` in this process (a thread: the command runs its own event loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
    return result.exit_code, result.stdout, result.stderr


async def test_tail_export_and_proofs_from_the_command_line(
    start_audit: StartAudit, publisher: Publisher, services: ServiceCluster, tmp_path: Path
) -> None:
    audit = await start_audit()
    address = audit.process.grpc_address
    assert address is not None
    await publisher.reaches(audit.principal)
    events = [
        publisher.sign(AuditEvent.create(event_type="tool.call", actor=PUBLISHER, details={"i": i}))
        for i in range(8)
    ]
    for event in events[:5]:
        await publisher.publish(event)
    await eventually(lambda: _size_at_least(audit, 5), timeout=20)

    # tail: the newest 3, then follows until 6 lines were printed.
    tail = await asyncio.create_subprocess_exec(
        SYMBI,
        "audit",
        "tail",
        "--address",
        address,
        "--last",
        "3",
        "--count",
        "6",
        "--type",
        "tool.call",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert tail.stdout is not None
    lines = [await asyncio.wait_for(tail.stdout.readline(), 30) for _ in range(3)]
    assert [json.loads(line)["event_id"] for line in lines] == [
        str(e.event_id) for e in events[2:5]
    ]
    for event in events[5:8]:
        await publisher.publish(event)
    rest, err = await asyncio.wait_for(tail.communicate(), 30)
    assert tail.returncode == 0, err.decode()
    followed = [json.loads(line)["event_id"] for line in rest.decode().splitlines()]
    assert followed == [str(e.event_id) for e in events[5:8]]

    # export, verified against the key file the service wrote (pinned out of band).
    key_file = services.base_dir / "audit-a" / "audit" / "log.pub"
    export = tmp_path / "audit-export.jsonl"
    code, out, err = await _symbi(
        "export", str(export), "--address", address, "--public-key", str(key_file)
    )
    assert code == 0, out + err
    assert "verified" in out
    code, out, err = await _symbi("verify", str(export), "--public-key", str(key_file))
    assert code == 0, out + err
    lines_in = export.read_text().splitlines()
    ids = [json.loads(line)["event"]["event_id"] for line in lines_in if '"type":"entry"' in line]
    assert {str(e.event_id) for e in events} <= set(ids)
    # The same export with one entry removed fails offline, naming the entry.
    tampered = tmp_path / "tampered.jsonl"
    entry_lines = [i for i, line in enumerate(lines_in) if '"type":"entry"' in line]
    del lines_in[entry_lines[2]]
    tampered.write_text("\n".join(lines_in) + "\n")
    code, out, err = await _symbi("verify", str(tampered), "--public-key", str(key_file))
    assert code == 1
    assert "entry 2" in err

    # An inclusion proof fetched from the service checks offline against its checkpoint.
    checkpoint = tmp_path / "checkpoint.txt"
    code, proof, err = await _symbi(
        "inclusion-proof",
        "--event-id",
        str(events[6].event_id),
        "--checkpoint-out",
        str(checkpoint),
        "--address",
        address,
    )
    assert code == 0, err
    event_line = json.dumps(json.loads(events[6].canonical_bytes))
    code, out, err = await _symbi(
        "proof",
        "inclusion",
        "--proof",
        proof,
        "--event",
        event_line,
        "--checkpoint",
        str(checkpoint),
        "--public-key",
        str(key_file),
    )
    assert code == 0, out + err
    assert "verified" in out

    code, out, err = await _symbi("status", "--address", address, "--json")
    assert code == 0, err
    assert int(json.loads(out)["size"]) >= 8
    code, out, err = await _symbi("report", "--address", address, "--format", "markdown")
    assert code == 0, err
    assert out.startswith("# Audit compliance report")


async def _size_at_least(audit: object, n: int) -> bool:
    from .conftest import AuditProcess

    assert isinstance(audit, AuditProcess)
    return await audit.size() >= n
