"""The node's dispatch journal: at-most-once starts and task statuses that survive a crash.

One append-only file of JSON lines in the service's data directory, fsynced before anything it
records is acted on:

``accept``
    a dispatch was accepted (before its order is acknowledged on the bus): a dispatch id
    found here is never started again, and a dispatch accepted but never finished when the
    process died is reported ``LOST`` on the next start;
``status``
    a task status to publish (the outbox): written before publication, so a crash between
    the two republishes it (JetStream de-duplicates by message id);
``sent``
    the status was published;
``drop``
    the dispatch ended without a status of its own (an expired order).

The file is compacted at open and when it grows: dispatches that ended, whose statuses were
published and whose order can no longer arrive (``not_after`` passed, or the retention when
the order had none) are forgotten. This module does file I/O in worker threads and nothing
else (no bus, no Docker).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from symbi.bus.v1 import events_pb2

__all__ = ["DispatchJournal", "DispatchRecord", "JournaledStatus", "Recovery"]

_log = logging.getLogger(__name__)

#: Slack on top of ``not_after`` before a dispatch id may be forgotten (clock skew).
_NOT_AFTER_SLACK_MS = 120_000


@dataclass
class DispatchRecord:
    """A dispatch this node accepted."""

    dispatch_id: str
    task_id: str
    agent_id: str
    attempt: int
    not_after_ms: int
    accepted_at_ms: int
    ended: bool = False  # a final status (or a drop) is recorded

    def to_json(self) -> dict[str, Any]:
        return {
            "k": "accept",
            "d": self.dispatch_id,
            "t": self.task_id,
            "g": self.agent_id,
            "n": self.attempt,
            "x": self.not_after_ms,
            "at": self.accepted_at_ms,
        }


@dataclass(frozen=True)
class JournaledStatus:
    """A status in the outbox: ``seq`` orders publication and marks it sent."""

    seq: int
    status: events_pb2.TaskStatus
    final: bool


@dataclass
class Recovery:
    """What an earlier run of the process left: statuses to publish, dispatches to report."""

    unsent: list[JournaledStatus] = field(default_factory=list)
    unfinished: list[DispatchRecord] = field(default_factory=list)


class DispatchJournal:
    """The journal file and its in-memory index (event-loop thread only)."""

    def __init__(self, path: Path, *, retention_s: float, compact_after_lines: int = 50_000):
        self.path = path
        self.retention_ms = int(retention_s * 1000)
        self.compact_after_lines = compact_after_lines
        self._records: dict[str, DispatchRecord] = {}
        self._statuses: dict[int, tuple[str, JournaledStatus]] = {}  # unsent only
        self._next_seq = 1
        self._lines = 0
        self._handle: TextIO | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ open / close

    async def open(self) -> Recovery:
        """Reads the file, compacts it and returns what the last run left unfinished."""
        await asyncio.to_thread(self._load)
        recovery = Recovery(
            unsent=[s for _, s in sorted(self._statuses.values(), key=lambda x: x[1].seq)],
            unfinished=[r for r in self._records.values() if not r.ended],
        )
        await asyncio.to_thread(self._compact)
        return recovery

    async def aclose(self) -> None:
        async with self._lock:
            handle, self._handle = self._handle, None
            if handle is not None:
                await asyncio.to_thread(_close, handle)

    # ------------------------------------------------------------------ queries

    def known(self, dispatch_id: str) -> bool:
        """Whether this dispatch id was ever accepted here (and not yet forgotten)."""
        return dispatch_id in self._records

    def get(self, dispatch_id: str) -> DispatchRecord | None:
        return self._records.get(dispatch_id)

    def unfinished(self) -> list[DispatchRecord]:
        return [r for r in self._records.values() if not r.ended]

    @property
    def pending_statuses(self) -> int:
        return len(self._statuses)

    # ------------------------------------------------------------------ writes

    async def accept(self, record: DispatchRecord) -> None:
        """Records an accepted dispatch durably (fsync) before the order is acknowledged."""
        self._records[record.dispatch_id] = record
        await self._append([record.to_json()], durable=True)

    async def record_status(self, status: events_pb2.TaskStatus, *, final: bool) -> JournaledStatus:
        """Records a status to publish, durably; ``final`` ends its dispatch."""
        entry = JournaledStatus(self._next_seq, status, final)
        self._next_seq += 1
        self._statuses[entry.seq] = (status.dispatch_id, entry)
        record = self._records.get(status.dispatch_id)
        if final and record is not None:
            record.ended = True
        line = {
            "k": "status",
            "d": status.dispatch_id,
            "q": entry.seq,
            "f": final,
            "s": base64.b64encode(status.SerializeToString()).decode(),
        }
        await self._append([line], durable=True)
        return entry

    async def mark_sent(self, seq: int) -> None:
        """The status was published (not fsynced: losing this line only republishes it)."""
        if self._statuses.pop(seq, None) is not None:
            await self._append([{"k": "sent", "q": seq}], durable=False)

    async def drop(self, dispatch_id: str, why: str) -> None:
        """Ends a dispatch that gets no status of its own (e.g. an expired order)."""
        record = self._records.get(dispatch_id)
        if record is not None:
            record.ended = True
        await self._append([{"k": "drop", "d": dispatch_id, "why": why}], durable=True)

    async def _append(self, lines: Iterable[dict[str, Any]], *, durable: bool) -> None:
        text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        async with self._lock:
            await asyncio.to_thread(self._write, text, durable)
            self._lines += text.count("\n")
            if self._lines > self.compact_after_lines:
                await asyncio.to_thread(self._compact)

    # ------------------------------------------------------------------ file (worker threads)

    def _write(self, text: str, durable: bool) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(text)
        self._handle.flush()
        if durable:
            os.fsync(self._handle.fileno())

    def _load(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open(encoding="utf-8") as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    self._apply(json.loads(raw))
                except (ValueError, KeyError, TypeError) as exc:
                    # A torn last line (crash mid-write) was never acted on: skip it.
                    _log.warning(
                        "%s:%d: ignoring unreadable journal line (%s)", self.path, number, exc
                    )

    def _apply(self, line: dict[str, Any]) -> None:
        kind = line["k"]
        if kind == "accept":
            self._records[line["d"]] = DispatchRecord(
                dispatch_id=line["d"],
                task_id=line["t"],
                agent_id=line["g"],
                attempt=int(line["n"]),
                not_after_ms=int(line["x"]),
                accepted_at_ms=int(line["at"]),
            )
        elif kind == "status":
            status = events_pb2.TaskStatus()
            status.ParseFromString(base64.b64decode(line["s"]))
            seq = int(line["q"])
            self._next_seq = max(self._next_seq, seq + 1)
            self._statuses[seq] = (line["d"], JournaledStatus(seq, status, bool(line["f"])))
            record = self._records.get(line["d"])
            if line["f"] and record is not None:
                record.ended = True
        elif kind == "sent":
            self._statuses.pop(int(line["q"]), None)
        elif kind == "drop":
            record = self._records.get(line["d"])
            if record is not None:
                record.ended = True

    def _compact(self) -> None:
        now = int(time.time() * 1000)
        unsent_dispatches = {d for d, _ in self._statuses.values()}
        keep: list[DispatchRecord] = []
        for record in self._records.values():
            if record.not_after_ms:
                forget_at = record.not_after_ms + _NOT_AFTER_SLACK_MS
            else:
                forget_at = record.accepted_at_ms + self.retention_ms
            if not record.ended or record.dispatch_id in unsent_dispatches or now < forget_at:
                keep.append(record)
        self._records = {r.dispatch_id: r for r in keep}
        lines: list[dict[str, Any]] = []
        for record in keep:
            lines.append(record.to_json())
            if record.ended:
                lines.append({"k": "drop", "d": record.dispatch_id, "why": "compacted"})
        for dispatch_id, entry in sorted(self._statuses.values(), key=lambda x: x[1].seq):
            lines.append(
                {
                    "k": "status",
                    "d": dispatch_id,
                    "q": entry.seq,
                    "f": entry.final,
                    "s": base64.b64encode(entry.status.SerializeToString()).decode(),
                }
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines))
            handle.flush()
            os.fsync(handle.fileno())
        if self._handle is not None:
            _close(self._handle)
            self._handle = None
        os.replace(tmp, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._lines = len(lines)


def _close(handle: TextIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
