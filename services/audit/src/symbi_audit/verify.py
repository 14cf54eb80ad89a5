"""The offline verifier: checks an export with nothing but the file and the log's public key.

It recomputes, streaming (memory ``O(log n)``):

1. every checkpoint's signature against the *trusted* key given by the caller;
2. every entry's leaf hash from its event (the canonical encoding of
   :mod:`symbi_audit.event`) and compares it with the recorded one;
3. the hash chain from ``prev_chain_hash`` and compares it with each recorded chain hash;
4. the Merkle tree from the ``frontier`` and compares its root with every checkpoint at the
   size the checkpoint names; the last checkpoint covers the last entry;
5. optionally, each event's publisher signature, when publisher keys are supplied.

It stops at the first problem and names it. An edit of the file that leaves the recorded
hashes alone (a changed, removed, reordered or inserted line) is named at that entry. An
attacker who also rewrites every later recorded hash is still caught by the signed
checkpoint; the entry is then located to the window between the last matching and the
first failing checkpoint, and exactly when publisher keys are given and the entry was
changed.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from symbi_audit.chain import chain_hash
from symbi_audit.checkpoint import SignedCheckpoint
from symbi_audit.errors import NoteError
from symbi_audit.event import AuditEvent, verify_event_signature
from symbi_audit.export import EXPORT_FORMAT, EXPORT_VERSION
from symbi_audit.merkle import CompactRange, leaf_hash
from symbi_audit.note import NoteVerifier
from symbi_audit.proof import parse_hash
from symbi_common.errors import InvalidArgument

__all__ = ["Problem", "ProblemKind", "VerifyResult", "verify_export", "verify_export_file"]


class ProblemKind(enum.Enum):
    """What kind of tampering or damage the verifier found."""

    MALFORMED = "malformed"
    BAD_CHECKPOINT = "bad-checkpoint"
    CHANGED = "changed"
    MISSING = "missing"
    OUT_OF_PLACE = "out-of-place"
    CHAIN_BROKEN = "chain-broken"
    ROOT_MISMATCH = "root-mismatch"
    UNANCHORED = "unanchored"
    BAD_PUBLISHER_SIGNATURE = "bad-publisher-signature"


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """The first problem found: where (entry index and event id when known) and why."""

    kind: ProblemKind
    message: str
    index: int | None = None
    event_id: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = "" if self.index is None else f"entry {self.index}"
        if self.event_id:
            where += f" (event {self.event_id})"
        if self.line is not None:
            where += f"{' ' if where else ''}at line {self.line}"
        return f"{where}: {self.message}" if where else self.message


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of :func:`verify_export`; ``problem`` is ``None`` exactly when ``ok``."""

    origin: str = ""
    start: int = 0
    end: int = 0
    entries_checked: int = 0
    checkpoints_checked: int = 0
    checkpoint: SignedCheckpoint | None = None
    root_hash: bytes = b""
    publisher_signatures_checked: int = 0
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        """Whether the whole export verified."""
        return self.problem is None


