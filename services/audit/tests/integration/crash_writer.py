"""Child process of the crash test: appends events in batches and reports each ack.

Usage: python crash_writer.py STORE_PATH TOTAL BATCH

Prints ``ACK <first index> <last index> <first event number>`` after every batch that
``append_batch`` returned (i.e. acknowledged as durable), then keeps going until killed or
done. Events are deterministic, so a restarted writer re-sends exactly the same ones.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta

from symbi_audit.event import AuditEvent
from symbi_audit.store import AuditStore

ORIGIN = "audit.symbi.test/crash"
_BASE = datetime(2026, 3, 1, tzinfo=UTC)


def make_events(total: int) -> list[AuditEvent]:
    """Event ``i`` is the same in every process."""
    return [
        AuditEvent.create(
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"symbi-crash/{i}"),
            timestamp=_BASE + timedelta(milliseconds=i),
            event_type="tool.call",
            actor="svc:mcp-gateway",
            agent_id=f"agent-{i % 17}",
            details={"i": i, "tool": "fs.read", "path": f"/data/{i}"},
            compliance_tags=("SOX",),
        )
        for i in range(total)
    ]


def main() -> None:
    path, total, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    events = make_events(total)
    with AuditStore.open(path, origin=ORIGIN) as store:
        for start in range(0, total, batch):
            indices = store.append_batch(events[start : start + batch])
            print(f"ACK {indices[0]} {indices[-1]} {start}", flush=True)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
