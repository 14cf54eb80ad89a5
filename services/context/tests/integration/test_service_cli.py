"""``symbi context`` against the running service: ingest files, store, recall, ask, forget."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from symbi_cli.commands.context import app
from symbi_testing.services import ServiceCluster

from .service import HASHING

runner = CliRunner()
A = "agent-cli000000001"


def test_cli_round_trip(services: ServiceCluster, tmp_path: Path) -> None:
    proc = services.start("context", instance="c", env=HASHING)
    asyncio.run(proc.wait_serving())
    address = ["--address", str(proc.grpc_address)]

    doc = tmp_path / "handbook.md"
    doc.write_text("# Handbook\n\n## Leave\n\nEmployees get 28 days of paid leave a year.\n")
    ingested = runner.invoke(app, ["ingest", str(doc), "--agent", A, *address])
    assert ingested.exit_code == 0, ingested.output
    assert "handbook.md" in ingested.output

    stored = runner.invoke(
        app, ["store", "--agent", A, "The team offsite is in Lisbon", "--tag", "travel", *address]
    )
    assert stored.exit_code == 0, stored.output
    memory_id = stored.output.strip()

    recalled = runner.invoke(app, ["recall", "--agent", A, "offsite Lisbon", "--json", *address])
    assert recalled.exit_code == 0, recalled.output
    assert json.loads(recalled.output)["items"][0]["item"]["id"] == memory_id

    answered = runner.invoke(app, ["ask", "--agent", A, "How many days of paid leave?", *address])
    assert answered.exit_code == 0, answered.output
    assert "28 days" in answered.output
    assert "handbook.md" in answered.output

    bad = runner.invoke(app, ["recall", "--agent", A, "x", "--filter", "{oops", *address])
    assert bad.exit_code == 1
    assert "MALFORMED_FILTER" in bad.output

    forgotten = runner.invoke(app, ["forget", "--agent", A, memory_id, "handbook.md", *address])
    assert forgotten.exit_code == 0, forgotten.output
    assert json.loads(forgotten.output) == {"memories": 1, "documents": 1, "working": 0}

    missing = runner.invoke(app, ["ask", "--agent", A, "x", "--address", "127.0.0.1:1"])
    assert missing.exit_code == 1
