"""The embedded vector store: Qdrant's engine in process through ``qdrant-edge-py``.

One :class:`qdrant_edge.EdgeShard` per collection under a root directory, each with its
own write-ahead log, payload indexes and (after :meth:`EdgeVectorStore.maintain`) an HNSW
graph. The collection's :class:`CollectionSpec` is kept next to the shard so a reopened
store knows the layout it was created with.

Durability: every update is in the shard's WAL before ``upsert`` returns, so a killed
process (``kill -9``) loses nothing it acknowledged; the WAL is not fsynced per write, so a
power loss may lose the last writes, as with a Qdrant server's default settings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import qdrant_edge as qe

from symbi_common.errors import FailedPrecondition, InvalidArgument

from .filters import Condition, Filter, Match, MatchAny, Range
from .vector_store import (
    DENSE_VECTOR,
    KEYWORD_VECTOR,
    CollectionSpec,
    FieldKind,
    ScoredPoint,
    SparseVector,
    StoredPoint,
    VectorPoint,
    check_batch,
    check_limit,
)

__all__ = ["EdgeStoreOptions", "EdgeVectorStore"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_SPEC_FILE = "collection.json"
_SHARD_DIR = "shard"


@dataclass(frozen=True, slots=True)
class EdgeStoreOptions:
    """Tuning of the embedded engine.

    ``optimize_after`` is how many points a collection must receive since its last
    optimisation before :meth:`EdgeVectorStore.maintain` rebuilds its segments and HNSW
    graph; until then new points are searched exactly (plain segments).
    """

    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    hnsw_ef: int = 128
    full_scan_threshold_kb: int = 10_000
    optimize_after: int = 5_000
    search_threads: int = 2

    def __post_init__(self) -> None:
        if self.hnsw_m < 4 or self.hnsw_ef_construct < 8 or self.hnsw_ef < 8:
            raise InvalidArgument(
                "edge store: hnsw_m >= 4, hnsw_ef_construct >= 8 and hnsw_ef >= 8 are required",
                reason="BAD_OPTIONS",
            )
        if self.optimize_after < 1 or self.search_threads < 1:
            raise InvalidArgument(
                "edge store: optimize_after and search_threads must be positive",
                reason="BAD_OPTIONS",
            )


class _Collection:
    def __init__(self, spec: CollectionSpec, shard: qe.EdgeShard) -> None:
        self.spec = spec
        self.shard = shard
        self.unoptimized = 0
        self.optimized_once = False


class EdgeVectorStore:
    """:class:`~symbi_context.vector_store.VectorStore` over embedded Qdrant shards.

    Engine calls run on a small private thread pool so that the event loop never blocks
    on a search or an index build.
    """

    def __init__(self, root: Path | str, options: EdgeStoreOptions | None = None) -> None:
        self._root = Path(root)
        self._options = options or EdgeStoreOptions()
        self._collections: dict[str, _Collection] = {}
        # Searches on one thread, writes and index builds on another: an index build
        # (seconds) never delays a search, and writes stay in order.
        self._read_pool = ThreadPoolExecutor(1, thread_name_prefix="edge-read")
        self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="edge-write")
        self._maintain_lock = asyncio.Lock()
        self._closed = False

    @property
    def root(self) -> Path:
        """The directory holding one sub-directory per collection."""
        return self._root

    async def _run(self, pool: ThreadPoolExecutor, fn: Callable[[], _T]) -> _T:
        if self._closed:
            raise FailedPrecondition("the vector store is closed", reason="STORE_CLOSED")
        return await asyncio.get_running_loop().run_in_executor(pool, fn)

    def _get(self, name: str) -> _Collection:
        col = self._collections.get(name)
        if col is None:
            raise InvalidArgument(
                f"unknown collection {name!r}; open collections: "
                f"{', '.join(sorted(self._collections)) or 'none'}",
                reason="UNKNOWN_COLLECTION",
                details={"collection": name},
            )
        return col

    # ---------------------------------------------------------------- collections

    async def ensure_collection(self, spec: CollectionSpec) -> None:
        """Create the collection, or open it and add any newly declared payload index.

        A different vector dimension than the stored one is a :class:`FailedPrecondition`.
        """
        open_col = self._collections.get(spec.name)
        if open_col is None:
            col = await self._run(self._write_pool, lambda: self._open_or_create(spec))
            self._collections[spec.name] = col
        elif open_col.spec != spec:
            await self._run(self._write_pool, lambda: self._extend(open_col, spec))

    def _extend(self, col: _Collection, spec: CollectionSpec) -> None:
        if col.spec.dimension != spec.dimension:
            raise FailedPrecondition(
                f"collection {spec.name!r} holds {col.spec.dimension}-dimensional vectors; "
                f"cannot open it for {spec.dimension}",
                reason="DIMENSION_MISMATCH",
            )
        for name, kind in spec.fields.items():
            if name not in col.spec.fields:
                col.shard.update(_index_op(spec, name, kind))
        self._write_spec(spec)
        col.spec = spec

    def _write_spec(self, spec: CollectionSpec) -> None:
        spec_path = self._root / spec.name / _SPEC_FILE
        tmp = spec_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(_spec_to_json(spec)))
        tmp.replace(spec_path)

    def _open_or_create(self, spec: CollectionSpec) -> _Collection:
        base = self._root / spec.name
        spec_path = base / _SPEC_FILE
        shard_path = base / _SHARD_DIR
        if spec_path.exists():
            stored = _spec_from_json(json.loads(spec_path.read_text()))
            if stored.dimension != spec.dimension:
                raise FailedPrecondition(
                    f"collection {spec.name!r} holds {stored.dimension}-dimensional vectors; "
                    f"cannot open it for {spec.dimension}",
                    reason="DIMENSION_MISMATCH",
                )
            shard = qe.EdgeShard.load(str(shard_path))
            existing = set(shard.info().payload_schema)
            for name, kind in spec.fields.items():
                if name not in existing:
                    shard.update(_index_op(spec, name, kind))
        else:
            base.mkdir(parents=True, exist_ok=True)
            shard = qe.EdgeShard.create(str(shard_path), self._edge_config(spec))
            for name, kind in spec.fields.items():
                shard.update(_index_op(spec, name, kind))
        self._write_spec(spec)
        col = _Collection(spec, shard)
        col.optimized_once = shard.info().indexed_vectors_count > 0
        return col

    def _edge_config(self, spec: CollectionSpec) -> qe.EdgeConfig:
        o = self._options
        return qe.EdgeConfig(
            vectors={
                DENSE_VECTOR: qe.EdgeVectorParams(size=spec.dimension, distance=qe.Distance.Cosine)
            },
            sparse_vectors={KEYWORD_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=qe.HnswIndexConfig(
                m=o.hnsw_m,
                ef_construct=o.hnsw_ef_construct,
                full_scan_threshold=o.full_scan_threshold_kb,
            ),
            max_search_threads=o.search_threads,
        )

    # ---------------------------------------------------------------- writes

    async def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points; durable (in the WAL) when it returns."""
        col = self._get(collection)
        check_batch(len(points))
        if not points:
            return
        edge_points = [_edge_point(col.spec, p) for p in points]
        op = qe.UpdateOperation.upsert_points(edge_points)
        await self._run(self._write_pool, lambda: col.shard.update(op))
        col.unoptimized += len(points)

    async def set_payload(self, collection: str, point_id: str, values: Mapping[str, Any]) -> None:
        """Merge ``values`` into one point's payload."""
        col = self._get(collection)
        col.spec.check_payload(values)
        op = qe.UpdateOperation.set_payload([_check_id(point_id)], dict(values))
        await self._run(self._write_pool, lambda: col.shard.update(op))

    async def delete(self, collection: str, ids: Sequence[str]) -> None:
        """Delete points by id."""
        col = self._get(collection)
        check_batch(len(ids))
        if not ids:
            return
        op = qe.UpdateOperation.delete_points([_check_id(i) for i in ids])
        await self._run(self._write_pool, lambda: col.shard.update(op))

    async def delete_where(self, collection: str, filter: Filter) -> None:
        """Delete every point matching ``filter``."""
        col = self._get(collection)
        if filter.is_empty():
            raise InvalidArgument(
                "delete_where needs a non-empty filter", reason="EMPTY_DELETE_FILTER"
            )
        col.spec.check_filter(filter)
        op = qe.UpdateOperation.delete_points_by_filter(_edge_filter(filter))
        await self._run(self._write_pool, lambda: col.shard.update(op))

    # ---------------------------------------------------------------- reads

    async def search(
        self,
        collection: str,
        vector: npt.NDArray[np.float32] | Sequence[float],
        *,
        limit: int,
        filter: Filter | None = None,
    ) -> list[ScoredPoint]:
        """Nearest points by cosine similarity."""
        col = self._get(collection)
        check_limit(limit)
        dense = col.spec.check_dense(vector)
        col.spec.check_filter(filter)
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(dense, using=DENSE_VECTOR),
            filter=_edge_filter(filter) if filter else None,
            with_payload=True,
            with_vector=False,
            params=qe.SearchParams(hnsw_ef=max(self._options.hnsw_ef, limit)),
        )
        hits = await self._run(self._read_pool, lambda: col.shard.query(request))
        return [ScoredPoint(str(h.id), float(h.score), h.payload or {}) for h in hits]

    async def keyword_search(
        self,
        collection: str,
        query: SparseVector,
        *,
        limit: int,
        filter: Filter | None = None,
    ) -> list[ScoredPoint]:
        """Points sharing terms with ``query`` (IDF-weighted)."""
        col = self._get(collection)
        check_limit(limit)
        col.spec.check_filter(filter)
        if query.is_empty():
            return []
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(
                qe.SparseVector(list(query.indices), list(query.values)), using=KEYWORD_VECTOR
            ),
            filter=_edge_filter(filter) if filter else None,
            with_payload=True,
            with_vector=False,
        )
        hits = await self._run(self._read_pool, lambda: col.shard.query(request))
        return [ScoredPoint(str(h.id), float(h.score), h.payload or {}) for h in hits]

    async def get(self, collection: str, ids: Sequence[str]) -> list[StoredPoint]:
        """Points by id; missing ids are skipped."""
        col = self._get(collection)
        check_batch(len(ids))
        if not ids:
            return []
        edge_ids: list[qe.PointId] = [_check_id(i) for i in ids]
        records = await self._run(
            self._read_pool, lambda: col.shard.retrieve(edge_ids, True, False)
        )
        return [StoredPoint(str(r.id), r.payload or {}) for r in records]

    async def scroll(
        self,
        collection: str,
        *,
        filter: Filter | None = None,
        limit: int = 100,
        offset: str | None = None,
    ) -> tuple[list[StoredPoint], str | None]:
        """A page of points in id order and the next page's offset."""
        col = self._get(collection)
        check_limit(limit)
        col.spec.check_filter(filter)
        request = qe.ScrollRequest(
            offset=_check_id(offset) if offset else None,
            limit=limit,
            filter=_edge_filter(filter) if filter else None,
            with_payload=True,
            with_vector=False,
        )
        records, next_offset = await self._run(self._read_pool, lambda: col.shard.scroll(request))
        page = [StoredPoint(str(r.id), r.payload or {}) for r in records]
        return page, (str(next_offset) if next_offset is not None else None)

    async def count(self, collection: str, *, filter: Filter | None = None) -> int:
        """Exact number of points matching ``filter``."""
        col = self._get(collection)
        col.spec.check_filter(filter)
        request = qe.CountRequest(exact=True, filter=_edge_filter(filter) if filter else None)
        return int(await self._run(self._read_pool, lambda: col.shard.count(request)))

    # ---------------------------------------------------------------- housekeeping

    async def maintain(self) -> None:
        """Optimise collections that received ``optimize_after`` points since the last
        run: merges segments and builds their HNSW graph (blocking a worker thread, not
        the event loop; searches keep running meanwhile)."""
        async with self._maintain_lock:
            for col in list(self._collections.values()):
                if col.unoptimized >= self._options.optimize_after:
                    await self.optimize(col.spec.name)

    async def optimize(self, collection: str) -> None:
        """Build the collection's HNSW graph now (seconds for 100k points)."""
        col = self._get(collection)
        pending = col.unoptimized
        changed = await self._run(self._write_pool, col.shard.optimize)
        col.unoptimized = max(0, col.unoptimized - pending)
        col.optimized_once = True
        log.info("optimized collection %s (changed=%s)", collection, changed)

    async def aclose(self) -> None:
        """Flush and close every shard; idempotent."""
        if self._closed:
            return
        cols = list(self._collections.values())

        def close_all() -> None:
            for col in cols:
                col.shard.flush()
                col.shard.close()

        try:
            await asyncio.get_running_loop().run_in_executor(self._write_pool, close_all)
        finally:
            self._closed = True
            self._collections.clear()
            self._read_pool.shutdown(wait=True)
            self._write_pool.shutdown(wait=True)


