"""kill -9 the audit service while 10,000 events are being published over the bus; after a
restart the log holds exactly those 10,000 events, and chain, tree and checkpoints verify
offline from an export."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nats.js import JetStreamContext

from symbi.audit.v1 import audit_pb2
from symbi_audit.event import AuditEvent
from symbi_audit.note import NoteVerifier
from symbi_audit.verify import verify_export_file
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

from .conftest import PUBLISHER, Publisher, StartAudit

TOTAL = 10_000
IN_FLIGHT = 64
HOLD_FROM = 7_000
_BASE = datetime(2026, 4, 1, tzinfo=UTC)


def _event(i: int) -> AuditEvent:
    return AuditEvent.create(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"symbi-service-crash/{i}"),
        timestamp=_BASE + timedelta(milliseconds=i),
        event_type="tool.call",
        actor=PUBLISHER,
        agent_id=f"agent-{i % 13}",
        details={"i": i, "tool": "fs.read"},
        compliance_tags=("SOX",),
    )


@pytest.mark.slow
async def test_kill_9_during_ingest_then_exactly_every_event_once(
    start_audit: StartAudit,
    publisher: Publisher,
    services: ServiceCluster,
    jetstream: JetStreamContext,
    tmp_path: Path,
) -> None:
    audit = await start_audit()
    await publisher.reaches(audit.principal)
    events = [publisher.sign(_event(i)) for i in range(TOTAL)]
    published = 0
    killed = asyncio.Event()

    async def publish_all() -> None:
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(i: int, event: AuditEvent) -> None:
            nonlocal published
            if i >= HOLD_FROM:
                # However fast publishing runs, the kill lands while it is in progress.
                await killed.wait()
            async with gate:
                await publisher.publish(event)
                published += 1

        async with asyncio.TaskGroup() as tg:
            for i, event in enumerate(events):
                tg.create_task(one(i, event))

    publishing = asyncio.create_task(publish_all())
    try:
        await eventually(lambda: _at_least(audit, 1000), timeout=60, message="1000 ingested")
        audit.process.kill()  # SIGKILL, mid-batch and mid-stream
        killed_at = published
        killed.set()
        await publishing
    finally:
        if not publishing.done():
            publishing.cancel()
    assert 1000 <= killed_at < TOTAL

    restarted = await start_audit()

    async def drained() -> bool:
        info = await jetstream.consumer_info("SYMBI_AUDIT", "audit-log-a")
        return (
            info.num_pending == 0 and info.num_ack_pending == 0 and await restarted.size() >= TOTAL
        )

    await eventually(drained, timeout=90, message="all 10,000 events ingested and acked")
    status = await restarted.stub.GetStatus(audit_pb2.GetStatusRequest(), timeout=5)
    assert status.size == TOTAL

    check = await restarted.stub.Verify(audit_pb2.VerifyRequest(), timeout=60)
    assert check.ok, check.problem
    assert check.checked == TOTAL

    export = tmp_path / "export.jsonl"
    with export.open("wb") as out:
        async for chunk in restarted.stub.Export(audit_pb2.ExportRequest(), timeout=60):
            out.write(chunk.data)
    # The verifier trusts the key file the service wrote in its data dir, not the export.
    key_file = services.base_dir / "audit-a" / "audit" / "log.pub"
    trusted = NoteVerifier.parse(key_file.read_text())
    result = verify_export_file(
        export,
        [trusted],
        publisher_keys={publisher.bus.keys.key_id: publisher.bus.keys.ed25519_public},
    )
    assert result.ok, result.problem
    assert result.entries_checked == TOTAL
    assert result.publisher_signatures_checked == TOTAL
    ids = [
        json.loads(line)["event"]["event_id"]
        for line in export.read_text().splitlines()
        if line.startswith('{"chain_hash"')
    ]
    assert len(ids) == TOTAL
    assert set(ids) == {str(e.event_id) for e in events}


async def _at_least(audit: object, n: int) -> bool:
    from .conftest import AuditProcess

    assert isinstance(audit, AuditProcess)
    return await audit.size() >= n
