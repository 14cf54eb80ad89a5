"""Events published by another principal over the secure bus land in the service's log,
with their publisher signature checked; bad ones are flagged, malformed ones refused."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

from nats.js import api as js_api

from symbi.audit.v1 import audit_pb2
from symbi.bus.v1 import events_pb2
from symbi_audit.checkpoint import SignedCheckpoint
from symbi_audit.event import AuditEvent
from symbi_audit.note import NoteVerifier
from symbi_common.bus import ConsumerSpec, Received
from symbi_testing import eventually

from .conftest import PUBLISHER, Publisher, StartAudit

VERIFIED = audit_pb2.PUBLISHER_STATUS_VERIFIED


async def test_published_events_land_verified_and_bad_ones_flagged(
    start_audit: StartAudit, publisher: Publisher
) -> None:
    audit = await start_audit()
    await publisher.reaches(audit.principal)

    recorded = [
        await publisher.bus.recorder.record(
            "tool.call", details={"tool": "fs.read", "n": i}, agent_id=f"agent-{i % 2}"
        )
        for i in range(5)
    ]
    unsigned = AuditEvent.create(event_type="tool.call", actor=PUBLISHER, details={"x": 1})
    signed = publisher.sign(
        AuditEvent.create(event_type="tool.call", actor=PUBLISHER, details={"x": 2})
    )
    # Changed after signing: the signature no longer covers the details.
    tampered = dataclasses.replace(signed, details_json='{"x":3}')
    foreign = dataclasses.replace(
        publisher.sign(AuditEvent.create(event_type="tool.call", actor=PUBLISHER)),
        publisher_key_id="no-such-key",
    )
    for event in (unsigned, tampered, foreign):
        await publisher.publish(event)
    # Not an audit event at all: refused, and the service raises an alarm about it.
    await publisher.bus.publish("platform", b"garbage", subject="symbi.audit.junk")

    wanted = {str(e.event_id) for e in [*recorded, unsigned, tampered, foreign]}

    async def landed() -> dict[str, audit_pb2.LogEntry]:
        page = await audit.stub.Query(
            audit_pb2.QueryRequest(actor=PUBLISHER, page={"page_size": 100}), timeout=5
        )
        return {e.event.event_id: e for e in page.entries}

    await eventually(lambda: _has(landed, wanted), timeout=20, message="events in the log")
    entries = await landed()
    for event in recorded:
        entry = entries[str(event.event_id)]
        assert entry.publisher_status == VERIFIED
        assert entry.publisher == PUBLISHER
        assert entry.sender == PUBLISHER
        assert entry.event.details_json == event.details_json
        assert entry.canonical_event == event.canonical_bytes
        assert entry.appended_at_ms > 0
    assert entries[str(unsigned.event_id)].publisher_status == (audit_pb2.PUBLISHER_STATUS_UNSIGNED)
    assert entries[str(tampered.event_id)].publisher_status == (
        audit_pb2.PUBLISHER_STATUS_BAD_SIGNATURE
    )
    assert entries[str(tampered.event_id)].event.details_json == '{"x":3}'
    assert entries[str(foreign.event_id)].publisher_status == (
        audit_pb2.PUBLISHER_STATUS_UNKNOWN_KEY
    )
    for flagged in (unsigned, tampered, foreign):
        assert entries[str(flagged.event_id)].sender == PUBLISHER

    # The flags are queryable, and the service recorded alarms (signed by itself) about them.
    bad = await audit.stub.Query(
        audit_pb2.QueryRequest(publisher_status=audit_pb2.PUBLISHER_STATUS_BAD_SIGNATURE),
        timeout=5,
    )
    assert [e.event.event_id for e in bad.entries] == [str(tampered.event_id)]

    async def alarms() -> list[audit_pb2.LogEntry]:
        page = await audit.stub.Query(
            audit_pb2.QueryRequest(event_types=["audit.unverified_event", "audit.malformed_event"]),
            timeout=5,
        )
        return list(page.entries)

    await eventually(lambda: _count(alarms, 4), timeout=20, message="4 alarms")
    found = await alarms()
    assert {e.event.actor for e in found} == {audit.principal}
    assert all(e.publisher_status == VERIFIED for e in found)
    kinds = sorted(e.event.event_type for e in found)
    assert kinds == ["audit.malformed_event"] + ["audit.unverified_event"] * 3

    status = await audit.stub.GetStatus(audit_pb2.GetStatusRequest(), timeout=5)
    assert status.ingest.malformed == 1
    assert status.ingest.unverified == 3
    assert status.ingest.consumer == "audit-log-a"
    assert status.log_key.startswith("symbi.audit/a+")


async def test_replays_and_resends_are_recorded_once(
    start_audit: StartAudit, publisher: Publisher
) -> None:
    audit = await start_audit()
    await publisher.reaches(audit.principal)
    event = publisher.sign(
        AuditEvent.create(event_type="policy.decision", actor=PUBLISHER, event_id=uuid.uuid4())
    )
    await publisher.publish(event)
    # The same event again in a new envelope (another message id): the log keeps one.
    await publisher.bus.publish(
        "platform",
        _proto(event),
        subject="symbi.audit.policy_decision",
        msg_id=f"{event.event_id}-again",
    )
    marker = publisher.sign(AuditEvent.create(event_type="test.marker", actor=PUBLISHER))
    await publisher.publish(marker)

    async def marker_in() -> bool:
        page = await audit.stub.Query(audit_pb2.QueryRequest(event_type="test.marker"), timeout=5)
        return len(page.entries) == 1

    await eventually(marker_in, timeout=20)
    page = await audit.stub.Query(audit_pb2.QueryRequest(event_type="policy.decision"), timeout=5)
    assert [e.event.event_id for e in page.entries] == [str(event.event_id)]
    status = await audit.stub.GetStatus(audit_pb2.GetStatusRequest(), timeout=5)
    assert status.ingest.duplicates == 1


def _proto(event: AuditEvent) -> object:
    from symbi_common.auditing import to_proto

    return to_proto(event)


async def _has(fetch: object, wanted: set[str]) -> bool:
    assert callable(fetch)
    return wanted <= set(await fetch())


async def _count(fetch: object, n: int) -> bool:
    assert callable(fetch)
    return len(await fetch()) >= n


async def test_checkpoints_are_announced_signed_on_the_bus(
    start_audit: StartAudit, publisher: Publisher
) -> None:
    audit = await start_audit()
    await publisher.reaches(audit.principal)
    for i in range(3):
        await publisher.bus.recorder.record("tool.call", details={"n": i})
    announced: list[tuple[str, events_pb2.CheckpointPublished]] = []

    async def collect(received: Received) -> None:
        announced.append((received.sender, received.parse(events_pb2.CheckpointPublished)))

    spec = ConsumerSpec.subscription(
        "SYMBI_EVENTS",
        ("symbi.checkpoint.>",),
        "audit-test-checkpoints",
        deliver_policy=js_api.DeliverPolicy.ALL,
    )
    watcher = asyncio.create_task(publisher.bus.consume(spec, collect))
    try:
        await eventually(
            lambda: any(m.tree_size >= 3 for _, m in announced),
            timeout=20,
            message="a checkpoint covering the 3 events",
        )
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    status = await audit.stub.GetStatus(audit_pb2.GetStatusRequest(), timeout=5)
    key = NoteVerifier.parse(status.log_key)
    sender, message = next((s, m) for s, m in announced if m.tree_size >= 3)
    assert sender == audit.principal
    assert message.origin == "symbi.audit/a"
    signed = SignedCheckpoint.open(message.signed_note, [key])
    assert (signed.size, signed.root_hash) == (message.tree_size, message.root_hash)
    sizes = [m.tree_size for _, m in announced]
    assert sizes == sorted(set(sizes)), "each size once, in order"
