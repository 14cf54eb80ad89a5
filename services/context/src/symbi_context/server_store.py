"""The server vector store: a Qdrant server through ``qdrant-client`` (``QDRANT_URL``).

Same collection layout as the embedded store (named dense vector ``dense`` with cosine
distance, sparse ``keywords`` with the IDF modifier, payload indexes for the declared
fields), same checks before anything is sent, so both satisfy one contract. Collection
names on the server carry a prefix (default ``symbi_``) so Symbi can share a server.

Every call carries a deadline (``timeout_s``); transport failures become
:class:`~symbi_common.errors.Unavailable` and expired deadlines
:class:`~symbi_common.errors.DeadlineExceeded`, both retryable.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import numpy as np
import numpy.typing as npt
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from symbi_common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
)

from .filters import Condition, Filter, HasId, Match, MatchAny, Range
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

__all__ = ["QdrantServerVectorStore", "ServerStoreOptions"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ServerStoreOptions:
    """Where the server is and how long a call may take."""

    url: str
    api_key: str | None = None
    timeout_s: float = 5.0
    collection_prefix: str = "symbi_"
    hnsw_ef: int = 128

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise InvalidArgument(
                f"qdrant url {self.url!r} must start with http:// or https://",
                reason="BAD_OPTIONS",
            )
        if self.timeout_s <= 0:
            raise InvalidArgument("qdrant timeout_s must be positive", reason="BAD_OPTIONS")


_SCHEMA = {
    FieldKind.INTEGER: models.PayloadSchemaType.INTEGER,
    FieldKind.FLOAT: models.PayloadSchemaType.FLOAT,
}


class QdrantServerVectorStore:
    """:class:`~symbi_context.vector_store.VectorStore` over a Qdrant server.

    Pass ``client`` to reuse a configured :class:`AsyncQdrantClient` (the contract tests
    also pass one in local mode to exercise this adapter without a server; local mode is
    brute force and is never a default).
    """

    def __init__(
        self, options: ServerStoreOptions, *, client: AsyncQdrantClient | None = None
    ) -> None:
        self._options = options
        self._client = client or AsyncQdrantClient(
            url=options.url,
            api_key=options.api_key,
            timeout=max(1, round(options.timeout_s)),
            check_compatibility=False,
        )
        self._specs: dict[str, CollectionSpec] = {}
        self._closed = False

    async def _call(self, what: str, aw: Awaitable[_T]) -> _T:
        if self._closed:
            raise FailedPrecondition("the vector store is closed", reason="STORE_CLOSED")
        try:
            async with asyncio.timeout(self._options.timeout_s):
                return await aw
        except TimeoutError:
            raise DeadlineExceeded(
                f"qdrant {what} took longer than {self._options.timeout_s}s",
                reason="QDRANT_TIMEOUT",
            ) from None
        except (ResponseHandlingException, httpx.TransportError, ConnectionError) as exc:
            raise Unavailable(f"qdrant {what} failed: {exc}", reason="QDRANT_UNAVAILABLE") from exc
        except UnexpectedResponse as exc:
            if exc.status_code is not None and exc.status_code >= 500:
                raise Unavailable(
                    f"qdrant {what} failed with HTTP {exc.status_code}",
                    reason="QDRANT_UNAVAILABLE",
                ) from exc
            raise InvalidArgument(
                f"qdrant refused {what}: HTTP {exc.status_code}: {exc.content!r:.300}",
                reason="QDRANT_REFUSED",
            ) from exc

    def _get(self, name: str) -> tuple[CollectionSpec, str]:
        spec = self._specs.get(name)
        if spec is None:
            raise InvalidArgument(
                f"unknown collection {name!r}; open collections: "
                f"{', '.join(sorted(self._specs)) or 'none'}",
                reason="UNKNOWN_COLLECTION",
                details={"collection": name},
            )
        return spec, self._options.collection_prefix + name

    # ---------------------------------------------------------------- collections

    async def ensure_collection(self, spec: CollectionSpec) -> None:
        """Create the collection on the server, or check the existing one's vector size
        and add newly declared payload indexes."""
        remote = self._options.collection_prefix + spec.name
        exists = await self._call("collection_exists", self._client.collection_exists(remote))
        if not exists:
            await self._call(
                "create_collection",
                self._client.create_collection(
                    remote,
                    vectors_config={
                        DENSE_VECTOR: models.VectorParams(
                            size=spec.dimension, distance=models.Distance.COSINE
                        )
                    },
                    sparse_vectors_config={
                        KEYWORD_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
                    },
                ),
            )
            indexed: set[str] = set()
        else:
            info = await self._call("get_collection", self._client.get_collection(remote))
            vectors = info.config.params.vectors
            dense = vectors.get(DENSE_VECTOR) if isinstance(vectors, Mapping) else None
            if dense is None or dense.size != spec.dimension:
                got = dense.size if dense is not None else "no 'dense' vector"
                raise FailedPrecondition(
                    f"server collection {remote!r} has {got}; expected {spec.dimension}-"
                    "dimensional 'dense' vectors",
                    reason="DIMENSION_MISMATCH",
                )
            indexed = set(info.payload_schema or {})
        for name, kind in spec.fields.items():
            if name in indexed:
                continue
            schema: Any
            if kind is FieldKind.KEYWORD:
                schema = models.KeywordIndexParams(
                    type=models.KeywordIndexType.KEYWORD,
                    is_tenant=name == spec.tenant_field or None,
                )
            else:
                schema = _SCHEMA[kind]
            await self._call(
                "create_payload_index",
                self._client.create_payload_index(remote, name, field_schema=schema, wait=True),
            )
        self._specs[spec.name] = spec

    # ---------------------------------------------------------------- writes

    async def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points; returns once the server applied them (wait=True)."""
        spec, remote = self._get(collection)
        check_batch(len(points))
        if not points:
            return
        structs = []
        for p in points:
            spec.check_payload(p.payload)
            vector: dict[str, Any] = {DENSE_VECTOR: spec.check_dense(p.dense)}
            if p.keywords is not None and not p.keywords.is_empty():
                vector[KEYWORD_VECTOR] = models.SparseVector(
                    indices=list(p.keywords.indices), values=list(p.keywords.values)
                )
            structs.append(
                models.PointStruct(id=_check_id(p.id), vector=vector, payload=dict(p.payload))
            )
        await self._call("upsert", self._client.upsert(remote, points=structs, wait=True))

    async def set_payload(self, collection: str, point_id: str, values: Mapping[str, Any]) -> None:
        """Merge ``values`` into one point's payload."""
        spec, remote = self._get(collection)
        spec.check_payload(values)
        await self._call(
            "set_payload",
            self._client.set_payload(
                remote, payload=dict(values), points=[_check_id(point_id)], wait=True
            ),
        )

    async def delete(self, collection: str, ids: Sequence[str]) -> None:
        """Delete points by id."""
        _, remote = self._get(collection)
        check_batch(len(ids))
        if not ids:
            return
        selector = models.PointIdsList(points=[_check_id(i) for i in ids])
        await self._call("delete", self._client.delete(remote, points_selector=selector, wait=True))

    async def delete_where(self, collection: str, filter: Filter) -> None:
        """Delete every point matching ``filter``."""
        spec, remote = self._get(collection)
        if filter.is_empty():
            raise InvalidArgument(
                "delete_where needs a non-empty filter", reason="EMPTY_DELETE_FILTER"
            )
        spec.check_filter(filter)
        selector = models.FilterSelector(filter=_server_filter(filter))
        await self._call("delete", self._client.delete(remote, points_selector=selector, wait=True))

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
        spec, remote = self._get(collection)
        check_limit(limit)
        dense = spec.check_dense(vector)
        spec.check_filter(filter)
        resp = await self._call(
            "query",
            self._client.query_points(
                remote,
                query=dense,
                using=DENSE_VECTOR,
                query_filter=_server_filter(filter) if filter else None,
                search_params=models.SearchParams(hnsw_ef=max(self._options.hnsw_ef, limit)),
                limit=limit,
                with_payload=True,
            ),
        )
        return [ScoredPoint(str(p.id), float(p.score), p.payload or {}) for p in resp.points]

    async def keyword_search(
        self,
        collection: str,
        query: SparseVector,
        *,
        limit: int,
        filter: Filter | None = None,
    ) -> list[ScoredPoint]:
        """Points sharing terms with ``query`` (IDF-weighted)."""
        spec, remote = self._get(collection)
        check_limit(limit)
        spec.check_filter(filter)
        if query.is_empty():
            return []
        resp = await self._call(
            "query",
            self._client.query_points(
                remote,
                query=models.SparseVector(indices=list(query.indices), values=list(query.values)),
                using=KEYWORD_VECTOR,
                query_filter=_server_filter(filter) if filter else None,
                limit=limit,
                with_payload=True,
            ),
        )
        return [ScoredPoint(str(p.id), float(p.score), p.payload or {}) for p in resp.points]

    async def get(self, collection: str, ids: Sequence[str]) -> list[StoredPoint]:
        """Points by id; missing ids are skipped."""
        _, remote = self._get(collection)
        check_batch(len(ids))
        if not ids:
            return []
        records = await self._call(
            "retrieve",
            self._client.retrieve(remote, ids=[_check_id(i) for i in ids], with_payload=True),
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
        spec, remote = self._get(collection)
        check_limit(limit)
        spec.check_filter(filter)
        records, next_offset = await self._call(
            "scroll",
            self._client.scroll(
                remote,
                scroll_filter=_server_filter(filter) if filter else None,
                limit=limit,
                offset=_check_id(offset) if offset else None,
                with_payload=True,
            ),
        )
        page = [StoredPoint(str(r.id), r.payload or {}) for r in records]
        return page, (str(next_offset) if next_offset is not None else None)

    async def count(self, collection: str, *, filter: Filter | None = None) -> int:
        """Exact number of points matching ``filter``."""
        spec, remote = self._get(collection)
        spec.check_filter(filter)
        result = await self._call(
            "count",
            self._client.count(
                remote, count_filter=_server_filter(filter) if filter else None, exact=True
            ),
        )
        return int(result.count)

    async def maintain(self) -> None:
        """Nothing to do: the server runs its own optimisers."""

    async def aclose(self) -> None:
        """Close the client; idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._client.close()


def _check_id(point_id: str) -> str:
    try:
        return str(uuid.UUID(point_id))
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument(
            f"point id {point_id!r} is not a UUID", reason="BAD_POINT_ID"
        ) from None


def _server_filter(flt: Filter) -> models.Filter:
    def conds(items: tuple[Condition, ...]) -> list[Any] | None:
        return [_server_condition(c) for c in items] or None

    return models.Filter(
        must=conds(flt.must), should=conds(flt.should), must_not=conds(flt.must_not)
    )


def _server_condition(cond: Condition) -> Any:
    if isinstance(cond, Filter):
        return _server_filter(cond)
    if isinstance(cond, Match):
        return models.FieldCondition(key=cond.key, match=models.MatchValue(value=cond.value))
    if isinstance(cond, MatchAny):
        return models.FieldCondition(key=cond.key, match=models.MatchAny(any=cond.as_list()))
    if isinstance(cond, Range):
        return models.FieldCondition(
            key=cond.key, range=models.Range(gte=cond.gte, gt=cond.gt, lte=cond.lte, lt=cond.lt)
        )
    assert isinstance(cond, HasId)
    return models.HasIdCondition(has_id=[_check_id(i) for i in cond.ids])
