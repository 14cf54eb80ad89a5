"""The append-only audit store: SQLite in WAL mode with ``synchronous=FULL``.

Why SQLite and not segment files is recorded in ``docs/adr/0030-audit-storage.md``. One
store file holds, in one transaction per batch:

- ``entries``: one row per event (index = rowid, event id, time, agent, actor, type, the
  canonical JSON and the chain hash), indexed by event id (unique), agent, actor, type and
  time;
- ``nodes``: the hash of every *complete* subtree of the RFC 6962 tree, keyed by
  ``position << 6 | level`` (leaves are level 0). Proofs read ``O(log n)`` of them; the tree
  is never loaded whole;
- ``checkpoints``: every signed checkpoint note, by tree size;
- ``archived_ids``: event id → index of entries removed by retention, so that a re-sent
  archived event is still recognised and never appended twice;
- ``ingest``: how each entry arrived (sender, publisher, signature status, append time; see
  :mod:`symbi_audit.ingest`), outside the hashed bytes;
- ``meta``: origin, size, chain head and the retention boundary.

:meth:`AuditStore.append_batch` returns only after the transaction's commit, which with
``synchronous=FULL`` has fsynced the write-ahead log: an index returned is durable. It is
idempotent by event id. The store is single-writer: opening takes an exclusive ``flock``
on ``<path>.lock`` (released by the kernel if the process dies), and all writes from this
process are serialised by a lock. Reads use one connection per thread and may run
concurrently with a write (WAL snapshot isolation).

Every method blocks on disk; the service calls them from worker threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self

from symbi_audit.chain import GENESIS, chain_hash
from symbi_audit.checkpoint import Checkpoint, SignedCheckpoint
from symbi_audit.event import AuditEvent, timestamp_micros
from symbi_audit.ingest import IngestRecord, PublisherStatus
from symbi_audit.merkle import (
    CompactRange,
    NodeId,
    consistency_proof,
    fold_tiles,
    inclusion_proof_ranges,
    leaf_hash,
    range_nodes,
    range_tiles,
    root_at,
)
from symbi_audit.proof import ConsistencyProof, InclusionProof
from symbi_audit.query import (
    MAX_PAGE_SIZE,
    EventFilter,
    LogEntry,
    Page,
    decode_cursor,
    encode_cursor,
)
from symbi_common.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)

__all__ = ["MAX_BATCH", "AuditStore", "RangeCheck"]

_log = logging.getLogger(__name__)

MAX_BATCH = 10_000
"""Most events one :meth:`AuditStore.append_batch` call accepts."""

_SCHEMA_VERSION = 1
_LEVEL_BITS = 6
_IN_CHUNK = 500  # ids per "IN (...)" lookup; far below SQLite's parameter limit
# Complete-subtree hashes never change once written, so upper levels are cached forever:
# from level 8 up there is one node per 256 leaves (~4k nodes per million entries).
_CACHE_MIN_LEVEL = 8
_CACHE_MAX_NODES = 1 << 18

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    event_id BLOB NOT NULL UNIQUE,
    ts_us INTEGER NOT NULL,
    agent_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    chain_hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_agent ON entries (agent_id);
CREATE INDEX IF NOT EXISTS entries_by_actor ON entries (actor);
CREATE INDEX IF NOT EXISTS entries_by_type ON entries (event_type);
CREATE INDEX IF NOT EXISTS entries_by_time ON entries (ts_us);
CREATE TABLE IF NOT EXISTS nodes (id INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    created_us INTEGER NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS archived_ids (
    event_id BLOB PRIMARY KEY,
    idx INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ingest (
    idx INTEGER PRIMARY KEY,
    status INTEGER NOT NULL,
    sender TEXT NOT NULL,
    publisher TEXT NOT NULL,
    appended_us INTEGER NOT NULL
);
"""


class _State(NamedTuple):
    size: int
    chain_head: bytes
    tree: CompactRange


def _node_key(node: NodeId) -> int:
    return (node.position << _LEVEL_BITS) | node.level


def _node_of(key: int) -> NodeId:
    return NodeId(key & ((1 << _LEVEL_BITS) - 1), key >> _LEVEL_BITS)