class _Failed(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _fail(kind: ProblemKind, message: str, **where: Any) -> _Failed:
    return _Failed(Problem(kind, message, **where))


def _parse_line(number: int, text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise _fail(ProblemKind.MALFORMED, f"not JSON: {exc}", line=number) from exc
    if not isinstance(obj, dict):
        raise _fail(ProblemKind.MALFORMED, "not a JSON object", line=number)
    return obj


def _hash_field(obj: Mapping[str, Any], key: str, number: int, **where: Any) -> bytes:
    try:
        return parse_hash(obj.get(key), key)
    except InvalidArgument as exc:
        raise _fail(ProblemKind.MALFORMED, exc.message, line=number, **where) from exc


def verify_export(
    lines: Iterable[str],
    trusted: Sequence[NoteVerifier],
    *,
    publisher_keys: Mapping[str, bytes] | None = None,
) -> VerifyResult:
    """Verify an export given as lines; see the module docstring for what is checked.

    ``trusted`` are the log keys the caller trusts. ``publisher_keys`` maps publisher key
    ids to Ed25519 public keys; with it every event must carry a valid signature by a
    known publisher key.
    """
    state: dict[str, Any] = {}
    try:
        return _verify(iter(lines), trusted, publisher_keys, state)
    except _Failed as failed:
        return VerifyResult(
            origin=state.get("origin", ""),
            start=state.get("start", 0),
            end=state.get("end", 0),
            entries_checked=state.get("entries", 0),
            checkpoints_checked=state.get("checkpoints", 0),
            problem=failed.problem,
        )


def verify_export_file(
    path: str | os.PathLike[str],
    trusted: Sequence[NoteVerifier],
    *,
    publisher_keys: Mapping[str, bytes] | None = None,
) -> VerifyResult:
    """:func:`verify_export` on a file."""
    with Path(path).open(encoding="utf-8", newline="\n") as f:
        try:
            return verify_export(f, trusted, publisher_keys=publisher_keys)
        except UnicodeDecodeError as exc:
            return VerifyResult(problem=Problem(ProblemKind.MALFORMED, f"not UTF-8: {exc}"))


def _verify(
    lines: Iterator[str],
    trusted: Sequence[NoteVerifier],
    publisher_keys: Mapping[str, bytes] | None,
    state: dict[str, Any],
) -> VerifyResult:
    number = 0
    first = next(lines, None)
    if first is None:
        raise _fail(ProblemKind.MALFORMED, "the export is empty")
    number = 1
    header = _parse_line(number, first)
    if header.get("type") != "header" or header.get("format") != EXPORT_FORMAT:
        raise _fail(ProblemKind.MALFORMED, f"the first line is not a {EXPORT_FORMAT} header")
    if header.get("version") != EXPORT_VERSION:
        raise _fail(
            ProblemKind.MALFORMED,
            f"export version {header.get('version')!r} is not supported (only {EXPORT_VERSION})",
        )
    origin, start, end = header.get("origin"), header.get("start"), header.get("end")
    if not isinstance(origin, str) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (start, end)
    ):
        raise _fail(ProblemKind.MALFORMED, "header origin/start/end are missing or invalid")
    assert isinstance(start, int)
    assert isinstance(end, int)
    if start > end:
        raise _fail(ProblemKind.MALFORMED, f"header start {start} is after end {end}")
    state.update(origin=origin, start=start, end=end)
    chain = _hash_field(header, "prev_chain_hash", number)
    frontier = header.get("frontier")
    if not isinstance(frontier, list):
        raise _fail(ProblemKind.MALFORMED, "header frontier must be a list of hashes")
    try:
        tree = CompactRange(start, [parse_hash(h, "frontier hash") for h in frontier])
    except InvalidArgument as exc:
        raise _fail(ProblemKind.MALFORMED, f"header frontier: {exc.message}") from exc

    # Checkpoints come before the entries, so the roots to check are known while hashing.
    checkpoints: dict[int, SignedCheckpoint] = {}
    pending = next(lines, None)
    while pending is not None:
        number += 1
        obj = _parse_line(number, pending)
        if obj.get("type") != "checkpoint":
            break
        note = obj.get("note")
        if not isinstance(note, str):
            raise _fail(ProblemKind.MALFORMED, "checkpoint note must be a string", line=number)
        try:
            signed = SignedCheckpoint.open(note, trusted)
        except NoteError as exc:
            raise _fail(
                ProblemKind.BAD_CHECKPOINT,
                f"checkpoint is forged or not signed by the trusted key: {exc.message}",
                line=number,
            ) from exc
        size = signed.size
        if signed.checkpoint.origin != origin:
            raise _fail(
                ProblemKind.BAD_CHECKPOINT,
                f"checkpoint is for log {signed.checkpoint.origin!r}, the export for {origin!r}",
                line=number,
            )
        if not start <= size <= end or (checkpoints and size <= max(checkpoints)):
            raise _fail(
                ProblemKind.BAD_CHECKPOINT,
                f"checkpoint size {size} is out of order or outside the export {start}..{end}",
                line=number,
            )
        checkpoints[size] = signed
        state["checkpoints"] = len(checkpoints)
        pending = next(lines, None)
    if not checkpoints:
        raise _fail(ProblemKind.UNANCHORED, "the export carries no signed checkpoint")
    latest = checkpoints[max(checkpoints)]
    if latest.size != end:
        raise _fail(
            ProblemKind.UNANCHORED,
            f"the header claims entries up to {end} but the latest checkpoint covers {latest.size}",
        )
    if start in checkpoints and tree.root() != checkpoints[start].root_hash:
        raise _fail(
            ProblemKind.ROOT_MISMATCH,
            f"the frontier does not reproduce the signed root at size {start}",
        )

    last_good = start
    publisher_checked = 0
    expected = start
    while pending is not None:
        obj = _parse_line(number, pending)
        if obj.get("type") != "entry":
            raise _fail(ProblemKind.MALFORMED, f"unexpected {obj.get('type')!r} line", line=number)
        index = obj.get("index")
        raw_event = obj.get("event")
        event_id = raw_event.get("event_id") if isinstance(raw_event, dict) else None
        where = {"line": number, "event_id": event_id if isinstance(event_id, str) else None}
        if expected >= end:
            raise _fail(
                ProblemKind.UNANCHORED,
                f"an entry beyond the signed checkpoint at size {end} was added",
                index=index if isinstance(index, int) else expected,
                **where,
            )
        if index != expected:
            raise _fail(
                ProblemKind.OUT_OF_PLACE,
                f"entry {expected} is not where it belongs: found entry {index!r} in its "
                "place (an entry was removed, or entries were reordered or inserted)",
                index=expected,
                **where,
            )
        try:
            event = AuditEvent.from_json_object(raw_event)
        except InvalidArgument as exc:
            raise _fail(
                ProblemKind.CHANGED, f"the event is malformed: {exc.message}", index=index, **where
            ) from exc
        leaf = leaf_hash(event.canonical_bytes)
        if leaf != _hash_field(obj, "leaf_hash", number, index=index):
            raise _fail(
                ProblemKind.CHANGED,
                "the event does not hash to its recorded leaf hash (it was changed)",
                index=index,
                **where,
            )
        chain = chain_hash(chain, leaf)
        if chain != _hash_field(obj, "chain_hash", number, index=index):
            raise _fail(
                ProblemKind.CHAIN_BROKEN,
                "the hash chain breaks here: the entry before it was removed, or entries were "
                "reordered or inserted",
                index=index,
                **where,
            )
        if publisher_keys is not None:
            key = publisher_keys.get(event.publisher_key_id)
            if key is None or not verify_event_signature(event, key):
                raise _fail(
                    ProblemKind.BAD_PUBLISHER_SIGNATURE,
                    f"the publisher signature (key {event.publisher_key_id!r}) does not verify",
                    index=index,
                    **where,
                )
            publisher_checked += 1
        tree.append(leaf)
        expected += 1
        state["entries"] = expected - start
        signed_here = checkpoints.get(expected)
        if signed_here is not None:
            if tree.root() != signed_here.root_hash:
                raise _fail(
                    ProblemKind.ROOT_MISMATCH,
                    f"the tree of the first {expected} entries does not match the signed "
                    f"checkpoint: an entry in {last_good}..{expected - 1} was changed, "
                    "removed, reordered or inserted and the recorded hashes rewritten",
                    index=last_good if expected - last_good == 1 else None,
                )
            last_good = expected
        pending = next(lines, None)
        number += 1
    if expected != end:
        raise _fail(
            ProblemKind.MISSING,
            f"the export stops after entry {expected - 1}; the checkpoint covers entries up to "
            f"{end - 1} (entries {expected}..{end - 1} are missing)",
            index=expected,
        )
    return VerifyResult(
        origin=origin,
        start=start,
        end=end,
        entries_checked=end - start,
        checkpoints_checked=len(checkpoints),
        checkpoint=latest,
        root_hash=tree.root(),
        publisher_signatures_checked=publisher_checked,
    )
