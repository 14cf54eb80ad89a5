"""Pure converters between the audit domain and ``symbi.audit.v1`` messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from symbi.audit.v1 import audit_pb2
from symbi_audit.checkpoint import SignedCheckpoint
from symbi_audit.export import ExportSummary
from symbi_audit.ingest import PublisherStatus
from symbi_audit.log import LogCheck
from symbi_audit.note import NoteVerifier
from symbi_audit.proof import ConsistencyProof, InclusionProof
from symbi_audit.query import MAX_PAGE_SIZE, EventFilter, LogEntry
from symbi_audit.report import ComplianceReport
from symbi_common.auditing import to_proto
from symbi_common.errors import InvalidArgument

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "check_to_proto",
    "checkpoint_to_proto",
    "consistency_to_proto",
    "entry_to_proto",
    "export_info_to_proto",
    "filter_from_request",
    "inclusion_to_proto",
    "moment",
    "page_size",
    "report_body",
    "report_format",
]

DEFAULT_PAGE_SIZE = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Far enough to cover any real timestamp, near enough for datetime arithmetic.
_MAX_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z

_REPORT_FORMATS = {
    "json": "application/json",
    "markdown": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


def moment(ms: int, field: str) -> datetime | None:
    """Milliseconds since the epoch as a UTC datetime; 0 means unset (``None``)."""
    if ms == 0:
        return None
    if not 0 < ms <= _MAX_MS:
        raise InvalidArgument(
            f"{field} {ms} is not a time in milliseconds since 1970 (1..{_MAX_MS})",
            details={"field": field},
        )
    return _EPOCH + timedelta(milliseconds=ms)


def page_size(requested: int) -> int:
    """The page size to use: the server default for 0, capped at :data:`MAX_PAGE_SIZE`."""
    return DEFAULT_PAGE_SIZE if requested == 0 else min(requested, MAX_PAGE_SIZE)


def filter_from_request(request: audit_pb2.QueryRequest) -> EventFilter:
    """The domain filter of a query (InvalidArgument names the bad field)."""
    types = tuple(t for t in dict.fromkeys([request.event_type, *request.event_types]) if t)
    status: PublisherStatus | None = None
    if request.publisher_status:
        try:
            status = PublisherStatus(request.publisher_status)
        except ValueError:
            raise InvalidArgument(
                f"publisher_status {request.publisher_status} is not a known status",
                details={"field": "publisher_status"},
            ) from None
    return EventFilter(
        agent_id=request.agent_id or None,
        actor=request.actor or None,
        event_types=types,
        since=moment(request.since_ms, "since_ms"),
        until=moment(request.until_ms, "until_ms"),
        text=request.text or None,
        compliance_tag=request.compliance_tag or None,
        publisher_status=status,
    )


def entry_to_proto(entry: LogEntry) -> audit_pb2.LogEntry:
    event = entry.event
    message = audit_pb2.LogEntry(
        index=entry.index,
        event=to_proto(event),
        leaf_hash=entry.leaf_hash,
        chain_hash=entry.chain_hash,
        publisher_signature=event.publisher_signature,
        publisher_key_id=event.publisher_key_id,
        canonical_event=event.canonical_bytes,
    )
    if entry.ingest is not None:
        message.publisher_status = int(entry.ingest.status)  # type: ignore[assignment]
        message.sender = entry.ingest.sender
        message.publisher = entry.ingest.publisher
        message.appended_at_ms = entry.ingest.appended_us // 1000
    return message


def checkpoint_to_proto(signed: SignedCheckpoint, log_key: NoteVerifier) -> audit_pb2.Checkpoint:
    return audit_pb2.Checkpoint(
        origin=signed.checkpoint.origin,
        tree_size=signed.size,
        root_hash=signed.root_hash,
        signed_note=signed.note,
        log_key=str(log_key),
    )


def inclusion_to_proto(
    proof: InclusionProof, root: bytes, checkpoint: SignedCheckpoint | None
) -> audit_pb2.InclusionProof:
    return audit_pb2.InclusionProof(
        index=proof.index,
        tree_size=proof.tree_size,
        leaf_hash=proof.leaf_hash,
        hashes=list(proof.hashes),
        root_hash=root,
        checkpoint_note=checkpoint.note if checkpoint else "",
    )


def consistency_to_proto(
    proof: ConsistencyProof,
    old_root: bytes,
    new_root: bytes,
    old_checkpoint: SignedCheckpoint | None,
    new_checkpoint: SignedCheckpoint | None,
) -> audit_pb2.ConsistencyProof:
    return audit_pb2.ConsistencyProof(
        old_size=proof.old_size,
        new_size=proof.new_size,
        hashes=list(proof.hashes),
        old_root=old_root,
        new_root=new_root,
        old_checkpoint_note=old_checkpoint.note if old_checkpoint else "",
        new_checkpoint_note=new_checkpoint.note if new_checkpoint else "",
    )


def check_to_proto(check: LogCheck) -> audit_pb2.VerifyResponse:
    entries = check.entries
    bad = entries.first_bad_index
    return audit_pb2.VerifyResponse(
        ok=check.ok,
        checked=(bad if bad is not None else entries.end) - entries.start,
        first_bad_entry="" if bad is None else str(bad),
        problem=entries.problem,
        from_index=entries.start,
        to_index=entries.end,
        checkpoints_checked=check.checkpoints_checked,
    )


def export_info_to_proto(summary: ExportSummary, log_key: NoteVerifier) -> audit_pb2.ExportInfo:
    return audit_pb2.ExportInfo(
        origin=summary.origin,
        start=summary.start,
        end=summary.end,
        checkpoints=summary.checkpoints,
        log_key=str(log_key),
    )


def report_format(name: str) -> str:
    """The normalised report format (``json`` when empty); InvalidArgument if unknown."""
    normalised = (name or "json").strip().lower()
    if normalised == "md":
        normalised = "markdown"
    if normalised not in _REPORT_FORMATS:
        raise InvalidArgument(
            f"report format {name!r} is not one of json, markdown, html",
            details={"field": "format"},
        )
    return normalised


def report_body(report: ComplianceReport, report_format_name: str) -> tuple[str, bytes]:
    """The content type and body of a report in ``json`` (default), ``markdown`` or ``html``."""
    name = report_format(report_format_name)
    if name == "json":
        text = json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
    elif name == "html":
        text = report.to_html()
    else:
        text = report.to_markdown()
    return _REPORT_FORMATS[name], text.encode("utf-8")
