"""The gRPC API of a running audit service: query filters and pagination, streams and
follow, events, checkpoints and proofs (verified client-side), exports of a time window,
reports."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from symbi.audit.v1 import audit_pb2
from symbi_audit.checkpoint import SignedCheckpoint
from symbi_audit.event import AuditEvent
from symbi_audit.merkle import leaf_hash
from symbi_audit.note import NoteVerifier
from symbi_audit.proof import ConsistencyProof, InclusionProof
from symbi_audit.verify import verify_export_file
from symbi_common.errors import FailedPrecondition, InvalidArgument, NotFound
from symbi_common.grpc import error_from_rpc
from symbi_testing import eventually

from .conftest import PUBLISHER, AuditProcess, Publisher, StartAudit

N = 40
TYPES = ("policy.decision", "tool.call", "sandbox.violation", "policy.changed")
BASE = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _event(i: int) -> AuditEvent:
    event_type = TYPES[i % len(TYPES)]
    details: dict[str, object] = {"n": i, "path": f"/data/file-{i}"}
    if event_type == "policy.decision":
        details["decision"] = "deny" if i % 8 == 0 else "allow"
    return AuditEvent.create(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"symbi-service-api/{i}"),
        timestamp=BASE + timedelta(seconds=i),
        event_type=event_type,
        actor=PUBLISHER,
        agent_id=f"agent-{i % 3}",
        details=details,
        compliance_tags=("GDPR",) if i % 2 else ("SOX",),
    )


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def _publish(audit: AuditProcess, publisher: Publisher, events: list[AuditEvent]) -> None:
    for event in events:  # one at a time: the log's order is the publishing order
        await publisher.publish(event)
    target = {str(e.event_id) for e in events}

    async def landed() -> bool:
        ids: set[str] = set()
        async for entry in audit.stub.QueryStream(audit_pb2.QueryRequest(), timeout=10):
            ids.add(entry.event.event_id)
        return target <= ids

    await eventually(landed, timeout=20, message="published events in the log")


async def _ids(audit: AuditProcess, **query: object) -> list[str]:
    page = await audit.stub.Query(
        audit_pb2.QueryRequest(page={"page_size": 1000}, **query),  # type: ignore[arg-type]
        timeout=5,
    )
    assert not page.page.next_page_token
    return [e.event.event_id for e in page.entries]


async def _error(call: object) -> Exception:
    assert asyncio.iscoroutine(call) or hasattr(call, "__await__")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return error_from_rpc(caught.value)


@pytest.fixture
def events() -> list[AuditEvent]:
    return [_event(i) for i in range(N)]


async def test_query_filters_and_pagination(
    start_audit: StartAudit, publisher: Publisher, events: list[AuditEvent]
) -> None:
    audit = await start_audit()
    await publisher.reaches(audit.principal)
    signed = [publisher.sign(e) for e in events]
    await _publish(audit, publisher, signed)

    def expect(keep: object) -> list[str]:
        assert callable(keep)
        return [str(e.event_id) for e in signed if keep(e)]

    everything = await _ids(audit, actor=PUBLISHER)
    assert everything == expect(lambda e: True)
    assert await _ids(audit, agent_id="agent-1") == expect(lambda e: e.agent_id == "agent-1")
    assert await _ids(audit, event_type="tool.call") == expect(
        lambda e: e.event_type == "tool.call"
    )
    assert await _ids(audit, event_types=["tool.call", "policy.changed"]) == expect(
        lambda e: e.event_type in ("tool.call", "policy.changed")
    )
    since, until = BASE + timedelta(seconds=10), BASE + timedelta(seconds=20)
    assert await _ids(audit, since_ms=_ms(since), until_ms=_ms(until)) == expect(
        lambda e: since <= e.timestamp < until
    )
    assert await _ids(audit, text="FILE-3") == expect(
        lambda e: f"file-{e.details['n']}".startswith("file-3")
    )
    assert await _ids(audit, compliance_tag="SOX", agent_id="agent-2") == expect(
        lambda e: "SOX" in e.compliance_tags and e.agent_id == "agent-2"
    )
    assert await _ids(audit, actor=PUBLISHER, descending=True) == everything[::-1]
    assert await _ids(audit, agent_id="nobody") == []

    # Pagination in both directions: pages of 7 concatenate to the whole result.
    for descending in (False, True):
        collected: list[str] = []
        token = ""
        pages = 0
        while True:
            page = await audit.stub.Query(
                audit_pb2.QueryRequest(
                    actor=PUBLISHER,
                    descending=descending,
                    page={"page_size": 7, "page_token": token},
                ),
                timeout=5,
            )
            pages += 1
            collected += [e.event.event_id for e in page.entries]
            token = page.page.next_page_token
            if not token:
                break
        assert collected == (everything[::-1] if descending else everything)
        assert pages == -(-N // 7)

    # A streamed query is the same sequence.
    streamed = [
        e.event.event_id
        async for e in audit.stub.QueryStream(
            audit_pb2.QueryRequest(actor=PUBLISHER, page={"page_size": 3}), timeout=10
        )
    ]
    assert streamed == everything

    # Bad input is INVALID_ARGUMENT with a reason.
    bad_cursor = audit.stub.Query(audit_pb2.QueryRequest(page={"page_token": "garbage"}))
    assert isinstance(await _error(bad_cursor), InvalidArgument)
    first = await audit.stub.Query(audit_pb2.QueryRequest(page={"page_size": 2}), timeout=5)
    wrong_direction = audit.stub.Query(
        audit_pb2.QueryRequest(descending=True, page={"page_token": first.page.next_page_token})
    )
    assert isinstance(await _error(wrong_direction), InvalidArgument)
    backwards = audit.stub.Query(audit_pb2.QueryRequest(since_ms=2000, until_ms=1000))
    assert isinstance(await _error(backwards), InvalidArgument)

    # GetEvent by id and by index.
    entry = await audit.stub.GetEvent(audit_pb2.GetEventRequest(event_id=everything[5]), timeout=5)
    by_index = await audit.stub.GetEvent(audit_pb2.GetEventRequest(index=entry.index), timeout=5)
    assert by_index == entry
    assert entry.canonical_event == signed[5].canonical_bytes
    missing = audit.stub.GetEvent(audit_pb2.GetEventRequest(event_id=str(uuid.uuid4())))
    assert isinstance(await _error(missing), NotFound)


async def test_follow_streams_new_events(
    start_audit: StartAudit, publisher: Publisher, events: list[AuditEvent]
) -> None:
    audit = await start_audit()
    await publisher.reaches(audit.principal)
    await _publish(audit, publisher, [publisher.sign(e) for e in events[:10]])

    received: list[str] = []
    stream = audit.stub.QueryStream(audit_pb2.QueryRequest(actor=PUBLISHER, last=3, follow=True))

    async def follow(stream: AsyncIterator[audit_pb2.LogEntry]) -> None:
        async for entry in stream:
            received.append(entry.event.event_id)
            if len(received) == 6:
                return

    reader = asyncio.create_task(follow(stream))
    await eventually(lambda: len(received) == 3, timeout=10, message="the last 3 events")
    assert received == [str(e.event_id) for e in events[7:10]]
    for event in events[10:13]:
        await publisher.publish(publisher.sign(event))
    await asyncio.wait_for(reader, timeout=20)
    stream.cancel()
    assert received == [str(e.event_id) for e in events[7:13]]


async def test_proofs_over_grpc_verify_against_signed_checkpoints(
    start_audit: StartAudit,
    publisher: Publisher,
    events: list[AuditEvent],
    tmp_path: Path,
) -> None:
    audit = await start_audit()
    await publisher.reaches(audit.principal)
    signed = [publisher.sign(e) for e in events]
    await _publish(audit, publisher, signed[:20])
    first = await audit.stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(fresh=True), timeout=5)
    await _publish(audit, publisher, signed[20:])
    second = await audit.stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(fresh=True), timeout=5)
    assert first.tree_size < second.tree_size

    # Trust comes from the key file in the service's data dir, checked against the API's.
    status = await audit.stub.GetStatus(audit_pb2.GetStatusRequest(), timeout=5)
    key = NoteVerifier.parse(status.log_key)
    assert second.log_key == status.log_key
    old = SignedCheckpoint.open(first.signed_note, [key])
    new = SignedCheckpoint.open(second.signed_note, [key])
    assert (new.size, new.root_hash) == (second.tree_size, second.root_hash)

    for event in (signed[0], signed[13], signed[39]):
        proof = await audit.stub.GetInclusionProof(
            audit_pb2.GetInclusionProofRequest(event_id=str(event.event_id)), timeout=5
        )
        assert proof.tree_size == new.size  # the latest checkpoint by default
        assert proof.checkpoint_note == second.signed_note
        assert proof.leaf_hash == leaf_hash(event.canonical_bytes)
        InclusionProof(proof.index, proof.tree_size, proof.leaf_hash, tuple(proof.hashes)).verify(
            new.root_hash
        )
    at_old = await audit.stub.GetInclusionProof(
        audit_pb2.GetInclusionProofRequest(event_id=str(signed[3].event_id), tree_size=old.size),
        timeout=5,
    )
    InclusionProof(at_old.index, old.size, at_old.leaf_hash, tuple(at_old.hashes)).verify(
        old.root_hash
    )

    consistency = await audit.stub.GetConsistencyProof(
        audit_pb2.GetConsistencyProofRequest(old_size=old.size), timeout=5
    )
    assert consistency.new_size == new.size
    assert consistency.old_checkpoint_note == first.signed_note
    ConsistencyProof(old.size, new.size, tuple(consistency.hashes)).verify(
        old.root_hash, new.root_hash
    )

    # A proof for an entry outside the tree asked for is refused, not made up.
    await publisher.publish(publisher.sign(AuditEvent.create(event_type="x.y", actor=PUBLISHER)))
    await eventually(lambda: _size_above(audit, new.size), timeout=20)
    beyond = audit.stub.GetInclusionProof(
        audit_pb2.GetInclusionProofRequest(index=new.size, tree_size=new.size)
    )
    assert isinstance(await _error(beyond), InvalidArgument)
    check = await audit.stub.Verify(audit_pb2.VerifyRequest(), timeout=30)
    assert check.ok, check.problem
    assert check.checkpoints_checked >= 2

    # Export of a time window: the smallest range holding it, verified offline.
    since, until = BASE + timedelta(seconds=10), BASE + timedelta(seconds=25)
    export = tmp_path / "window.jsonl"
    info = None
    with export.open("wb") as out:
        async for chunk in audit.stub.Export(
            audit_pb2.ExportRequest(since_ms=_ms(since), until_ms=_ms(until)), timeout=30
        ):
            if chunk.HasField("info"):
                info = chunk.info
            out.write(chunk.data)
    assert info is not None
    result = verify_export_file(export, [key])
    assert result.ok, result.problem
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    exported = [line["event"]["event_id"] for line in lines if line["type"] == "entry"]
    window = [str(e.event_id) for e in signed if since <= e.timestamp < until]
    assert exported[0] == window[0]
    assert set(window) <= set(exported)
    assert info.start == lines[0]["start"]
    assert info.end == result.end
    empty = audit.stub.Export(audit_pb2.ExportRequest(since_ms=1000, until_ms=2000))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in empty:
            pass
    assert isinstance(error_from_rpc(caught.value), NotFound)


async def test_reports_in_three_formats(
    start_audit: StartAudit, publisher: Publisher, events: list[AuditEvent]
) -> None:
    audit = await start_audit()
    await publisher.reaches(audit.principal)
    await _publish(audit, publisher, [publisher.sign(e) for e in events])
    window = {"since_ms": _ms(BASE), "until_ms": _ms(BASE + timedelta(seconds=N))}
    as_json = await audit.stub.Report(audit_pb2.ReportRequest(**window), timeout=10)
    assert as_json.content_type == "application/json"
    report = json.loads(as_json.body)
    assert report["total"] == N
    assert report["by_type"] == {t: N // 4 for t in TYPES}
    assert report["denied"]["total"] == sum(1 for i in range(N) if i % 8 == 0)
    assert report["policy_changes"]["total"] == N // 4
    assert report["sandbox_violations"]["total"] == N // 4
    markdown = await audit.stub.Report(
        audit_pb2.ReportRequest(format="markdown", **window), timeout=10
    )
    assert markdown.body.decode().startswith("# Audit compliance report")
    html = await audit.stub.Report(audit_pb2.ReportRequest(format="html", **window), timeout=10)
    assert html.content_type.startswith("text/html")
    assert b"<h2>Denied actions</h2>" in html.body
    bad = audit.stub.Report(audit_pb2.ReportRequest(format="pdf"))
    assert isinstance(await _error(bad), InvalidArgument)


async def _size_above(audit: AuditProcess, size: int) -> bool:
    return await audit.size() > size


async def test_archive_keeps_proofs_and_later_exports_working(
    start_audit: StartAudit, publisher: Publisher, events: list[AuditEvent], tmp_path: Path
) -> None:
    audit = await start_audit()
    await publisher.reaches(audit.principal)
    signed = [publisher.sign(e) for e in events]
    await _publish(audit, publisher, signed[:25])
    status = await audit.stub.GetStatus(audit_pb2.GetStatusRequest(), timeout=5)
    key = NoteVerifier.parse(status.log_key)
    done = await audit.stub.Archive(audit_pb2.ArchiveRequest(fresh_checkpoint=True), timeout=30)
    assert done.archived
    assert (done.start, done.end, done.removed) == (0, status.size, status.size)
    assert verify_export_file(Path(done.path), [key]).ok
    again = await audit.stub.Archive(audit_pb2.ArchiveRequest(), timeout=30)
    assert not again.archived

    await _publish(audit, publisher, signed[25:])
    archived_id = str(signed[3].event_id)
    # The archived event's body is gone from the store, its proof is still served.
    gone = audit.stub.GetEvent(audit_pb2.GetEventRequest(event_id=archived_id))
    assert isinstance(await _error(gone), FailedPrecondition)
    head = await audit.stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(fresh=True), timeout=5)
    proof = await audit.stub.GetInclusionProof(
        audit_pb2.GetInclusionProofRequest(event_id=archived_id), timeout=5
    )
    assert proof.leaf_hash == leaf_hash(signed[3].canonical_bytes)
    InclusionProof(proof.index, proof.tree_size, proof.leaf_hash, tuple(proof.hashes)).verify(
        SignedCheckpoint.open(head.signed_note, [key]).root_hash
    )
    assert archived_id not in await _ids(audit)
    # A later export starts at the archive boundary and still verifies.
    export = tmp_path / "after-archive.jsonl"
    with export.open("wb") as out:
        async for chunk in audit.stub.Export(audit_pb2.ExportRequest(), timeout=30):
            out.write(chunk.data)
    result = verify_export_file(export, [key])
    assert result.ok, result.problem
    assert result.start == done.end
