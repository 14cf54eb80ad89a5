"""Fixtures for the context service's integration tests: the real vector-store backends."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from qdrant_client import AsyncQdrantClient

from symbi_context.edge_store import EdgeStoreOptions, EdgeVectorStore
from symbi_context.server_store import QdrantServerVectorStore, ServerStoreOptions
from symbi_context.vector_store import VectorStore

BACKENDS = ["edge", "server", "server-adapter-on-local-client"]


@pytest.fixture(params=BACKENDS)
async def vector_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[VectorStore]:
    """Every vector-store backend in turn.

    - ``edge``: qdrant-edge-py, always.
    - ``server``: a real Qdrant server at ``QDRANT_URL``; skipped (and said so) without it.
    - ``server-adapter-on-local-client``: the server adapter's own code driving
      qdrant-client's in-process local mode, so the adapter's translation is exercised even
      where no server runs. Local mode is not the server; the ``server`` case is the claim.
    """
    kind = request.param
    store: VectorStore
    if kind == "edge":
        store = EdgeVectorStore(tmp_path / "edge", EdgeStoreOptions(optimize_after=50))
    elif kind == "server":
        url = os.environ.get("QDRANT_URL")
        if not url:
            pytest.skip("QDRANT_URL is not set: contract tests against a Qdrant server skipped")
        prefix = f"t{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}_"
        store = QdrantServerVectorStore(ServerStoreOptions(url=url, collection_prefix=prefix))
    else:
        client = AsyncQdrantClient(location=":memory:")
        store = QdrantServerVectorStore(
            ServerStoreOptions(url="http://local-mode.invalid"), client=client
        )
    try:
        yield store
    finally:
        await store.aclose()


class ManualClock:
    """A clock the test moves (the domain takes time through the Clock port)."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class RecordingSink:
    """Collects memory events."""

    def __init__(self) -> None:
        self.events: list = []

    async def emit(self, event) -> None:  # type: ignore[no-untyped-def]
        self.events.append(event)


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock starting mid-2025."""
    return ManualClock()


@pytest.fixture
def sink() -> RecordingSink:
    """A memory-event sink that records."""
    return RecordingSink()
