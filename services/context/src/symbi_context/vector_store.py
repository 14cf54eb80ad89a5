"""The vector-store port: collections of points with a dense vector, a sparse keyword
vector and a JSON payload, searched by either vector under payload filters.

Two backends implement it with one contract test suite: :class:`~symbi_context.edge_store.
EdgeVectorStore` (Qdrant's engine in process, the default) and :class:`~symbi_context.
server_store.QdrantServerVectorStore` (a Qdrant server). Both check input the same way
through :class:`CollectionSpec`, so bad input fails identically on either.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from symbi_common.errors import InvalidArgument

from .filters import Filter, check_filter_fields

__all__ = [
    "DENSE_VECTOR",
    "KEYWORD_VECTOR",
    "CollectionSpec",
    "FieldKind",
    "ScoredPoint",
    "SparseVector",
    "StoredPoint",
    "VectorPoint",
    "VectorStore",
]

#: Name of the dense (embedding) vector in every collection.
DENSE_VECTOR = "dense"
#: Name of the sparse keyword vector (BM25-style term weights; the engine applies IDF).
KEYWORD_VECTOR = "keywords"

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_BATCH = 1024
MAX_LIMIT = 1000


class FieldKind(enum.StrEnum):
    """Kinds of indexed payload fields."""

    KEYWORD = "keyword"
    INTEGER = "integer"
    FLOAT = "float"
    # No BOOL: qdrant-edge-py 0.9 turns MatchValue(True) into the integer 1, which never
    # matches a stored boolean. Flags are keyword fields ("yes"/"no") in both backends.


NUMERIC_KINDS = frozenset({FieldKind.INTEGER.value, FieldKind.FLOAT.value})


@dataclass(frozen=True, slots=True)
class SparseVector:
    """Sparse term weights: strictly increasing ``indices`` and matching ``values``."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.values):
            raise InvalidArgument(
                f"sparse vector has {len(self.indices)} indices but {len(self.values)} values",
                reason="MALFORMED_VECTOR",
            )

    def is_empty(self) -> bool:
        """True when no term carries weight."""
        return not self.indices


@dataclass(frozen=True, slots=True)
class VectorPoint:
    """A point to upsert. ``id`` is a UUID string (both backends accept those)."""

    id: str
    dense: npt.NDArray[np.float32] | Sequence[float]
    payload: Mapping[str, Any]
    keywords: SparseVector | None = None


@dataclass(frozen=True, slots=True)
class ScoredPoint:
    """A search hit: higher ``score`` is closer (cosine similarity, or keyword weight)."""

    id: str
    score: float
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StoredPoint:
    """A point read back by id or by scrolling."""

    id: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    """The layout of one collection: vector size and the payload fields that are indexed
    and may be filtered on. ``tenant_field`` names the field that partitions the data
    (agent or owner): backends index it as a tenant key, which keeps per-agent queries fast.
    """

    name: str
    dimension: int
    fields: Mapping[str, FieldKind] = field(default_factory=dict)
    tenant_field: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise InvalidArgument(
                f"collection name {self.name!r} is not allowed; use 1–63 of [a-z0-9_], "
                "starting with a letter",
                reason="BAD_COLLECTION_NAME",
            )
        if not 1 <= self.dimension <= 65536:
            raise InvalidArgument(
                f"collection {self.name!r}: dimension {self.dimension} is outside 1..65536",
                reason="BAD_DIMENSION",
            )
        if self.tenant_field is not None and self.fields.get(self.tenant_field) != (
            FieldKind.KEYWORD
        ):
            raise InvalidArgument(
                f"collection {self.name!r}: tenant field {self.tenant_field!r} must be a "
                "declared keyword field",
                reason="BAD_COLLECTION_SPEC",
            )

    # -- checks shared by every backend ------------------------------------------

    def check_dense(self, vector: npt.NDArray[np.float32] | Sequence[float]) -> list[float]:
        """Return ``vector`` as a list of floats, or raise if its size or values are wrong."""
        arr = np.asarray(vector, dtype=np.float32)
        if arr.ndim != 1 or arr.shape[0] != self.dimension:
            got = arr.shape[0] if arr.ndim == 1 else f"shape {arr.shape}"
            raise InvalidArgument(
                f"collection {self.name!r} takes {self.dimension}-dimensional vectors, got {got}",
                reason="WRONG_VECTOR_DIMENSION",
                details={"expected": str(self.dimension), "got": str(got)},
            )
        if not np.isfinite(arr).all():
            raise InvalidArgument("vector holds NaN or infinite values", reason="MALFORMED_VECTOR")
        return [float(x) for x in arr.tolist()]

    def check_filter(self, flt: Filter | None) -> None:
        """Raise if ``flt`` names a field this collection does not declare."""
        if flt is not None:
            check_filter_fields(
                flt,
                collection=self.name,
                fields={k: v.value for k, v in self.fields.items()},
                numeric=NUMERIC_KINDS,
            )

    def check_payload(self, payload: Mapping[str, Any]) -> None:
        """Raise if an indexed field holds a value of the wrong kind."""
        for key, kind in self.fields.items():
            if key not in payload or payload[key] is None:
                continue
            value = payload[key]
            values = value if isinstance(value, list) else [value]
            for v in values:
                if not _fits(kind, v):
                    raise InvalidArgument(
                        f"payload field {key!r} is a {kind.value} field; got {v!r}",
                        reason="BAD_PAYLOAD",
                        details={"field": key},
                    )


