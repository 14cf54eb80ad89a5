"""One contract for every VectorStore backend (see conftest.vector_store)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from symbi_common.errors import InvalidArgument
from symbi_context.filters import Filter, HasId, Match, MatchAny, Range, parse_filter
from symbi_context.keywords import KeywordEncoder
from symbi_context.vector_store import (
    CollectionSpec,
    FieldKind,
    SparseVector,
    VectorPoint,
    VectorStore,
)

# qdrant-client's local mode (one of the backends) warns that it ignores payload indexes.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning"),
    pytest.mark.filterwarnings("ignore:Local mode performs exact:UserWarning"),
]

DIM = 8
SPEC = CollectionSpec(
    name="memories",
    dimension=DIM,
    fields={
        "agent_id": FieldKind.KEYWORD,
        "kind": FieldKind.KEYWORD,
        "tags": FieldKind.KEYWORD,
        "created_at": FieldKind.FLOAT,
        "shared": FieldKind.KEYWORD,
    },
    tenant_field="agent_id",
)
KW = KeywordEncoder()


def unit(i: int) -> list[float]:
    v = np.zeros(DIM, dtype=np.float32)
    v[i % DIM] = 1.0
    v[(i + 1) % DIM] = 0.1 * (i // DIM)
    return (v / np.linalg.norm(v)).tolist()


def point(i: int, agent: str, kind: str, tags: list[str], text: str) -> VectorPoint:
    return VectorPoint(
        id=str(uuid.UUID(int=i + 1)),
        dense=unit(i),
        payload={
            "agent_id": agent,
            "kind": kind,
            "tags": tags,
            "created_at": float(1000 + i),
            "shared": "yes" if kind == "shared" else "no",
            "text": text,
        },
        keywords=KW.document(text),
    )


POINTS = [
    point(0, "alice", "long_term", ["garden"], "tomatoes need full sun and regular watering"),
    point(1, "alice", "short_term", ["chat"], "the user asked about the weather in Lisbon"),
    point(2, "bob", "long_term", ["garden"], "basil grows well next to tomatoes"),
    point(3, "bob", "shared", ["ops"], "the deploy key rotates every ninety days"),
    point(4, "alice", "working", ["task"], "step two of the migration copies the tables"),
    point(5, "carol", "long_term", [], "sourdough starter needs feeding twice a day"),
]


@pytest.fixture
async def filled(vector_store: VectorStore) -> VectorStore:
    await vector_store.ensure_collection(SPEC)
    await vector_store.upsert("memories", POINTS)
    return vector_store


def ids(hits: list) -> list[str]:
    return [h.id for h in hits]


async def test_nearest_point_comes_first_with_its_payload(filled: VectorStore) -> None:
    hits = await filled.search("memories", unit(2), limit=3)
    assert hits[0].id == POINTS[2].id
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)
    assert hits[0].payload["agent_id"] == "bob"
    assert hits[0].payload["tags"] == ["garden"]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


async def test_filters_on_agent_kind_tags_and_time(filled: VectorStore) -> None:
    alice = Filter(must=(Match("agent_id", "alice"),))
    hits = await filled.search("memories", unit(2), limit=10, filter=alice)
    assert {h.payload["agent_id"] for h in hits} == {"alice"}
    assert len(hits) == 3

    garden = Filter(
        must=(MatchAny("tags", ("garden", "ops")),), must_not=(Match("kind", "shared"),)
    )
    hits = await filled.search("memories", unit(0), limit=10, filter=garden)
    assert set(ids(hits)) == {POINTS[0].id, POINTS[2].id}

    recent = Filter(must=(Range("created_at", gte=1003.0),))
    hits = await filled.search("memories", unit(0), limit=10, filter=recent)
    assert set(ids(hits)) == {p.id for p in POINTS[3:]}

    shared = Filter(must=(Match("shared", "yes"),))
    assert ids(await filled.search("memories", unit(0), limit=10, filter=shared)) == [POINTS[3].id]

    either = parse_filter(
        {"should": [{"key": "agent_id", "match": "carol"}, {"has_id": [POINTS[1].id]}]}
    )
    hits = await filled.search("memories", unit(0), limit=10, filter=either)
    assert set(ids(hits)) == {POINTS[1].id, POINTS[5].id}


async def test_has_id_restricts_search_to_given_points(filled: VectorStore) -> None:
    only = Filter(must=(HasId((POINTS[4].id, POINTS[5].id)),))
    hits = await filled.search("memories", unit(0), limit=10, filter=only)
    assert set(ids(hits)) == {POINTS[4].id, POINTS[5].id}


async def test_keyword_search_ranks_documents_sharing_rare_terms(filled: VectorStore) -> None:
    hits = await filled.keyword_search("memories", KW.query("watering tomatoes"), limit=5)
    assert hits[0].id == POINTS[0].id
    assert POINTS[2].id in ids(hits)  # shares "tomatoes"
    assert POINTS[5].id not in ids(hits)
    scoped = await filled.keyword_search(
        "memories", KW.query("tomatoes"), limit=5, filter=Filter(must=(Match("agent_id", "bob"),))
    )
    assert ids(scoped) == [POINTS[2].id]
    assert await filled.keyword_search("memories", SparseVector((), ()), limit=5) == []


async def test_get_count_scroll_set_payload_and_delete(filled: VectorStore) -> None:
    got = await filled.get("memories", [POINTS[3].id, str(uuid.uuid4())])
    assert [p.id for p in got] == [POINTS[3].id]
    assert got[0].payload["text"].startswith("the deploy key")

    assert await filled.count("memories") == len(POINTS)
    assert await filled.count("memories", filter=Filter(must=(Match("agent_id", "alice"),))) == 3

    seen: list[str] = []
    offset = None
    while True:
        page, offset = await filled.scroll("memories", limit=4, offset=offset)
        seen.extend(p.id for p in page)
        if offset is None:
            break
    assert sorted(seen) == sorted(p.id for p in POINTS)

    await filled.set_payload(
        "memories", POINTS[0].id, {"access_count": 3, "tags": ["garden", "sun"]}
    )
    (p0,) = await filled.get("memories", [POINTS[0].id])
    assert p0.payload["access_count"] == 3
    assert p0.payload["tags"] == ["garden", "sun"]
    assert p0.payload["agent_id"] == "alice"

    await filled.delete("memories", [POINTS[0].id])
    await filled.delete_where("memories", Filter(must=(Match("agent_id", "bob"),)))
    assert await filled.count("memories") == len(POINTS) - 3
    assert await filled.get("memories", [POINTS[2].id]) == []


async def test_upsert_replaces_a_point(filled: VectorStore) -> None:
    replaced = point(1, "alice", "long_term", ["moved"], "a different text")
    await filled.upsert("memories", [replaced])
    (p,) = await filled.get("memories", [POINTS[1].id])
    assert p.payload["kind"] == "long_term"
    assert await filled.count("memories") == len(POINTS)


async def test_bad_input_is_invalid_argument_with_a_reason(filled: VectorStore) -> None:
    with pytest.raises(InvalidArgument, match="8-dimensional") as err:
        await filled.search("memories", [0.1] * (DIM + 1), limit=3)
    assert err.value.reason == "WRONG_VECTOR_DIMENSION"
    with pytest.raises(InvalidArgument, match="8-dimensional"):
        await filled.upsert("memories", [VectorPoint(str(uuid.uuid4()), [1.0, 2.0], {})])
    with pytest.raises(InvalidArgument, match="unknown collection 'nope'") as err:
        await filled.search("nope", unit(0), limit=3)
    assert err.value.reason == "UNKNOWN_COLLECTION"
    with pytest.raises(InvalidArgument, match="unknown field 'color'"):
        await filled.search(
            "memories", unit(0), limit=3, filter=Filter(must=(Match("color", "red"),))
        )
    with pytest.raises(InvalidArgument, match="range on field 'tags'"):
        await filled.count("memories", filter=Filter(must=(Range("tags", gte=1),)))
    with pytest.raises(InvalidArgument, match="NaN"):
        await filled.search("memories", [float("nan")] * DIM, limit=3)
    with pytest.raises(InvalidArgument, match="not a UUID"):
        await filled.get("memories", ["not-a-uuid"])
    with pytest.raises(InvalidArgument, match="keyword field"):
        await filled.upsert("memories", [VectorPoint(str(uuid.uuid4()), unit(0), {"agent_id": 7})])
    with pytest.raises(InvalidArgument, match="non-empty filter"):
        await filled.delete_where("memories", Filter())
    with pytest.raises(InvalidArgument, match="limit 0"):
        await filled.search("memories", unit(0), limit=0)
    # Nothing was written by the refused calls.
    assert await filled.count("memories") == len(POINTS)


async def test_maintain_keeps_results_identical(filled: VectorStore) -> None:
    extra = [point(10 + i, "dave", "long_term", [], f"note number {i}") for i in range(60)]
    await filled.upsert("memories", extra)
    before = ids(await filled.search("memories", unit(3), limit=5))
    await filled.maintain()
    after = ids(await filled.search("memories", unit(3), limit=5))
    assert before == after
