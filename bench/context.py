"""Context service benchmark: vector search at scale, memory retrieval, RAG latency.

1. Top-10 vector search over ``--size`` 384-d vectors (default 1M) in the embedded engine
   (qdrant-edge HNSW through EdgeVectorStore) against numpy brute force in the same run,
   with recall@10 of HNSW against the brute-force truth. Vectors are synthetic and
   clustered (1000 Gaussian clusters on the unit sphere), like real embeddings and unlike
   uniform noise, which no ANN index handles well.
2. Memory retrieval at ``--memories`` memories (default 100k; 100 agents): MemoryStore.retrieve
   end to end (query embedding with the real ONNX MiniLM, hybrid search, policy, ranking).
   Stored vectors are real embeddings of 2000 generated sentences, jittered per copy.
3. RAG end to end (extractive) over the same memories plus a small knowledge base.
4. The service process (``python -m symbi_context``, default ONNX MiniLM, embedded store,
   a real nats-server): ``--service-memories`` memories stored over gRPC in batches, then
   RetrieveContext and Ask over gRPC, and retrieval over the secure bus from a node principal
   (contract C4: signed, encrypted request and reply). No policy service runs, so
   retrievals see only the agent's own memory (as with no permit).

Defaults are sized for a few minutes on two cores (``--size 100000``); the 1M-vector figures
in docs/context.md come from ``--size 1000000 --memories 100000`` (about 25 minutes, most of
it building the HNSW graph).

Prints progress to stderr; the last line is
``context search_p99_ms: <x> speedup_vs_numpy: <y> recall@10: <z>``.
Quick run: ``uv run python bench/context.py --size 20000 --memories 5000 --service-memories 500``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from symbi_context import (
    ClearancePolicy,
    DocumentFormat,
    EdgeStoreOptions,
    EdgeVectorStore,
    KnowledgeBase,
    MemoryKind,
    MemoryQuery,
    MemoryStore,
    NewDocument,
    OnnxMiniLmEmbedder,
    RagPipeline,
    VectorPoint,
)
from symbi_context.keywords import KeywordEncoder
from symbi_context.layout import MEMORIES
from symbi_context.memory import MemoryRecord
from symbi_context.vector_store import CollectionSpec

DIM = 384


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def clustered(n: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    idx = rng.integers(0, len(centers), n)
    x = centers[idx] + rng.standard_normal((n, DIM), dtype=np.float32) * 0.045
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


# ---------------------------------------------------------------- 1. vector search


async def vector_search(size: int, queries: int, root: Path) -> tuple[float, float, float]:
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((1000, DIM), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    store = EdgeVectorStore(root / "vectors", EdgeStoreOptions(hnsw_ef=128))
    spec = CollectionSpec(name="bench", dimension=DIM)
    await store.ensure_collection(spec)
    data = np.empty((size, DIM), dtype=np.float32)
    t0 = time.perf_counter()
    batch = 1024
    for start in range(0, size, batch):
        n = min(batch, size - start)
        x = clustered(n, rng, centers)
        data[start : start + n] = x
        await store.upsert(
            "bench",
            [VectorPoint(str(uuid.UUID(int=start + i + 1)), x[i], {}) for i in range(n)],
        )
        if (start // batch) % 100 == 0:
            log(f"  inserted {start + n:,}/{size:,} ({time.perf_counter() - t0:.0f}s)")
    insert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    await store.optimize("bench")
    build_s = time.perf_counter() - t0
    log(f"  insert {insert_s:.0f}s ({size / insert_s:,.0f}/s), HNSW build {build_s:.0f}s")

    qs = clustered(queries, rng, centers)
    for q in qs[:10]:  # warm-up
        await store.search("bench", q, limit=10)
    hnsw_ms: list[float] = []
    hnsw_ids: list[list[int]] = []
    for q in qs:
        t = time.perf_counter()
        hits = await store.search("bench", q, limit=10)
        hnsw_ms.append((time.perf_counter() - t) * 1e3)
        hnsw_ids.append([uuid.UUID(h.id).int - 1 for h in hits])

    brute_n = min(queries, 50 if size >= 500_000 else queries)
    numpy_ms: list[float] = []
    recall: list[float] = []
    for i, q in enumerate(qs):
        t = time.perf_counter()
        scores = data @ q
        top = np.argpartition(-scores, 10)[:10]
        top = top[np.argsort(-scores[top])]
        if i < brute_n:
            numpy_ms.append((time.perf_counter() - t) * 1e3)
        recall.append(len(set(top.tolist()) & set(hnsw_ids[i])) / 10)
    await store.aclose()
    p99 = pct(hnsw_ms, 99)
    speedup = statistics.mean(numpy_ms) / statistics.mean(hnsw_ms)
    r10 = statistics.mean(recall)
    print(
        f"vector search @ {size:,} x {DIM}: HNSW p50 {pct(hnsw_ms, 50):.2f} ms, p99 {p99:.2f} ms, "
        f"mean {statistics.mean(hnsw_ms):.2f} ms | numpy brute force mean "
        f"{statistics.mean(numpy_ms):.1f} ms, p99 {pct(numpy_ms, 99):.1f} ms | "
        f"speedup {speedup:.1f}x | recall@10 {r10:.3f} | insert {size / insert_s:,.0f}/s, "
        f"HNSW build {build_s:.0f}s"
    )
    return p99, speedup, r10


# ---------------------------------------------------------------- 2 + 3. memory and RAG

_SUBJECTS = [
    "the build server",
    "the staging database",
    "our billing service",
    "the new intern",
    "the red team",
    "the garden robot",
    "the marketing site",
    "the nightly backup",
    "the customer portal",
    "the payment gateway",
    "the research cluster",
    "the mobile app",
]
_VERBS = [
    "failed during",
    "finished",
    "was migrated to",
    "was paused before",
    "needs review after",
    "reported errors in",
    "was upgraded for",
    "was scheduled for",
    "blocked",
    "sped up",
]
_OBJECTS = [
    "the quarterly release",
    "the security audit",
    "the Kubernetes upgrade",
    "the data export",
    "the load test",
    "the holiday freeze",
    "the schema change",
    "the disaster drill",
    "the invoice run",
    "the onboarding week",
    "the cost review",
    "the API deprecation",
]
_TAILS = [
    "on Monday",
    "after lunch",
    "in the Frankfurt region",
    "with two retries",
    "under heavy load",
    "without warning",
    "as planned",
    "ahead of schedule",
    "behind schedule",
    "for the third time",
]


def sentences(n: int, rng: random.Random) -> list[str]:
    out = set()
    while len(out) < n:
        out.add(
            f"{rng.choice(_SUBJECTS).capitalize()} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_TAILS)}."
        )
    return sorted(out)


async def memory_and_rag(n_mem: int, queries: int, root: Path) -> None:
    rng = random.Random(11)
    nrng = np.random.default_rng(11)
    embedder = OnnxMiniLmEmbedder()
    base = sentences(2000, rng)
    t0 = time.perf_counter()
    base_vecs = embedder.embed_sync(base)
    log(f"  embedded {len(base)} sentences in {time.perf_counter() - t0:.1f}s")

    store = EdgeVectorStore(root / "memory", EdgeStoreOptions())
    policy = ClearancePolicy()
    memory = MemoryStore(store, embedder, policy)
    knowledge = KnowledgeBase(store, embedder, policy)
    await memory.open()
    await knowledge.open()
    kw = KeywordEncoder()
    now = time.time()
    agents = [f"agent-{i:03d}" for i in range(100)]
    kinds = [MemoryKind.LONG_TERM, MemoryKind.LONG_TERM, MemoryKind.SHORT_TERM, MemoryKind.SHARED]
    t0 = time.perf_counter()
    for start in range(0, n_mem, 1024):
        points = []
        for i in range(start, min(n_mem, start + 1024)):
            j = i % len(base)
            vec = base_vecs[j] + nrng.standard_normal(DIM).astype(np.float32) * 0.01
            kind = kinds[i % len(kinds)]
            rec = MemoryRecord(
                id=str(uuid.uuid4()),
                agent_id=agents[i % len(agents)],
                kind=kind,
                content=base[j],
                tags=(f"t{i % 20}",),
                created_at=now - (i % 5000) * 60.0,
                expires_at=now + 3600 if kind is MemoryKind.SHORT_TERM else None,
                task_id=None,
                importance=0.5,
                access_count=0,
                last_accessed_at=now,
                feedback=0.0,
                access_level=None
                if kind is not MemoryKind.SHARED
                else __import__("symbi_context").AccessLevel.PUBLIC,
                metadata={},
            )
            points.append(VectorPoint(rec.id, vec, rec.payload(), kw.document(rec.content)))
        await store.upsert(MEMORIES, points)
    log(f"  stored {n_mem:,} memories in {time.perf_counter() - t0:.0f}s")
    docs = sentences(400, random.Random(5))
    for d in range(40):
        body = " ".join(docs[d * 10 : d * 10 + 10])
        await knowledge.ingest("ops", NewDocument(body, DocumentFormat.TEXT, title=f"Ops log {d}"))
    t0 = time.perf_counter()
    await store.optimize(MEMORIES)
    log(f"  optimized memories in {time.perf_counter() - t0:.0f}s")

    qtexts = [
        f"what happened with {rng.choice(_OBJECTS)[4:]} and {rng.choice(_SUBJECTS)[4:]}?"
        for _ in range(queries)
    ]
    for q in qtexts[:5]:
        await memory.retrieve(agents[0], MemoryQuery(q, limit=10))
    ret_ms = []
    for i, q in enumerate(qtexts):
        t = time.perf_counter()
        await memory.retrieve(agents[i % len(agents)], MemoryQuery(q, limit=10))
        ret_ms.append((time.perf_counter() - t) * 1e3)
    print(
        f"memory retrieval @ {n_mem:,} memories (real MiniLM query embedding, hybrid, policy, "
        f"ranking): avg {statistics.mean(ret_ms):.1f} ms, p50 {pct(ret_ms, 50):.1f} ms, "
        f"p99 {pct(ret_ms, 99):.1f} ms (target avg < 50 ms)"
    )
    rag = RagPipeline(memory, knowledge)
    rag_ms = []
    for i, q in enumerate(qtexts):
        t = time.perf_counter()
        answer = await rag.ask(agents[i % len(agents)], q)
        rag_ms.append((time.perf_counter() - t) * 1e3)
        assert answer.sources, "RAG returned no sources"
    print(
        f"RAG end to end (extractive) @ {n_mem:,} memories + 40 documents: avg "
        f"{statistics.mean(rag_ms):.1f} ms, p50 {pct(rag_ms, 50):.1f} ms, p99 {pct(rag_ms, 99):.1f} ms "
        "(target < 500 ms)"
    )
    await store.aclose()


async def service_bench(n_mem: int, queries: int, root: Path) -> None:
    import nats

    from symbi.context.v1 import context_pb2 as pb
    from symbi.context.v1 import context_pb2_grpc as pb_grpc
    from symbi_common.bus import BusEndpoint
    from symbi_common.bus.permissions import inbox_prefix
    from symbi_common.grpc import open_channel
    from symbi_common.jetstream.server import NatsServerConfig, NatsServerProcess
    from symbi_testing.services import ServiceCluster

    rng = random.Random(23)
    texts = sentences(max(n_mem, 100), rng)[:n_mem]
    # Every agent gets at least one batch of 64 memories.
    agents = [f"agent-bench{i:07d}" for i in range(max(1, min(10, n_mem // 64)))]
    server = NatsServerProcess(NatsServerConfig(store_dir=root / "nats"))
    server.start()
    cluster = ServiceCluster(root / "services", server.url, server.monitor_url)
    try:
        t0 = time.perf_counter()
        proc = await cluster.start_serving(
            "context", instance="bench", env={"SYMBI_CONTEXT__EMBEDDING_KIND": "minilm"}
        )
        log(f"  service serving in {time.perf_counter() - t0:.1f}s (model load included)")
        assert proc.grpc_address is not None
        async with open_channel(proc.grpc_address) as channel:
            stub = pb_grpc.ContextServiceStub(channel)
            t0 = time.perf_counter()
            for start in range(0, n_mem, 64):
                batch = texts[start : start + 64]
                await stub.StoreContext(
                    pb.StoreContextRequest(
                        agent_id=agents[(start // 64) % len(agents)],
                        items=[pb.MemoryItem(content=t) for t in batch],
                    ),
                    timeout=120,
                )
            store_s = time.perf_counter() - t0
            qtexts = [f"what happened with {rng.choice(_OBJECTS)[4:]}?" for _ in range(queries)]
            for q in qtexts[:5]:
                await stub.RetrieveContext(pb.RetrieveContextRequest(agent_id=agents[0], query=q))
            ret_ms, ask_ms = [], []
            for i, q in enumerate(qtexts):
                agent = agents[i % len(agents)]
                t = time.perf_counter()
                await stub.RetrieveContext(
                    pb.RetrieveContextRequest(agent_id=agent, query=q, limit=10), timeout=30
                )
                ret_ms.append((time.perf_counter() - t) * 1e3)
                t = time.perf_counter()
                reply = await stub.Ask(pb.AskRequest(agent_id=agent, question=q), timeout=30)
                ask_ms.append((time.perf_counter() - t) * 1e3)
                assert reply.sources, "Ask returned no sources"

        principal = "node-bench"
        credentials = cluster.authority.issue(principal, "node")
        nc = await nats.connect(server.url, inbox_prefix=inbox_prefix(principal))
        endpoint = await BusEndpoint.open(nc, nc.jetstream(), credentials)
        runner = asyncio.create_task(endpoint.run())
        try:
            deadline = time.monotonic() + 30
            while endpoint.bus.groups.latest("platform") is None:
                assert time.monotonic() < deadline, "no platform group key for the bench node"
                await asyncio.sleep(0.05)
            bus_ms = []
            for i, q in enumerate(qtexts):
                t = time.perf_counter()
                reply_msg = await endpoint.bus.request(
                    "symbi.rpc.context.retrieve",
                    pb.RetrieveContextRequest(agent_id=agents[i % len(agents)], query=q),
                    topic="platform",
                    timeout=30,
                )
                reply_msg.parse(pb.RetrieveContextResponse)
                bus_ms.append((time.perf_counter() - t) * 1e3)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await nc.close()
    finally:
        cluster.stop_all()
        server.stop()
    print(
        f"service: StoreContext over gRPC {n_mem / store_s:,.0f} memories/s (batches of 64, "
        f"MiniLM embedding included); at {n_mem:,} memories RetrieveContext avg "
        f"{statistics.mean(ret_ms):.1f} ms, p50 {pct(ret_ms, 50):.1f} ms, p99 {pct(ret_ms, 99):.1f} "
        f"ms; Ask avg {statistics.mean(ask_ms):.1f} ms, p99 {pct(ask_ms, 99):.1f} ms; retrieve "
        f"over the secure bus (node principal, C4) avg {statistics.mean(bus_ms):.1f} ms, p99 "
        f"{pct(bus_ms, 99):.1f} ms"
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100_000, help="vectors for the search benchmark")
    ap.add_argument("--memories", type=int, default=100_000, help="memories for retrieval/RAG")
    ap.add_argument(
        "--service-memories", type=int, default=5_000, help="memories stored in the service"
    )
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="symbi-bench-context-") as tmp:
        root = Path(tmp)
        log(f"memory retrieval and RAG at {args.memories:,} memories")
        await memory_and_rag(args.memories, args.queries, root)
        log(f"the service process at {args.service_memories:,} memories")
        await service_bench(args.service_memories, args.queries, root)
        log(f"vector search at {args.size:,} vectors")
        p99, speedup, recall = await vector_search(args.size, args.queries, root)
    print(
        f"context search_p99_ms: {p99:.2f} speedup_vs_numpy: {speedup:.1f} recall@10: {recall:.3f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
