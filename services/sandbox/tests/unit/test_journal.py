"""The dispatch journal: what survives a crash, and what compaction forgets."""

from __future__ import annotations

import time
from pathlib import Path

from symbi.bus.v1 import events_pb2
from symbi_sandbox.journal import DispatchJournal, DispatchRecord

State = events_pb2.TaskStatus.State


def record(dispatch_id: str, *, not_after_ms: int = 0, age_s: float = 0) -> DispatchRecord:
    at = int((time.time() - age_s) * 1000)
    return DispatchRecord(dispatch_id, dispatch_id.split("-")[0], "agent-1", 1, not_after_ms, at)


def status(dispatch_id: str, state: int) -> events_pb2.TaskStatus:
    return events_pb2.TaskStatus(
        task_id=dispatch_id.split("-")[0], dispatch_id=dispatch_id, state=state
    )


async def test_recovery_after_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = DispatchJournal(path, retention_s=3600)
    await journal.open()
    await journal.accept(record("a-1"))
    await journal.accept(record("b-1"))
    started = await journal.record_status(status("a-1", State.STATE_STARTED), final=False)
    await journal.mark_sent(started.seq)
    await journal.record_status(status("b-1", State.STATE_REFUSED), final=True)
    # no aclose: the process died; a torn last line is ignored
    with path.open("a") as handle:
        handle.write('{"k":"status","d":"a-1","q":9')

    again = DispatchJournal(path, retention_s=3600)
    recovery = await again.open()
    assert [r.dispatch_id for r in recovery.unfinished] == ["a-1"]
    assert [(s.status.dispatch_id, s.final) for s in recovery.unsent] == [("b-1", True)]
    assert again.known("a-1")
    assert again.known("b-1")
    later = await again.record_status(status("a-1", State.STATE_LOST), final=True)
    assert later.seq > recovery.unsent[0].seq  # sequence numbers never go back
    await again.aclose()


async def test_compaction_forgets_only_what_can_no_longer_matter(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = DispatchJournal(path, retention_s=60)
    await journal.open()
    past = int(time.time() * 1000) - 10 * 60_000
    await journal.accept(record("expired-1", not_after_ms=past))  # ended, order can't return
    await journal.accept(record("old-1", age_s=120))  # ended, past the retention
    await journal.accept(record("recent-1"))  # ended, still within the retention
    await journal.accept(record("open-1", age_s=120))  # never ended
    await journal.accept(record("unsent-1", age_s=120))  # ended, status not published
    for dispatch_id in ("expired-1", "old-1", "recent-1"):
        entry = await journal.record_status(status(dispatch_id, State.STATE_SUCCEEDED), final=True)
        await journal.mark_sent(entry.seq)
    await journal.record_status(status("unsent-1", State.STATE_FAILED), final=True)
    await journal.aclose()

    reopened = DispatchJournal(path, retention_s=60)
    recovery = await reopened.open()
    kept = {
        d for d in ("expired-1", "old-1", "recent-1", "open-1", "unsent-1") if reopened.known(d)
    }
    assert kept == {"recent-1", "open-1", "unsent-1"}
    assert [r.dispatch_id for r in recovery.unfinished] == ["open-1"]
    assert len(path.read_text().splitlines()) < 12
    await reopened.aclose()
