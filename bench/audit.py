"""Audit log benchmark: durable append throughput and proof latency.

Baseline, in the same run: the same serialized events written to a plain file with one
fsync per batch (the floor any durable log pays). Then proof latency at 1,000,000 entries
(the store is built once in a temp dir).

    uv run python bench/audit.py                 # full size
    uv run python bench/audit.py --quick         # small sizes while developing

Targets (ARCHITECTURE.md §7): ≥ 10,000 events/s durable; proofs < 1 ms at 1M entries.
The last line is ``audit durable/file ratio: <x>``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from symbi_audit.event import AuditEvent
from symbi_audit.merkle import verify_consistency, verify_inclusion
from symbi_audit.store import AuditStore

ORIGIN = "bench.symbi/audit"
_BASE = datetime(2026, 1, 1, tzinfo=UTC)


def make_event(i: int) -> AuditEvent:
    """A typical event (~370 bytes canonical): a policy decision with a few details."""
    return AuditEvent.create(
        event_id=uuid.UUID(int=(0x5EED << 64) | i),
        timestamp=_BASE + timedelta(milliseconds=i),
        event_type=("policy.decision", "tool.call", "sandbox.run")[i % 3],
        actor="svc:policy",
        agent_id=f"agent-{i % 1000}",
        details={"decision": "allow", "action": "fs.read", "resource": f"/data/{i}"},
        trace_id=f"{i:032x}",
        compliance_tags=("GDPR",),
    )


def bench_file(path: Path, payloads: list[bytes], batch: int) -> float:
    """Seconds to append payloads to a plain file, one write + fsync per batch."""
    start = time.perf_counter()
    with path.open("ab") as f:
        for i in range(0, len(payloads), batch):
            f.write(b"".join(p + b"\n" for p in payloads[i : i + batch]))
            f.flush()
            os.fsync(f.fileno())
    return time.perf_counter() - start


def bench_store(path: Path, events: list[AuditEvent], batch: int) -> float:
    """Seconds to append events to the audit store (durable on return of each batch)."""
    with AuditStore.open(path, origin=ORIGIN) as store:
        start = time.perf_counter()
        for i in range(0, len(events), batch):
            store.append_batch(events[i : i + batch])
        return time.perf_counter() - start


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]


def timed(fn: Callable[[], object], n: int) -> tuple[list[float], list[float]]:
    """Wall and CPU microseconds per call. On a shared machine the wall tail is mostly
    time spent preempted; the CPU-time tail shows what the call itself costs."""
    wall, cpu = [], []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t) * 1e6)
        cpu.append((time.process_time() - c) * 1e6)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for development")
    parser.add_argument("--events", type=int, help="events for the throughput runs")
    parser.add_argument("--tree", type=int, help="entries for the proof-latency store")
    args = parser.parse_args()
    n_events = args.events or (20_000 if args.quick else 100_000)
    n_tree = args.tree or (100_000 if args.quick else 1_000_000)
    rng = random.Random(7)

    with tempfile.TemporaryDirectory(prefix="symbi-bench-audit-") as tmp:
        root = Path(tmp)
        events = [make_event(i) for i in range(n_events)]
        payloads = [e.canonical_bytes for e in events]
        print(f"events: {n_events}, mean canonical size {sum(map(len, payloads)) / n_events:.0f} B")
        print(f"{'batch':>6} {'store ev/s':>12} {'file ev/s':>12} {'ratio':>7}")
        ratio_at_main = 0.0
        for batch in (100, 500, 2000):
            file_s = bench_file(root / f"plain-{batch}.log", payloads, batch)
            store_s = bench_store(root / f"store-{batch}.db", events, batch)
            ratio = file_s / store_s
            print(
                f"{batch:>6} {n_events / store_s:>12,.0f} {n_events / file_s:>12,.0f} {ratio:>7.3f}"
            )
            if batch == 500:
                ratio_at_main = ratio
        del events, payloads

        # Proof latency at n_tree entries: build once, in batches, events made on the fly.
        db = root / "tree.db"
        build_start = time.perf_counter()
        with AuditStore.open(db, origin=ORIGIN) as store:
            for i in range(0, n_tree, 1000):
                store.append_batch(
                    [make_event(n_events + j) for j in range(i, min(i + 1000, n_tree))]
                )
        print(f"built {n_tree:,} entries in {time.perf_counter() - build_start:.1f} s")
        print(f"store file: {db.stat().st_size / 1e6:.0f} MB")
        with AuditStore.open(db, origin=ORIGIN) as store:
            size, head = store.tree_head()
            for _ in range(200):  # warm the connection's page cache, as a running service has
                store.inclusion_proof(rng.randrange(size), size)
                store.consistency_proof(rng.randrange(1, size), size)
            indices = [rng.randrange(size) for _ in range(2000)]
            olds = [rng.randrange(1, size) for _ in range(2000)]
            it_i = iter(indices)
            it_o = iter(olds)
            inc = timed(lambda: store.inclusion_proof(next(it_i), size), 2000)
            con = timed(lambda: store.consistency_proof(next(it_o), size), 2000)
            proof = store.inclusion_proof(indices[0], size)
            verify_inclusion(proof.leaf_hash, proof.index, size, proof.hashes, head)
            cproof = store.consistency_proof(olds[0], size)
            verify_consistency(olds[0], size, cproof.hashes, store.root_at(olds[0]), head)
            ver = timed(
                lambda: verify_inclusion(proof.leaf_hash, proof.index, size, proof.hashes, head),
                2000,
            )
            old_roots = timed(lambda: store.root_at(rng.randrange(1, size)), 2000)
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        for name, (wall, cpu) in (
            ("inclusion proof", inc),
            ("consistency proof", con),
            ("root at old size", old_roots),
            ("verify inclusion", ver),
        ):
            p50, p99 = percentiles(wall)
            c50, c99 = percentiles(cpu)
            print(
                f"{name:>18} at {n_tree:,}: wall p50 {p50:7.1f} µs p99 {p99:7.1f} µs"
                f" | cpu p50 {c50:7.1f} µs p99 {c99:7.1f} µs"
            )
    print(f"audit durable/file ratio: {ratio_at_main:.3f}")


if __name__ == "__main__":
    main()
