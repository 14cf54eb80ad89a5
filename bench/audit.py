"""Audit log benchmark: durable append throughput, service ingest, and proof latency.

Baseline, in the same run: the same serialized events written to a plain file with one
fsync per batch (the floor any durable log pays). Then the audit service as a process on a
real nats-server (fsync on every write): events signed and published over the secure bus by
another principal, ingested (envelope and publisher signatures checked, appended durably,
acknowledged) — as a backlog drained after a restart and live, end to end; its baseline is
the store's own append rate above. Then proof latency at 1,000,000 entries (the store is
built once in a temp dir).

    uv run python bench/audit.py                 # full size
    uv run python bench/audit.py --quick         # small sizes while developing
    uv run python bench/audit.py --no-service    # skip the service part

Targets (ARCHITECTURE.md §7): ≥ 10,000 events/s durable; proofs < 1 ms at 1M entries.
The last line is ``audit durable/file ratio: <x>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from symbi_audit.event import AuditEvent, sign_event
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


async def bench_service(root: Path, n_events: int, inflight: int) -> tuple[float, float, float]:
    """(backlog ingest ev/s, live end-to-end ev/s, publish ev/s) of the audit service."""
    import nats
    from nats.js.errors import KeyNotFoundError

    from symbi.audit.v1 import audit_pb2, audit_pb2_grpc
    from symbi_common.auditing import to_proto
    from symbi_common.bus import BusEndpoint
    from symbi_common.bus.directory import topic_token
    from symbi_common.bus.permissions import inbox_prefix
    from symbi_common.config import NatsSection
    from symbi_common.grpc import open_channel
    from symbi_common.jetstream import Provisioner
    from symbi_common.jetstream.server import NatsServerConfig, NatsServerProcess
    from symbi_testing.services import ServiceCluster

    server = NatsServerProcess(NatsServerConfig(store_dir=root / "nats", sync_always=True))
    server.start()
    cluster = ServiceCluster(root / "services", server.url, server.monitor_url)
    env = {"SYMBI_LOG_LEVEL": "warning"}
    publisher_id = "svc-bench-audit-pub"
    nc = None
    runner = None
    try:
        audit = await cluster.start_serving("audit", instance="bench", env=env)
        credentials = cluster.authority.issue(publisher_id, "service")
        nc = await nats.connect(server.url, inbox_prefix=inbox_prefix(publisher_id))
        js = nc.jetstream()
        await Provisioner(js, NatsSection()).provision()
        endpoint = await BusEndpoint.open(nc, js, credentials)
        runner = asyncio.create_task(endpoint.run())
        bus = endpoint.bus
        deadline = time.monotonic() + 30
        while True:  # until the platform key is sealed to the audit service too
            try:
                entry = await endpoint.directory.groups_kv.get(f"meta.{topic_token('platform')}")
                state = json.loads(entry.value or b"{}")
                latest = bus.groups.latest("platform")
                if (
                    "svc-audit-bench" in state.get("members", {})
                    and latest is not None
                    and latest[0] == state["generation"]
                ):
                    break
            except KeyNotFoundError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the platform key never reached the audit service")
            await asyncio.sleep(0.05)

        def signed(i: int, run: str) -> object:
            event = AuditEvent.create(
                event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"symbi-bench-audit/{run}/{i}"),
                event_type=("policy.decision", "tool.call", "sandbox.run")[i % 3],
                actor=publisher_id,
                agent_id=f"agent-{i % 1000}",
                details={"decision": "allow", "action": "fs.read", "resource": f"/data/{i}"},
                trace_id=f"{i:032x}",
                compliance_tags=("GDPR",),
            )
            return to_proto(sign_event(event, bus.keys.key_id, bus.keys.signing_key))

        async def publish_all(messages: list[object]) -> float:
            gate = asyncio.Semaphore(inflight)

            async def one(message: object) -> None:
                async with gate:
                    await bus.audit(message)  # type: ignore[arg-type]

            start = time.perf_counter()
            async with asyncio.TaskGroup() as tg:
                for message in messages:
                    tg.create_task(one(message))
            return time.perf_counter() - start

        async def wait_size(stub: object, size: int) -> float:
            while True:
                status = await stub.GetStatus(audit_pb2.GetStatusRequest(), timeout=10)  # type: ignore[attr-defined]
                if status.size >= size:
                    return time.perf_counter()
                await asyncio.sleep(0.02)

        # Backlog: publish while the service is down, then time the drain after a restart.
        audit.stop()
        await publish_all([signed(i, "backlog") for i in range(n_events)])
        audit = await cluster.start_serving("audit", instance="bench", env=env)
        assert audit.grpc_address is not None
        async with open_channel(audit.grpc_address) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            while (await stub.GetStatus(audit_pb2.GetStatusRequest(), timeout=10)).size == 0:  # noqa: ASYNC110 (polls another process)
                await asyncio.sleep(0.005)
            first = time.perf_counter()
            backlog_s = await wait_size(stub, n_events) - first
            # Live: publish with the service running; until the last one is appended.
            live = [signed(i, "live") for i in range(n_events)]
            start = time.perf_counter()
            publish_s = await publish_all(live)
            live_s = await wait_size(stub, 2 * n_events) - start
        return n_events / backlog_s, n_events / live_s, n_events / publish_s
    finally:
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        if nc is not None:
            await nc.close()
        cluster.stop_all()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for development")
    parser.add_argument("--events", type=int, help="events for the throughput runs")
    parser.add_argument("--tree", type=int, help="entries for the proof-latency store")
    parser.add_argument("--service-events", type=int, help="events for the service ingest runs")
    parser.add_argument("--no-service", action="store_true", help="skip the service ingest part")
    args = parser.parse_args()
    n_events = args.events or (20_000 if args.quick else 100_000)
    n_service = args.service_events or (5_000 if args.quick else 20_000)
    n_tree = args.tree or (100_000 if args.quick else 1_000_000)
    rng = random.Random(7)

    with tempfile.TemporaryDirectory(prefix="symbi-bench-audit-") as tmp:
        root = Path(tmp)
        events = [make_event(i) for i in range(n_events)]
        payloads = [e.canonical_bytes for e in events]
        print(f"events: {n_events}, mean canonical size {sum(map(len, payloads)) / n_events:.0f} B")
        print(f"{'batch':>6} {'store ev/s':>12} {'file ev/s':>12} {'ratio':>7}")
        ratio_at_main = 0.0
        store_at_main = 0.0
        for batch in (100, 500, 2000):
            file_s = bench_file(root / f"plain-{batch}.log", payloads, batch)
            store_s = bench_store(root / f"store-{batch}.db", events, batch)
            ratio = file_s / store_s
            print(
                f"{batch:>6} {n_events / store_s:>12,.0f} {n_events / file_s:>12,.0f} {ratio:>7.3f}"
            )
            if batch == 500:
                ratio_at_main = ratio
                store_at_main = n_events / store_s
        del events, payloads

        if not args.no_service:
            backlog, live, published = asyncio.run(
                bench_service(root / "service", n_service, inflight=512)
            )
            print(
                f"service ingest ({n_service:,} events over the secure bus, batches of 500): "
                f"backlog {backlog:,.0f} ev/s, live end-to-end {live:,.0f} ev/s "
                f"(published at {published:,.0f} ev/s)"
            )
            print(
                f"service backlog ingest / store append (batch 500): {backlog / store_at_main:.3f}"
            )

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
