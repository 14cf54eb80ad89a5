"""Kill -9 a process appending 10,000 events; nothing acknowledged is lost or duplicated."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from symbi_audit.checkpoint import Checkpoint
from symbi_audit.export import export_to_file
from symbi_audit.note import NoteSigner
from symbi_audit.store import AuditStore
from symbi_audit.verify import verify_export_file

TOTAL = 10_000
BATCH = 100
WRITER = Path(__file__).with_name("crash_writer.py")


def _writer_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_crash_writer", WRITER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_and_kill(store_path: Path, kill_after_acks: int) -> list[tuple[int, int, int]]:
    """Start the writer, SIGKILL it right after its N-th ack; return the acks it printed."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(store_path), str(TOTAL), str(BATCH)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acks: list[tuple[int, int, int]] = []
    deadline = time.monotonic() + 90
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("ACK"):
                _, first, last, start = line.split()
                acks.append((int(first), int(last), int(start)))
                if len(acks) >= kill_after_acks:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            assert time.monotonic() < deadline, "writer too slow"
        # Acks already written to the pipe before the kill count as acknowledged too.
        rest, _ = proc.communicate(timeout=30)
        for line in rest.splitlines():
            if line.startswith("ACK"):
                _, first, last, start = line.split()
                acks.append((int(first), int(last), int(start)))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode in (-signal.SIGKILL, 0), proc.stderr.read() if proc.stderr else ""
    return acks


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_batch_and_resend_never_duplicates(tmp_path: Path) -> None:
    writer = _writer_module()
    events = writer.make_events(TOTAL)
    store_path = tmp_path / "audit.db"
    acknowledged: dict[int, int] = {}  # event number -> index the log acknowledged

    for kill_after in (17, 64):  # the second writer re-sends from event 0 and goes further
        acks = _run_and_kill(store_path, kill_after)
        assert len(acks) >= kill_after
        for first, last, start in acks:
            for offset, index in enumerate(range(first, last + 1)):
                number = start + offset
                assert acknowledged.setdefault(number, index) == index, "an ack moved"
        with AuditStore.open(store_path, origin=writer.ORIGIN) as store:
            assert store.size >= len(acknowledged)
            for number, index in acknowledged.items():
                assert store.get(index).event == events[number]
            assert store.verify_range(0).ok

    with AuditStore.open(store_path, origin=writer.ORIGIN) as store:
        before = store.size
        for start in range(0, TOTAL, 500):
            indices = store.append_batch(events[start : start + 500])
            assert indices == list(range(start, start + len(indices)))
        assert store.size == TOTAL
        assert before < TOTAL
        rows = store._reader().execute("SELECT count(*), count(DISTINCT event_id) FROM entries")
        assert rows.fetchone() == (TOTAL, TOTAL)
        for number, index in acknowledged.items():
            assert index == number
        # Chain and tree verify, in the store and offline from an export.
        check = store.verify_range(0)
        assert check.ok, check
        signer = NoteSigner.generate(writer.ORIGIN)
        signed = Checkpoint(writer.ORIGIN, TOTAL, store.root()).sign(signer)
        store.add_checkpoint(signed)
        export = tmp_path / "export.jsonl"
        export_to_file(store, export, log_key=signer.verifier)
    result = verify_export_file(export, [signer.verifier])
    assert result.ok, result.problem
    assert result.entries_checked == TOTAL