def _fits(kind: FieldKind, value: Any) -> bool:
    if kind is FieldKind.KEYWORD:
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if kind is FieldKind.INTEGER:
        return isinstance(value, int)
    return isinstance(value, int | float) and math.isfinite(value)


def check_limit(limit: int) -> None:
    """Raise unless ``1 <= limit <= MAX_LIMIT``."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit {limit} is outside 1..{MAX_LIMIT}", reason="BAD_LIMIT")


def check_batch(n: int) -> None:
    """Raise if a write batch is larger than :data:`MAX_BATCH`."""
    if n > MAX_BATCH:
        raise InvalidArgument(
            f"a write batch holds at most {MAX_BATCH} points, got {n}", reason="BATCH_TOO_LARGE"
        )


class VectorStore(Protocol):
    """Collections of points searched by vector under payload filters.

    Every method raises :class:`InvalidArgument` for an unknown collection (one not opened
    with :meth:`ensure_collection` on this store), a vector of the wrong size, or a filter
    naming undeclared fields; :class:`~symbi_common.errors.Unavailable` when the backend
    cannot be reached in time. Writes are durable when they return.
    """

    async def ensure_collection(self, spec: CollectionSpec) -> None:
        """Create the collection, or open it and check that its layout matches ``spec``."""
        ...

    async def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points (at most :data:`MAX_BATCH` per call)."""
        ...

    async def search(
        self,
        collection: str,
        vector: npt.NDArray[np.float32] | Sequence[float],
        *,
        limit: int,
        filter: Filter | None = None,
    ) -> list[ScoredPoint]:
        """Nearest points by cosine similarity, best first."""
        ...

    async def keyword_search(
        self,
        collection: str,
        query: SparseVector,
        *,
        limit: int,
        filter: Filter | None = None,
    ) -> list[ScoredPoint]:
        """Points sharing terms with ``query``, scored by IDF-weighted term overlap."""
        ...

    async def get(self, collection: str, ids: Sequence[str]) -> list[StoredPoint]:
        """The points with these ids that exist (missing ids are skipped)."""
        ...

    async def scroll(
        self,
        collection: str,
        *,
        filter: Filter | None = None,
        limit: int = 100,
        offset: str | None = None,
    ) -> tuple[list[StoredPoint], str | None]:
        """A page of points in id order, and the offset of the next page (None at the end)."""
        ...

    async def count(self, collection: str, *, filter: Filter | None = None) -> int:
        """The exact number of points matching ``filter``."""
        ...

    async def set_payload(self, collection: str, point_id: str, values: Mapping[str, Any]) -> None:
        """Merge ``values`` into one point's payload."""
        ...

    async def delete(self, collection: str, ids: Sequence[str]) -> None:
        """Delete points by id (missing ids are ignored)."""
        ...

    async def delete_where(self, collection: str, filter: Filter) -> None:
        """Delete every point matching ``filter`` (an empty filter is refused)."""
        ...

    async def maintain(self) -> None:
        """Backend housekeeping (the embedded engine builds its HNSW indexes here)."""
        ...

    async def aclose(self) -> None:
        """Release the backend; idempotent."""
        ...
