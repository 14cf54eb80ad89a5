"""Exports: a self-contained JSON Lines file an offline verifier can check.

Layout (one JSON object per line, UTF-8)::

    {"type": "header", "format": "symbi-audit-export", "version": 1, "origin": …,
     "log_key": "<name>+<id>+<base64 key>", "start": s, "end": e,
     "prev_chain_hash": hex, "frontier": [hex, …], "created": "…Z", "hashing": "…"}
    {"type": "checkpoint", "note": "<signed checkpoint note>"}      every stored checkpoint
    …                                                               with s <= size <= e,
    {"type": "entry", "index": i, "event": {…canonical event…},     smallest first; then
     "leaf_hash": hex, "chain_hash": hex}                           entries s..e-1

``end`` is the size of the last checkpoint, so every entry is anchored by a signature.
``frontier`` is the tree's right frontier at ``start`` (the hashes of the complete
subtrees tiling ``[0, start)``) and ``prev_chain_hash`` the chain hash before ``start``:
with them a segment exported after older entries were archived still verifies against
checkpoints of the whole log. ``log_key`` only says which key signed; the verifier trusts
the key it is *given*, never the one in the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from symbi_audit.checkpoint import SignedCheckpoint
from symbi_audit.event import format_timestamp
from symbi_audit.note import NoteVerifier
from symbi_audit.store import AuditStore
from symbi_common.errors import FailedPrecondition, InvalidArgument

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "ExportSummary",
    "export_lines",
    "export_to_file",
    "write_export",
]

EXPORT_FORMAT = "symbi-audit-export"
EXPORT_VERSION = 1
HASHING = (
    "RFC 6962 SHA-256 Merkle tree over leaf = SHA-256(0x00 || canonical event bytes); "
    "chain_i = SHA-256(chain_{i-1} || leaf_i), chain_{-1} = 32 zero bytes"
)


@dataclasses.dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export contains."""

    origin: str
    start: int
    end: int
    checkpoints: int


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def export_lines(
    store: AuditStore,
    *,
    log_key: NoteVerifier,
    start: int | None = None,
    checkpoint: SignedCheckpoint | None = None,
    summary: list[ExportSummary] | None = None,
) -> Iterator[str]:
    """The lines of an export of entries ``start..checkpoint.size-1``, lazily (for streaming).

    ``start`` defaults to the first entry still in the store; ``checkpoint`` to the
    latest one (the log must have signed at least one). If ``summary`` is given, the
    export's :class:`ExportSummary` is appended to it once the header is known.
    """
    head = checkpoint or store.latest_checkpoint()
    if head is None:
        raise FailedPrecondition("the log has no signed checkpoint yet; sign one before export")
    first = store.pruned_before if start is None else start
    end = head.size
    if not store.pruned_before <= first <= end:
        raise InvalidArgument(
            f"export start {first} must be between the first stored entry "
            f"{store.pruned_before} and the checkpoint size {end}"
        )
    checkpoints = [c for c in store.checkpoints(first, end) if c.size <= end]
    if not checkpoints or checkpoints[-1].size != end:
        checkpoints.append(head)
    if summary is not None:
        summary.append(ExportSummary(store.origin, first, end, len(checkpoints)))
    return _lines(store, log_key, first, end, checkpoints)


def _lines(
    store: AuditStore,
    log_key: NoteVerifier,
    first: int,
    end: int,
    checkpoints: list[SignedCheckpoint],
) -> Iterator[str]:
    yield _line(
        {
            "type": "header",
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "origin": store.origin,
            "log_key": str(log_key),
            "start": first,
            "end": end,
            "prev_chain_hash": store.chain_before(first).hex(),
            "frontier": [h.hex() for h in store.compact_range_at(first).peaks],
            "created": format_timestamp(datetime.now(UTC)),
            "hashing": HASHING,
        }
    )
    for signed in checkpoints:
        yield _line({"type": "checkpoint", "note": signed.note})
    for entry in store.iter_entries(first, end):
        # The canonical bytes are already sorted, compact JSON: splice them in as they are.
        yield (
            f'{{"chain_hash":"{entry.chain_hash.hex()}",'
            f'"event":{entry.event.canonical_bytes.decode("utf-8")},'
            f'"index":{entry.index},"leaf_hash":"{entry.leaf_hash.hex()}","type":"entry"}}\n'
        )


def write_export(
    store: AuditStore,
    out: TextIO,
    *,
    log_key: NoteVerifier,
    start: int | None = None,
    checkpoint: SignedCheckpoint | None = None,
) -> ExportSummary:
    """Write :func:`export_lines` to ``out``; returns what was exported."""
    summary: list[ExportSummary] = []
    for line in export_lines(
        store, log_key=log_key, start=start, checkpoint=checkpoint, summary=summary
    ):
        out.write(line)
    return summary[0]


def export_to_file(
    store: AuditStore,
    path: str | os.PathLike[str],
    *,
    log_key: NoteVerifier,
    start: int | None = None,
    checkpoint: SignedCheckpoint | None = None,
) -> ExportSummary:
    """:func:`write_export` to ``path`` atomically: a temp file, fsync, rename, fsync dir."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            summary = write_export(store, out, log_key=log_key, start=start, checkpoint=checkpoint)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return summary