# ---------------------------------------------------------------- translation


def _check_id(point_id: str) -> str:
    try:
        return str(uuid.UUID(point_id))
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument(
            f"point id {point_id!r} is not a UUID", reason="BAD_POINT_ID"
        ) from None


def _edge_point(spec: CollectionSpec, point: VectorPoint) -> qe.Point:
    spec.check_payload(point.payload)
    vectors: dict[str, Any] = {DENSE_VECTOR: spec.check_dense(point.dense)}
    if point.keywords is not None and not point.keywords.is_empty():
        vectors[KEYWORD_VECTOR] = qe.SparseVector(
            list(point.keywords.indices), list(point.keywords.values)
        )
    return qe.Point(_check_id(point.id), vectors, dict(point.payload))


_SCHEMA = {
    FieldKind.INTEGER: qe.PayloadSchemaType.Integer,
    FieldKind.FLOAT: qe.PayloadSchemaType.Float,
}


def _index_op(spec: CollectionSpec, name: str, kind: FieldKind) -> qe.UpdateOperation:
    if kind is FieldKind.KEYWORD:
        params = qe.KeywordIndexParams(is_tenant=name == spec.tenant_field)
        return qe.UpdateOperation.create_field_index(name, params)
    return qe.UpdateOperation.create_field_index(name, _SCHEMA[kind])


