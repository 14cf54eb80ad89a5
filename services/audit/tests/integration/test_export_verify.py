"""Exports and the offline verifier: every kind of tampering is detected and located."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import nacl.signing
import pytest

from symbi_audit.chain import chain_hash
from symbi_audit.checkpoint import Checkpoint, CheckpointPolicy
from symbi_audit.event import AuditEvent, sign_event
from symbi_audit.log import AuditLog
from symbi_audit.merkle import leaf_hash
from symbi_audit.note import NoteSigner
from symbi_audit.verify import ProblemKind, verify_export, verify_export_file

ORIGIN = "audit.symbi.test/log"
Events = Callable[..., list[AuditEvent]]


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def now(self):  # type: ignore[no-untyped-def]
        from datetime import UTC, datetime

        return datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def log(tmp_path: Path, log_key: NoteSigner) -> AuditLog:
    opened = AuditLog.open(
        tmp_path / "store" / "audit.db",
        signer=log_key,
        policy=CheckpointPolicy(every_entries=10, every_seconds=3600),
        clock=FakeClock(),
    )
    yield opened  # type: ignore[misc]
    opened.close()


def fill(log: AuditLog, events: list[AuditEvent], batch: int = 5) -> None:
    for i in range(0, len(events), batch):
        log.append_batch(events[i : i + batch])
        log.checkpoint_if_due()


def export_lines(log: AuditLog, tmp_path: Path) -> list[str]:
    path = log.export(tmp_path / "export.jsonl")
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def first_entry_line(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines) if '"type":"entry"' in line)


def rewrite_hashes(lines: list[str], from_line: int) -> list[str]:
    """What a careful attacker does: recompute every recorded hash after an edit."""
    out = list(lines)
    header = json.loads(out[0])
    chain = bytes.fromhex(header["prev_chain_hash"])
    for i in range(first_entry_line(out), len(out)):
        obj = json.loads(out[i])
        leaf = leaf_hash(AuditEvent.from_json_object(obj["event"]).canonical_bytes)
        chain = chain_hash(chain, leaf)
        if i >= from_line:
            obj["leaf_hash"], obj["chain_hash"] = leaf.hex(), chain.hex()
            out[i] = json.dumps(obj, ensure_ascii=False) + "\n"
    return out


def test_untouched_export_verifies(log: AuditLog, events: Events, tmp_path: Path) -> None:
    fill(log, events(53))
    lines = export_lines(log, tmp_path)
    result = verify_export(lines, [log.signer.verifier])
    assert result.ok, result.problem
    assert (result.start, result.end, result.entries_checked) == (0, 53, 53)
    assert result.root_hash == log.store.root()
    assert result.checkpoints_checked == 6  # every 10 entries, plus the export's own at 53


def test_changed_entry_is_named(log: AuditLog, events: Events, tmp_path: Path) -> None:
    batch = events(40)
    fill(log, batch)
    lines = export_lines(log, tmp_path)
    k = first_entry_line(lines) + 17
    lines[k] = lines[k].replace('"agent_id":"agent-2"', '"agent_id":"agent-9"')
    result = verify_export(lines, [log.signer.verifier])
    assert result.problem is not None
    assert (result.problem.kind, result.problem.index) == (ProblemKind.CHANGED, 17)
    assert result.problem.event_id == str(batch[17].event_id)


@pytest.mark.parametrize("renumber", [False, True])
def test_removed_entry_is_named(
    log: AuditLog, events: Events, tmp_path: Path, renumber: bool
) -> None:
    fill(log, events(40))
    lines = export_lines(log, tmp_path)
    k = first_entry_line(lines) + 9
    del lines[k]
    if renumber:
        for i in range(k, len(lines)):
            obj = json.loads(lines[i])
            obj["index"] -= 1
            lines[i] = json.dumps(obj) + "\n"
    result = verify_export(lines, [log.signer.verifier])
    assert result.problem is not None
    expected = ProblemKind.CHAIN_BROKEN if renumber else ProblemKind.OUT_OF_PLACE
    assert (result.problem.kind, result.problem.index) == (expected, 9)


def test_reordered_entries_are_named(log: AuditLog, events: Events, tmp_path: Path) -> None:
    fill(log, events(40))
    lines = export_lines(log, tmp_path)
    k = first_entry_line(lines) + 22
    lines[k], lines[k + 1] = lines[k + 1], lines[k]
    result = verify_export(lines, [log.signer.verifier])
    assert result.problem is not None
    assert (result.problem.kind, result.problem.index) == (ProblemKind.OUT_OF_PLACE, 22)


def test_inserted_entry_is_named(log: AuditLog, events: Events, tmp_path: Path) -> None:
    fill(log, events(40))
    lines = export_lines(log, tmp_path)
    k = first_entry_line(lines) + 30
    forged = json.loads(lines[k])
    forged["event"]["event_id"] = "00000000-0000-4000-8000-000000000001"
    lines.insert(k, json.dumps(forged) + "\n")
    result = verify_export(lines, [log.signer.verifier])
    assert result.problem is not None
    assert result.problem.index in (30, 31)
    assert result.problem.kind in (ProblemKind.CHANGED, ProblemKind.OUT_OF_PLACE)


def test_rewritten_hashes_are_caught_by_the_checkpoint(
    log: AuditLog, events: Events, tmp_path: Path
) -> None:
    fill(log, events(40))
    lines = export_lines(log, tmp_path)
    k = first_entry_line(lines) + 23
    lines[k] = lines[k].replace('"n":23', '"n":24')
    result = verify_export(rewrite_hashes(lines, k), [log.signer.verifier])
    assert result.problem is not None
    assert result.problem.kind is ProblemKind.ROOT_MISMATCH
    assert "20..29" in result.problem.message  # located to the checkpoint window


def test_publisher_signatures_name_a_rewritten_entry(
    tmp_path: Path, log_key: NoteSigner, events: Events
) -> None:
    key = nacl.signing.SigningKey.generate()
    signed = [sign_event(e, "svc:test#1", key) for e in events(25)]
    with AuditLog.open(tmp_path / "a.db", signer=log_key) as log:
        log.append_batch(signed)
        lines = export_lines(log, tmp_path)
    keys = {"svc:test#1": bytes(key.verify_key)}
    assert verify_export(lines, [log_key.verifier], publisher_keys=keys).ok
    k = first_entry_line(lines) + 11
    lines[k] = lines[k].replace('"n":11', '"n":12')
    result = verify_export(rewrite_hashes(lines, k), [log_key.verifier], publisher_keys=keys)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.index) == (
        ProblemKind.BAD_PUBLISHER_SIGNATURE,
        11,
    )


def test_forged_checkpoints_fail(log: AuditLog, events: Events, tmp_path: Path) -> None:
    fill(log, events(20))
    lines = export_lines(log, tmp_path)
    last_cp = first_entry_line(lines) - 1
    obj = json.loads(lines[last_cp])
    obj["note"] = obj["note"].replace("\n20\n", "\n21\n")
    forged = [*lines[:last_cp], json.dumps(obj) + "\n", *lines[last_cp + 1 :]]
    result = verify_export(forged, [log.signer.verifier])
    assert result.problem is not None
    assert result.problem.kind is ProblemKind.BAD_CHECKPOINT
    # A checkpoint correctly signed, but by a key the verifier does not trust.
    impostor = NoteSigner.generate(ORIGIN)
    obj["note"] = Checkpoint(ORIGIN, 20, log.store.root()).sign(impostor).note
    other = [*lines[:last_cp], json.dumps(obj) + "\n", *lines[last_cp + 1 :]]
    result = verify_export(other, [log.signer.verifier])
    assert result.problem is not None
    assert result.problem.kind is ProblemKind.BAD_CHECKPOINT
    assert verify_export(lines, [impostor.verifier]).problem is not None


def test_truncated_and_extended_exports_fail(log: AuditLog, events: Events, tmp_path: Path) -> None:
    fill(log, events(20))
    lines = export_lines(log, tmp_path)
    result = verify_export(lines[:-3], [log.signer.verifier])
    assert result.problem is not None
    assert (result.problem.kind, result.problem.index) == (ProblemKind.MISSING, 17)
    extra = json.loads(lines[-1])
    extra["index"] = 20
    result = verify_export([*lines, json.dumps(extra) + "\n"], [log.signer.verifier])
    assert result.problem is not None
    assert (result.problem.kind, result.problem.index) == (ProblemKind.UNANCHORED, 20)


def test_archive_keeps_later_proofs_and_segments_verify(
    log: AuditLog, events: Events, tmp_path: Path
) -> None:
    batch = events(60)
    fill(log, batch[:35])
    log.checkpoint()
    archive = log.archive(tmp_path / "archive")
    assert archive is not None
    assert (archive.start, archive.end, archive.removed) == (0, 35, 35)
    assert verify_export_file(archive.path, [log.signer.verifier]).ok
    old_root = log.store.root_at(35)
    fill(log, batch[35:])
    assert log.append_batch(batch[:3]) == [0, 1, 2]  # archived ids are still recognised
    # Proofs that involve archived entries still work against the newest root.
    head = log.checkpoint()
    log.store.inclusion_proof(4, head.size).verify(head.root_hash)
    log.store.consistency_proof(35, head.size).verify(old_root, head.root_hash)
    log.store.consistency_proof(7, head.size).verify(log.store.root_at(7), head.root_hash)
    # The remaining entries export on their own and verify from the frontier.
    second = log.archive(tmp_path / "archive")
    assert second is not None
    assert (second.start, second.end) == (35, 60)
    result = verify_export_file(second.path, [log.signer.verifier])
    assert result.ok, result.problem
    assert result.root_hash == head.root_hash
    assert log.archive(tmp_path / "archive") is None


def test_checkpoint_policy_drives_signing(log: AuditLog, events: Events) -> None:
    clock = log._clock
    assert isinstance(clock, FakeClock)
    log.append_batch(events(5))
    assert log.checkpoint_if_due() is None
    clock.t += 3600
    signed = log.checkpoint_if_due()
    assert signed is not None
    assert signed.size == 5
    assert log.checkpoint_if_due() is None
    log.append_batch(events(5, 15))
    assert log.checkpoint_if_due() is not None


def test_empty_log_and_malformed_lines(log: AuditLog, tmp_path: Path) -> None:
    lines = export_lines(log, tmp_path)  # signs a checkpoint at size 0
    assert len(lines) == 2
    result = verify_export(lines, [log.signer.verifier])
    assert result.ok, result.problem
    assert result.entries_checked == 0
    for bad in ([], ["not json\n"], [lines[0]], [lines[0], "[1]\n"]):
        outcome = verify_export(bad, [log.signer.verifier])
        assert outcome.problem is not None
        assert outcome.problem.kind in (ProblemKind.MALFORMED, ProblemKind.UNANCHORED)


def test_changed_entry_in_an_archive_segment_is_named(
    log: AuditLog, events: Events, tmp_path: Path
) -> None:
    fill(log, events(30))
    log.checkpoint()
    log.archive(tmp_path / "archive")
    fill(log, events(30, 50))
    segment = log.export(tmp_path / "segment.jsonl")
    lines = segment.read_text().splitlines(keepends=True)
    assert json.loads(lines[0])["start"] == 30
    assert verify_export(lines, [log.signer.verifier]).ok
    k = first_entry_line(lines) + 4
    lines[k] = lines[k].replace('"n":34', '"n":35')
    result = verify_export(lines, [log.signer.verifier])
    assert result.problem is not None
    assert (result.problem.kind, result.problem.index) == (ProblemKind.CHANGED, 34)
    # A forged frontier cannot reproduce the signed roots.
    header = json.loads(lines[0])
    header["frontier"][0] = "00" * 32
    forged = [json.dumps(header) + "\n", *segment.read_text().splitlines(keepends=True)[1:]]
    outcome = verify_export(forged, [log.signer.verifier])
    assert outcome.problem is not None
    assert outcome.problem.kind is ProblemKind.ROOT_MISMATCH
