"""The AuditService gRPC servicer: thin, proto → domain (on reader threads) → proto.

Reads never wait for ingest: they run on :class:`~symbi_audit.log_threads.LogThreads`'
reader pool against WAL snapshots. Operations that sign a checkpoint (a fresh
``GetCheckpoint``, ``Export``) go through the writer thread, in order with appends.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from symbi.audit.v1 import audit_pb2, audit_pb2_grpc
from symbi_audit import convert
from symbi_audit.checkpoint import SignedCheckpoint
from symbi_audit.events import IngestCounts
from symbi_audit.export import ExportSummary, export_lines
from symbi_audit.log import AuditLog
from symbi_audit.log_threads import LogThreads, next_chunk
from symbi_audit.query import EventFilter, LogEntry, Page, encode_cursor
from symbi_audit.store import AuditStore
from symbi_common.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable

__all__ = ["AuditServicer"]

Context = grpc.aio.ServicerContext[Any, Any]

_EXPORT_CHUNK_BYTES = 256 * 1024
_FOLLOW_WAIT_S = 30.0
_STREAM_PAGE = 500
_MAX_LAST = 10_000  # the newest N are held in memory to be sent oldest first


def _event_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidArgument(
            f"event_id {text!r} is not a UUID", details={"field": "event_id"}
        ) from None


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """Serves one replica's log; every call answers UNAVAILABLE until :meth:`attach`."""

    def __init__(self, archive_dir: Path) -> None:
        self._archive_dir = archive_dir
        self._archiving = asyncio.Lock()
        self._threads: LogThreads | None = None
        self._counts: Callable[[], IngestCounts] = IngestCounts
        self._consumer = ""

    def attach(
        self, threads: LogThreads, counts: Callable[[], IngestCounts], consumer: str
    ) -> None:
        """Start serving ``threads``' log (called once the log is open)."""
        self._threads = threads
        self._counts = counts
        self._consumer = consumer

    @property
    def threads(self) -> LogThreads:
        if self._threads is None:
            raise Unavailable("the audit log is still opening", reason="NOT_STARTED")
        return self._threads

    @property
    def log(self) -> AuditLog:
        return self.threads.log

    @property
    def store(self) -> AuditStore:
        return self.threads.log.store

    # ------------------------------------------------------------------ queries

    async def Query(
        self, request: audit_pb2.QueryRequest, context: Context
    ) -> audit_pb2.QueryResponse:
        where = convert.filter_from_request(request)
        page: Page = await self.threads.read(
            self.store.query,
            where,
            cursor=request.page.page_token or None,
            limit=convert.page_size(request.page.page_size),
            descending=request.descending,
        )
        response = audit_pb2.QueryResponse(
            entries=[convert.entry_to_proto(e) for e in page.entries]
        )
        response.page.next_page_token = page.next_cursor or ""
        return response

    async def QueryStream(
        self, request: audit_pb2.QueryRequest, context: Context
    ) -> AsyncIterator[audit_pb2.LogEntry]:
        where = convert.filter_from_request(request)
        if request.follow and request.descending:
            raise InvalidArgument("follow streams oldest first; do not set descending")
        if request.last > _MAX_LAST:
            raise InvalidArgument(
                f"last is {request.last}; at most {_MAX_LAST} (page through more with Query)",
                details={"field": "last"},
            )
        limit = min(request.page.page_size or _STREAM_PAGE, _STREAM_PAGE)
        cursor = request.page.page_token or None
        if request.last:
            # The newest `last` matches, oldest first, then on from the newest of them.
            size = self.threads.size
            newest = await self._newest(where, request.last)
            for entry in newest:
                yield convert.entry_to_proto(entry)
            scanned = max(newest[-1].index if newest else -1, size - 1)
            cursor = encode_cursor(scanned, False) if scanned >= 0 else None
            if not request.follow:
                return
        while True:
            size = self.threads.size
            page: Page = await self.threads.read(
                self.store.query, where, cursor=cursor, limit=limit, descending=request.descending
            )
            for entry in page.entries:
                yield convert.entry_to_proto(entry)
            if page.next_cursor is not None:
                cursor = page.next_cursor
                continue
            if not request.follow:
                return
            # Everything below `size` was scanned; continue after it (or after the last
            # entry sent, if the snapshot already held newer ones).
            last = page.entries[-1].index if page.entries else -1
            scanned = max(last, size - 1)
            if scanned >= 0:
                cursor = encode_cursor(scanned, False)
            await self.threads.wait_for_growth(scanned + 1, _FOLLOW_WAIT_S)

    async def _newest(self, where: EventFilter, count: int) -> list[LogEntry]:
        entries: list[LogEntry] = []
        cursor: str | None = None
        while len(entries) < count:
            page: Page = await self.threads.read(
                self.store.query,
                where,
                cursor=cursor,
                limit=min(count - len(entries), _STREAM_PAGE),
                descending=True,
            )
            entries.extend(page.entries)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        entries.reverse()
        return entries

    async def GetEvent(
        self, request: audit_pb2.GetEventRequest, context: Context
    ) -> audit_pb2.LogEntry:
        key = request.WhichOneof("key")
        if key == "event_id":
            entry = await self.threads.read(self.store.get_by_id, _event_id(request.event_id))
        elif key == "index":
            entry = await self.threads.read(self.store.get, request.index)
        else:
            raise InvalidArgument("give event_id or index")
        return convert.entry_to_proto(entry)

    # ------------------------------------------------------------------ checkpoints and proofs

    async def _checkpoint_at(self, size: int) -> SignedCheckpoint | None:
        try:
            signed: SignedCheckpoint = await self.threads.read(self.store.checkpoint_at, size)
        except NotFound:
            return None
        return signed

    async def _latest(self) -> SignedCheckpoint:
        latest = await self.threads.read(self.store.latest_checkpoint)
        if latest is None:
            # The log has never signed one (it is empty or brand new): sign one now.
            latest = await self.threads.write(self.log.checkpoint)
        return latest

    async def GetCheckpoint(
        self, request: audit_pb2.GetCheckpointRequest, context: Context
    ) -> audit_pb2.Checkpoint:
        if request.fresh and request.tree_size:
            raise InvalidArgument("give tree_size or fresh, not both")
        if request.fresh:
            signed = await self.threads.write(self.log.checkpoint)
        elif request.tree_size:
            signed = await self.threads.read(self.store.checkpoint_at, request.tree_size)
        else:
            signed = await self._latest()
        return convert.checkpoint_to_proto(signed, self.log.signer.verifier)

    async def _tree_size(self, requested: int) -> int:
        return requested if requested else (await self._latest()).size

    async def GetInclusionProof(
        self, request: audit_pb2.GetInclusionProofRequest, context: Context
    ) -> audit_pb2.InclusionProof:
        leaf = request.WhichOneof("leaf")
        if leaf == "event_id":
            found = await self.threads.read(self.store.index_of, _event_id(request.event_id))
            if found is None:
                raise NotFound(f"no audit event with id {request.event_id}")
            index = found
        elif leaf == "index":
            index = request.index
        else:
            raise InvalidArgument("give event_id or index")
        size = await self._tree_size(request.tree_size)
        if index >= size and not request.tree_size:
            raise FailedPrecondition(
                f"entry {index} is not yet covered by a checkpoint (latest size {size}); "
                "ask with tree_size, or after the next checkpoint",
                reason="NOT_YET_CHECKPOINTED",
            )
        proof = await self.threads.read(self.store.inclusion_proof, index, size)
        root = await self.threads.read(self.store.root_at, size)
        return convert.inclusion_to_proto(proof, root, await self._checkpoint_at(size))

    async def GetConsistencyProof(
        self, request: audit_pb2.GetConsistencyProofRequest, context: Context
    ) -> audit_pb2.ConsistencyProof:
        new_size = await self._tree_size(request.new_size)
        proof = await self.threads.read(self.store.consistency_proof, request.old_size, new_size)
        old_root = await self.threads.read(self.store.root_at, request.old_size)
        new_root = await self.threads.read(self.store.root_at, new_size)
        return convert.consistency_to_proto(
            proof,
            old_root,
            new_root,
            await self._checkpoint_at(request.old_size),
            await self._checkpoint_at(new_size),
        )

    # ------------------------------------------------------------------ verification, export

    async def Verify(
        self, request: audit_pb2.VerifyRequest, context: Context
    ) -> audit_pb2.VerifyResponse:
        start = request.from_index or self.store.pruned_before
        end = request.to_index or self.threads.size
        if not start <= end <= self.threads.size:
            raise InvalidArgument(
                f"range {start}..{end} is outside the log {self.store.pruned_before}.."
                f"{self.threads.size}"
            )
        check = await self.threads.read(self.log.verify, start, end)
        return convert.check_to_proto(check)

    async def _export_range(self, request: audit_pb2.ExportRequest) -> tuple[int, SignedCheckpoint]:
        """Start index and closing checkpoint of an export (see ExportRequest)."""
        since = convert.moment(request.since_ms, "since_ms")
        until = convert.moment(request.until_ms, "until_ms")
        if request.HasField("start_index"):
            if since or until:
                raise InvalidArgument("give a time window or start_index, not both")
            return request.start_index, await self.threads.write(self.log.checkpoint)
        if since is None and until is None:
            return self.store.pruned_before, await self.threads.write(self.log.checkpoint)
        if since and until and until < since:
            raise InvalidArgument("until_ms is before since_ms")
        found = await self.threads.read(self.store.index_range, since, until)
        if found is None:
            raise NotFound("no stored audit events are stamped inside the window")
        first, end = found
        covering = await self.threads.read(self.store.checkpoint_covering, end)
        if covering is None:
            covering = await self.threads.write(self.log.checkpoint)
        return max(first, self.store.pruned_before), covering

    async def Export(
        self, request: audit_pb2.ExportRequest, context: Context
    ) -> AsyncIterator[audit_pb2.ExportChunk]:
        start, head = await self._export_range(request)
        summary: list[ExportSummary] = []
        lines = await self.threads.read(
            export_lines,
            self.store,
            log_key=self.log.signer.verifier,
            start=start,
            checkpoint=head,
            summary=summary,
        )
        info = convert.export_info_to_proto(summary[0], self.log.signer.verifier)
        first = True
        while True:
            data = await self.threads.read(next_chunk, lines, _EXPORT_CHUNK_BYTES)
            if not data:
                return
            chunk = audit_pb2.ExportChunk(data=data)
            if first:
                chunk.info.CopyFrom(info)
                first = False
            yield chunk

    async def Report(
        self, request: audit_pb2.ReportRequest, context: Context
    ) -> audit_pb2.ReportResponse:
        since = convert.moment(request.since_ms, "since_ms") or datetime(1970, 1, 1, tzinfo=UTC)
        until = convert.moment(request.until_ms, "until_ms") or datetime.now(UTC)
        if until < since:
            raise InvalidArgument("until_ms is before since_ms")
        convert.report_format(request.format)
        report = await self.threads.read(self.log.report, since, until)
        content_type, body = convert.report_body(report, request.format)
        return audit_pb2.ReportResponse(content_type=content_type, body=body)

    async def GetStatus(
        self, request: audit_pb2.GetStatusRequest, context: Context
    ) -> audit_pb2.LogStatus:
        size, root = self.store.tree_head()
        latest = await self.threads.read(self.store.latest_checkpoint)
        counts = self._counts()
        status = audit_pb2.LogStatus(
            origin=self.store.origin,
            size=size,
            root_hash=root,
            archived_before=self.store.pruned_before,
            log_key=str(self.log.signer.verifier),
        )
        if latest is not None:
            status.latest_checkpoint.CopyFrom(
                convert.checkpoint_to_proto(latest, self.log.signer.verifier)
            )
        status.ingest.CopyFrom(
            audit_pb2.IngestStats(
                events=counts.events,
                duplicates=counts.duplicates,
                unverified=counts.unverified,
                malformed=counts.malformed,
                batches=counts.batches,
                consumer=self._consumer,
            )
        )
        return status

    async def Archive(
        self, request: audit_pb2.ArchiveRequest, context: Context
    ) -> audit_pb2.ArchiveResponse:
        async with self._archiving:
            if request.fresh_checkpoint:
                await self.threads.write(self.log.checkpoint)
            # A reader thread: exporting and verifying a segment takes a while and must not
            # hold up ingest; the final prune takes the store's write lock on its own.
            result = await self.threads.read(self.log.archive, self._archive_dir)
        if result is None:
            return audit_pb2.ArchiveResponse(archived=False)
        return audit_pb2.ArchiveResponse(
            archived=True,
            path=str(result.path),
            start=result.start,
            end=result.end,
            removed=result.removed,
        )