def _edge_filter(flt: Filter) -> qe.Filter:
    def conds(items: tuple[Condition, ...]) -> list[Any] | None:
        return [_edge_condition(c) for c in items] or None

    return qe.Filter(must=conds(flt.must), should=conds(flt.should), must_not=conds(flt.must_not))


def _edge_condition(cond: Condition) -> Any:
    if isinstance(cond, Filter):
        return _edge_filter(cond)
    if isinstance(cond, Match):
        return qe.FieldCondition(cond.key, match=qe.MatchValue(cond.value))
    if isinstance(cond, MatchAny):
        return qe.FieldCondition(cond.key, match=qe.MatchAny(cond.as_list()))
    if isinstance(cond, Range):
        return qe.FieldCondition(
            cond.key, range=qe.RangeFloat(gte=cond.gte, gt=cond.gt, lte=cond.lte, lt=cond.lt)
        )
    return qe.HasIdCondition({_check_id(i) for i in cond.ids})


def _spec_to_json(spec: CollectionSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "dimension": spec.dimension,
        "fields": {k: v.value for k, v in spec.fields.items()},
        "tenant_field": spec.tenant_field,
    }


def _spec_from_json(data: Mapping[str, Any]) -> CollectionSpec:
    return CollectionSpec(
        name=data["name"],
        dimension=int(data["dimension"]),
        fields={k: FieldKind(v) for k, v in data["fields"].items()},
        tenant_field=data.get("tenant_field"),
    )