def _note_text(note: str) -> str:
    return note[: note.rfind("\n\n") + 1]


@dataclasses.dataclass(frozen=True, slots=True)
class RangeCheck:
    """Result of re-hashing stored entries: ``first_bad_index`` is ``None`` when all match."""

    start: int
    end: int
    first_bad_index: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        """Whether every entry, chain link and subtree hash in the range matched."""
        return self.first_bad_index is None and not self.problem


class AuditStore:
    """The durable, append-only log of audit events with its Merkle tree (see module doc).

    Open with :meth:`open`; use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: Path, origin: str, lock_fd: int, writer: sqlite3.Connection) -> None:
        self._path = path
        self._origin = origin
        self._lock_fd = lock_fd
        self._writer = writer
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._node_cache: dict[int, bytes] = {}
        self._closed = False
        # Replaced as a whole after each durable batch, so readers see a consistent triple.
        self._state = _State(0, GENESIS, CompactRange())
        self._pruned_before = 0

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, origin: str) -> AuditStore:
        """Open or create the store at ``path`` for the log named ``origin``."""
        db_path = Path(path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(f"{db_path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(lock_fd)
            raise FailedPrecondition(
                f"audit store {db_path} is open in another process; one writer at a time"
            ) from exc
        try:
            writer = _connect(db_path)
            store = cls(db_path, origin, lock_fd, writer)
            store._initialise()
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(lock_fd)
            raise
        return store

    def _initialise(self) -> None:
        conn = self._writer
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise Unavailable(f"SQLite refused WAL mode for {self._path} (got {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if not meta:
            with self._transaction():
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("schema", _SCHEMA_VERSION),
                        ("origin", self._origin),
                        ("size", 0),
                        ("chain_head", GENESIS),
                        ("pruned_before", 0),
                        ("pruned_chain", GENESIS),
                    ],
                )
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("schema") != _SCHEMA_VERSION:
            raise FailedPrecondition(
                f"audit store {self._path} has schema {meta.get('schema')!r}; this version "
                f"reads schema {_SCHEMA_VERSION}"
            )
        if meta.get("origin") != self._origin:
            raise FailedPrecondition(
                f"audit store {self._path} belongs to log {meta.get('origin')!r}, "
                f"not {self._origin!r}"
            )
        size = int(meta["size"])
        self._pruned_before = int(meta["pruned_before"])
        peaks_ids = range_nodes(0, size)
        found = self.node_hashes(peaks_ids)
        if len(found) != len(peaks_ids):
            raise FailedPrecondition(f"audit store {self._path} is missing tree nodes")
        tree = CompactRange(size, [found[n] for n in peaks_ids])
        self._state = _State(size, bytes(meta["chain_head"]), tree)
        _log.info("opened audit store %s: %d entries", self._path, size)

    def close(self) -> None:
        """Close every connection and release the writer lock (idempotent)."""
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            with self._readers_lock:
                for conn in self._readers:
                    conn.close()
                self._readers.clear()
            self._writer.close()
            os.close(self._lock_fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ state

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    @property
    def origin(self) -> str:
        """The log's name (checkpoint origin)."""
        return self._origin

    @property
    def size(self) -> int:
        """Entries durably appended so far."""
        return self._state.size

    @property
    def _size(self) -> int:
        return self._state.size

    @property
    def chain_head(self) -> bytes:
        """The chain hash of the last entry (``GENESIS`` when empty)."""
        return self._state.chain_head

    @property
    def pruned_before(self) -> int:
        """Entries below this index were archived and removed (their hashes remain)."""
        return self._pruned_before

    def root(self) -> bytes:
        """The Merkle root at the current size."""
        return self._state.tree.root()

    def tree_head(self) -> tuple[int, bytes]:
        """The current size and root, read together (safe while another thread appends)."""
        state = self._state
        return state.size, state.tree.root()

    # ------------------------------------------------------------------ writing

    def append_batch(
        self,
        events: Sequence[AuditEvent],
        records: Sequence[IngestRecord] | None = None,
    ) -> list[int]:
        """Append events durably and return each one's index, in order.

        Idempotent by event id: an id already in the log (or earlier in the same batch)
        gets its existing index and is not appended again. If the re-sent event differs from
        the stored one, the stored one is kept and a warning is logged. ``records`` (one per
        event) say how each event arrived; they are stored for the entries appended now.
        """
        if len(events) > MAX_BATCH:
            raise InvalidArgument(f"batch of {len(events)} events; at most {MAX_BATCH}")
        if records is not None and len(records) != len(events):
            raise InvalidArgument(f"{len(records)} ingest records for {len(events)} events")
        if not events:
            return []
        now_us = timestamp_micros(datetime.now(UTC))
        with self._write_lock:
            self._check_open()
            keys = [e.event_id.bytes for e in events]
            existing = self._existing_indices(self._writer, keys)
            state = self._state
            tree = state.tree.copy()
            chain = state.chain_head
            size = state.size
            entry_rows: list[tuple[Any, ...]] = []
            ingest_rows: list[tuple[Any, ...]] = []
            node_rows: list[tuple[int, bytes]] = []
            fresh: dict[bytes, tuple[int, bytes]] = {}
            result: list[int] = []
            for position, (event, key) in enumerate(zip(events, keys, strict=True)):
                known = existing.get(key)
                if known is not None:
                    result.append(known)
                    continue
                body = event.canonical_bytes
                seen = fresh.get(key)
                if seen is not None:
                    if seen[1] != body:
                        _log.warning(
                            "event %s appears twice in one batch with different content; "
                            "kept the first",
                            event.event_id,
                        )
                    result.append(seen[0])
                    continue
                leaf = leaf_hash(body)
                chain = chain_hash(chain, leaf)
                entry_rows.append(
                    (
                        size,
                        key,
                        event.time_micros,
                        event.agent_id,
                        event.actor,
                        event.event_type,
                        body.decode("utf-8"),
                        chain,
                    )
                )
                node_rows.extend((_node_key(n), h) for n, h in tree.append(leaf))
                if records is not None:
                    record = records[position]
                    ingest_rows.append(
                        (
                            size,
                            int(record.status),
                            record.sender,
                            record.publisher,
                            record.appended_us or now_us,
                        )
                    )
                fresh[key] = (size, body)
                result.append(size)
                size += 1
            if existing:
                self._warn_on_conflicts(events, existing)
            if entry_rows:
                with self._transaction():
                    self._writer.executemany(
                        "INSERT INTO entries (idx, event_id, ts_us, agent_id, actor, "
                        "event_type, body, chain_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        entry_rows,
                    )
                    self._writer.executemany(
                        "INSERT INTO nodes (id, hash) VALUES (?, ?)", node_rows
                    )
                    if ingest_rows:
                        self._writer.executemany(
                            "INSERT INTO ingest (idx, status, sender, publisher, appended_us) "
                            "VALUES (?, ?, ?, ?, ?)",
                            ingest_rows,
                        )
                    self._writer.executemany(
                        "UPDATE meta SET value = ? WHERE key = ?",
                        [(size, "size"), (chain, "chain_head")],
                    )
                # Only now is the batch durable; publish the new state to readers.
                self._state = _State(size, chain, tree)
            return result

    def _warn_on_conflicts(
        self, events: Sequence[AuditEvent], existing: Mapping[bytes, int]
    ) -> None:
        by_index = {idx: key for key, idx in existing.items()}
        stored: dict[bytes, str] = {}
        for chunk in _chunks(sorted(by_index), _IN_CHUNK):
            marks = ",".join("?" * len(chunk))
            for idx, body in self._writer.execute(
                f"SELECT idx, body FROM entries WHERE idx IN ({marks})", chunk
            ):
                stored[by_index[idx]] = body
        for event in events:
            body = stored.get(event.event_id.bytes)
            if body is not None and body.encode("utf-8") != event.canonical_bytes:
                _log.warning(
                    "event %s was re-sent with different content; the log keeps the first",
                    event.event_id,
                )

    def add_checkpoint(self, signed: SignedCheckpoint, created: datetime | None = None) -> None:
        """Store a signed checkpoint; it must commit to this log's root at its size."""
        checkpoint = signed.checkpoint
        if checkpoint.origin != self._origin:
            raise InvalidArgument(
                f"checkpoint origin {checkpoint.origin!r} is not this log ({self._origin!r})"
            )
        if checkpoint.size > self._size:
            raise InvalidArgument(
                f"checkpoint size {checkpoint.size} is beyond the log size {self._size}"
            )
        if checkpoint.root_hash != self.root_at(checkpoint.size):
            raise InvalidArgument(
                f"checkpoint root for size {checkpoint.size} is not this log's root"
            )
        moment = timestamp_micros(created or datetime.now(UTC))
        with self._write_lock:
            self._check_open()
            with self._transaction():
                self._writer.execute(
                    "INSERT OR IGNORE INTO checkpoints (size, created_us, note) VALUES (?, ?, ?)",
                    (checkpoint.size, moment, signed.note),
                )

    def prune_before(self, index: int) -> int:
        """Remove the event bodies of entries below ``index`` (retention), keeping hashes.

        Every node hash stays, so inclusion and consistency proofs keep working; event ids
        move to ``archived_ids`` so re-sent archived events are still recognised. The caller
        must have archived the entries first (see :func:`symbi_audit.log.AuditLog.archive`).
        Returns how many entries were removed.
        """
        with self._write_lock:
            self._check_open()
            if not 0 <= index <= self._size:
                raise InvalidArgument(f"prune index {index} is outside 0..{self._size}")
            if index <= self._pruned_before:
                return 0
            start = self._pruned_before
            conn = self._writer
            with self._transaction():
                row = conn.execute(
                    "SELECT chain_hash FROM entries WHERE idx = ?", (index - 1,)
                ).fetchone()
                if row is None:
                    raise Aborted(f"entry {index - 1} is missing from the store")
                conn.execute(
                    "INSERT OR IGNORE INTO archived_ids (event_id, idx) "
                    "SELECT event_id, idx FROM entries WHERE idx >= ? AND idx < ?",
                    (start, index),
                )
                removed = conn.execute("DELETE FROM entries WHERE idx < ?", (index,)).rowcount
                conn.executemany(
                    "UPDATE meta SET value = ? WHERE key = ?",
                    [(index, "pruned_before"), (bytes(row[0]), "pruned_chain")],
                )
            self._pruned_before = index
            _log.info("pruned audit entries %d..%d (%d rows)", start, index - 1, removed)
            return int(removed)

    # ------------------------------------------------------------------ reading entries

    def index_of(self, event_id: uuid.UUID) -> int | None:
        """The index of an event id, including archived ones; ``None`` if unknown."""
        found = self._existing_indices(self._reader(), [event_id.bytes])
        return found.get(event_id.bytes)

    def get(self, index: int) -> LogEntry:
        """The entry at ``index``."""
        if not 0 <= index < self._size:
            raise NotFound(f"no entry {index}; the log has entries 0..{self._size - 1}")
        if index < self._pruned_before:
            raise FailedPrecondition(
                f"entry {index} was archived (entries below {self._pruned_before} live in "
                "archive exports); its hashes and proofs are still served"
            )
        row = (
            self._reader()
            .execute(f"{_SELECT_WITH_INGEST} WHERE entries.idx = ?", (index,))
            .fetchone()
        )
        if row is None:
            raise NotFound(f"entry {index} is not in the store")
        return _entry(row)

    def get_by_id(self, event_id: uuid.UUID) -> LogEntry:
        """The entry of an event id."""
        index = self.index_of(event_id)
        if index is None:
            raise NotFound(f"no audit event with id {event_id}")
        return self.get(index)

    def iter_entries(self, start: int = 0, end: int | None = None) -> Iterator[LogEntry]:
        """Entries ``start..end-1`` in order, read a page at a time."""
        stop = self._size if end is None else end
        if not 0 <= start <= stop <= self._size:
            raise InvalidArgument(f"range {start}..{stop} is outside the log 0..{self._size}")
        if start < self._pruned_before:
            raise FailedPrecondition(
                f"entries below {self._pruned_before} were archived; start at or after it"
            )
        position = start
        while position < stop:
            rows = (
                self._reader()
                .execute(
                    "SELECT idx, body, chain_hash FROM entries WHERE idx >= ? AND idx < ? "
                    "ORDER BY idx LIMIT ?",
                    (position, stop, MAX_PAGE_SIZE),
                )
                .fetchall()
            )
            if not rows or rows[0][0] != position:
                raise Aborted(f"entry {position} is missing from the store")
            for row in rows:
                yield _entry(row)
            position = rows[-1][0] + 1

    def query(
        self,
        where: EventFilter | None = None,
        *,
        cursor: str | None = None,
        limit: int = 100,
        descending: bool = False,
    ) -> Page:
        """A page of entries matching ``where``, in index order (newest first if
        ``descending``); pass ``next_cursor`` back to get the next page."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"limit {limit} is outside 1..{MAX_PAGE_SIZE}")
        where = where or EventFilter()
        clauses: list[str] = []
        args: list[Any] = []
        if cursor is not None:
            clauses.append("entries.idx < ?" if descending else "entries.idx > ?")
            args.append(decode_cursor(cursor, descending))
        if where.agent_id is not None:
            clauses.append("agent_id = ?")
            args.append(where.agent_id)
        if where.actor is not None:
            clauses.append("actor = ?")
            args.append(where.actor)
        if where.event_types:
            clauses.append(f"event_type IN ({','.join('?' * len(where.event_types))})")
            args.extend(where.event_types)
        if where.since is not None:
            clauses.append("ts_us >= ?")
            args.append(timestamp_micros(where.since))
        if where.until is not None:
            clauses.append("ts_us < ?")
            args.append(timestamp_micros(where.until))
        if where.text:
            escaped = where.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("body LIKE ? ESCAPE '\\'")
            args.append(f"%{escaped}%")
        if where.compliance_tag is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM json_each(entries.body, '$.compliance_tags') "
                "WHERE json_each.value = ?)"
            )
            args.append(where.compliance_tag)
        if where.publisher_status is not None:
            if where.publisher_status == PublisherStatus.UNSPECIFIED:
                clauses.append("ingest.idx IS NULL")
            else:
                clauses.append("ingest.status = ?")
                args.append(int(where.publisher_status))
        sql = _SELECT_WITH_INGEST
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY entries.idx {'DESC' if descending else 'ASC'} LIMIT ?"
        args.append(limit + 1)  # one extra row tells whether another page exists
        rows = self._reader().execute(sql, args).fetchall()
        entries = tuple(_entry(row) for row in rows[:limit])
        more = len(rows) > limit
        next_cursor = encode_cursor(entries[-1].index, descending) if more else None
        return Page(entries, next_cursor)

    def index_range(self, since: datetime | None, until: datetime | None) -> tuple[int, int] | None:
        """The smallest stored index range ``[first, last + 1)`` holding every entry stamped in
        ``[since, until)``, or ``None`` when there is none.

        Timestamps are the publishers' and entries arrive in delivery order, so the entries of
        a window are not contiguous: the range can hold entries stamped outside the window.
        """
        clauses: list[str] = []
        args: list[Any] = []
        if since is not None:
            clauses.append("ts_us >= ?")
            args.append(timestamp_micros(since))
        if until is not None:
            clauses.append("ts_us < ?")
            args.append(timestamp_micros(until))
        sql = "SELECT min(idx), max(idx) FROM entries"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        first, last = self._reader().execute(sql, args).fetchone()
        if first is None:
            return None
        return int(first), int(last) + 1

    # ------------------------------------------------------------------ tree and proofs

    def node_hashes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        """Stored complete-subtree hashes (the :class:`~symbi_audit.merkle.NodeReader` port)."""
        result: dict[NodeId, bytes] = {}
        missing: list[int] = []
        cache = self._node_cache
        for node in ids:
            key = _node_key(node)
            cached = cache.get(key)
            if cached is None:
                missing.append(key)
            else:
                result[node] = cached
        if not missing:
            return result
        conn = self._reader()
        for chunk in _chunks(missing, _IN_CHUNK):
            marks = ",".join("?" * len(chunk))
            for key, value in conn.execute(
                f"SELECT id, hash FROM nodes WHERE id IN ({marks})", chunk
            ):
                node = _node_of(key)
                digest = bytes(value)
                result[node] = digest
                if node.level >= _CACHE_MIN_LEVEL and len(cache) < _CACHE_MAX_NODES:
                    cache[key] = digest
        return result

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash of entry ``index`` (kept after retention)."""
        self._check_size(index + 1)
        return self.node_hashes([NodeId(0, index)])[NodeId(0, index)]

    def root_at(self, size: int) -> bytes:
        """The Merkle root of the first ``size`` entries."""
        state = self._state
        self._check_size(size)
        return state.tree.root() if size == state.size else root_at(size, self)

    def compact_range_at(self, size: int) -> CompactRange:
        """The tree's right frontier at ``size`` (what an export needs to resume hashing)."""
        self._check_size(size)
        ids = range_nodes(0, size)
        found = self.node_hashes(ids)
        return CompactRange(size, [found[n] for n in ids])

    def chain_before(self, index: int) -> bytes:
        """The chain hash preceding entry ``index`` (``GENESIS`` for 0)."""
        self._check_size(index)
        if index == 0:
            return GENESIS
        if index == self._pruned_before:
            row = self._reader().execute("SELECT value FROM meta WHERE key = 'pruned_chain'")
        else:
            if index < self._pruned_before:
                raise FailedPrecondition(f"entry {index - 1} was archived")
            row = self._reader().execute(
                "SELECT chain_hash FROM entries WHERE idx = ?", (index - 1,)
            )
        value = row.fetchone()
        if value is None:
            raise Aborted(f"chain hash of entry {index - 1} is missing")
        return bytes(value[0])

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        """Proof that entry ``index`` is in the tree of ``size`` (default: current size)."""
        tree_size = self._size if size is None else size
        self._check_size(tree_size)
        if not 0 <= index < tree_size:
            raise InvalidArgument(f"entry {index} is not in a tree of size {tree_size}")
        # One read for the leaf and every tile of the audit path.
        tiles = range_tiles(inclusion_proof_ranges(index, tree_size))
        leaf = NodeId(0, index)
        found = self.node_hashes(sorted({leaf, *(n for tile in tiles for n in tile)}))
        return InclusionProof(index, tree_size, found[leaf], tuple(fold_tiles(tiles, found)))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """Proof that the tree of ``new_size`` (default: current) extends ``old_size``."""
        target = self._size if new_size is None else new_size
        self._check_size(target)
        if not 0 <= old_size <= target:
            raise InvalidArgument(f"old size {old_size} is outside 0..{target}")
        return ConsistencyProof(old_size, target, tuple(consistency_proof(old_size, target, self)))

    # ------------------------------------------------------------------ checkpoints

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        """The checkpoint with the largest size, if any was stored."""
        row = (
            self._reader()
            .execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1")
            .fetchone()
        )
        return None if row is None else _checkpoint(row[0])

    def checkpoint_at(self, size: int) -> SignedCheckpoint:
        """The checkpoint signed at exactly ``size``."""
        row = (
            self._reader()
            .execute("SELECT note FROM checkpoints WHERE size = ?", (size,))
            .fetchone()
        )
        if row is None:
            raise NotFound(f"no checkpoint was signed at tree size {size}")
        return _checkpoint(row[0])

    def checkpoint_covering(self, size: int) -> SignedCheckpoint | None:
        """The smallest stored checkpoint whose size is at least ``size``."""
        row = (
            self._reader()
            .execute("SELECT note FROM checkpoints WHERE size >= ? ORDER BY size LIMIT 1", (size,))
            .fetchone()
        )
        return None if row is None else _checkpoint(row[0])

    def checkpoints(self, min_size: int = 0, max_size: int | None = None) -> list[SignedCheckpoint]:
        """Checkpoints with ``min_size <= size <= max_size``, smallest first."""
        upper = self._size if max_size is None else max_size
        rows = (
            self._reader()
            .execute(
                "SELECT note FROM checkpoints WHERE size >= ? AND size <= ? ORDER BY size",
                (min_size, upper),
            )
            .fetchall()
        )
        return [_checkpoint(row[0]) for row in rows]

    # ------------------------------------------------------------------ verification

    def verify_range(self, start: int, end: int | None = None) -> RangeCheck:
        """Re-hash entries ``start..end-1`` from their stored bytes and compare with the
        stored leaf hashes, chain hashes and every complete subtree they complete."""
        stop = self._size if end is None else end
        tree = self.compact_range_at(start)
        chain = self.chain_before(start)
        position = start
        for entry in self.iter_entries(start, stop):
            body = entry.event.canonical_bytes
            leaf = leaf_hash(body)
            if leaf != entry.leaf_hash:
                return RangeCheck(start, stop, entry.index, "stored event bytes are not canonical")
            chain = chain_hash(chain, leaf)
            if chain != entry.chain_hash:
                return RangeCheck(start, stop, entry.index, "chain hash does not match")
            created = tree.append(leaf)
            stored = self.node_hashes([n for n, _ in created])
            for node, value in created:
                if stored.get(node) != value:
                    return RangeCheck(
                        start, stop, entry.index, f"stored hash of subtree {tuple(node)} differs"
                    )
            position += 1
        if tree.root() != self.root_at(stop):
            return RangeCheck(start, stop, None, f"root at size {stop} does not match")
        return RangeCheck(start, position)

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise FailedPrecondition(f"audit store {self._path} is closed")

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self._size:
            raise InvalidArgument(f"tree size {size} is outside 0..{self._size}")

    def _reader(self) -> sqlite3.Connection:
        self._check_open()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self._path)
            conn.execute("PRAGMA query_only=1")
            # Reads through a memory map skip a syscall per page on the proof hot path.
            conn.execute("PRAGMA mmap_size=1073741824")
            with self._readers_lock:
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise Unavailable(f"audit store {self._path} cannot start a write: {exc}") from exc
        try:
            yield
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError):
                raise Aborted(f"audit store {self._path} rejected a write: {exc}") from exc
            if isinstance(exc, sqlite3.Error):
                raise Unavailable(f"audit store {self._path} write failed: {exc}") from exc
            raise

    @staticmethod
    def _existing_indices(conn: sqlite3.Connection, keys: Sequence[bytes]) -> dict[bytes, int]:
        found: dict[bytes, int] = {}
        for chunk in _chunks(list(keys), _IN_CHUNK):
            marks = ",".join("?" * len(chunk))
            for table in ("entries", "archived_ids"):
                for key, idx in conn.execute(
                    f"SELECT event_id, idx FROM {table} WHERE event_id IN ({marks})", chunk
                ):
                    found[bytes(key)] = int(idx)
        return found


def _connect(path: Path) -> sqlite3.Connection:
    try:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    except sqlite3.Error as exc:
        raise Unavailable(f"cannot open audit store {path}: {exc}") from exc
    conn.execute("PRAGMA cache_size=-32768")  # 32 MiB: keeps the id index's hot pages
    return conn


_SELECT_WITH_INGEST = (
    "SELECT entries.idx, entries.body, entries.chain_hash, ingest.status, ingest.sender, "
    "ingest.publisher, ingest.appended_us FROM entries LEFT JOIN ingest ON ingest.idx = entries.idx"
)


def _entry(row: tuple[Any, ...]) -> LogEntry:
    idx, body, chain = row[:3]
    data = body.encode("utf-8")
    record: IngestRecord | None = None
    if len(row) > 3 and row[3] is not None:
        status, sender, publisher, appended_us = row[3:]
        record = IngestRecord(PublisherStatus(status), sender, publisher, int(appended_us))
    return LogEntry(
        int(idx), AuditEvent.from_canonical(data), leaf_hash(data), bytes(chain), record
    )


def _checkpoint(note: str) -> SignedCheckpoint:
    return SignedCheckpoint(Checkpoint.parse(_note_text(note)), note)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
