"""The RAG pipeline end to end on the real embedded engine and the real MiniLM embedder;
the optional LLM step against a local httpx mock transport."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from symbi_common.errors import InvalidArgument, Unavailable
from symbi_context import (
    ClearancePolicy,
    EdgeVectorStore,
    KnowledgeBase,
    LlmAnswerer,
    MemoryKind,
    MemoryStore,
    NewDocument,
    NewMemory,
    OnnxMiniLmEmbedder,
    OpenAIEndpoint,
    RagOptions,
    RagPipeline,
)

CORPUS = Path(__file__).parent.parent / "data" / "corpus.txt"


@pytest.fixture(scope="module")
def embedder() -> OnnxMiniLmEmbedder:
    return OnnxMiniLmEmbedder()


@pytest.fixture
async def parts(
    tmp_path: Path, embedder: OnnxMiniLmEmbedder, clock: Any
) -> AsyncIterator[tuple[MemoryStore, KnowledgeBase]]:
    store = EdgeVectorStore(tmp_path / "store")
    policy = ClearancePolicy()
    memory = MemoryStore(store, embedder, policy, clock=clock)
    kb = KnowledgeBase(store, embedder, policy, clock=clock)
    await memory.open()
    await kb.open()
    for line in CORPUS.read_text().splitlines():
        if line.startswith("P|"):
            _, pid, text = line.split("|", 2)
            topic = re.sub(r"\d+$", "", pid)
            await kb.ingest("library", NewDocument(text, doc_id=pid, title=topic, tags=(topic,)))
    await memory.store(
        "alice",
        [
            NewMemory(
                "My hive on the allotment was treated with oxalic acid on 3 January.", tags=("bee",)
            ),
            NewMemory(
                "I prefer a starter fed once a week from the fridge.", kind=MemoryKind.LONG_TERM
            ),
        ],
    )
    await memory.store("bob", [NewMemory("Bob's hive was treated with formic acid in August.")])
    yield memory, kb
    await store.aclose()


async def test_answer_cites_sources_with_scores(parts: tuple[MemoryStore, KnowledgeBase]) -> None:
    rag = RagPipeline(*parts)
    answer = await rag.ask("alice", "How are varroa mites treated in winter?")
    assert answer.mode == "extractive"
    assert answer.sources
    assert [s.number for s in answer.sources] == list(range(1, len(answer.sources) + 1))
    assert all(s.score > 0 and 0 <= s.relevance <= 1 for s in answer.sources)
    assert [s.score for s in answer.sources] == sorted(
        (s.score for s in answer.sources), reverse=True
    )
    kinds = {s.kind for s in answer.sources}
    assert kinds == {"memory", "knowledge"}
    assert "bee07" in {s.doc_id for s in answer.sources}
    assert all(s.owner in ("alice", "library") for s in answer.sources)  # never bob's memory
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
    assert cited
    assert cited <= {s.number for s in answer.sources}
    assert "oxalic acid" in answer.text.lower()
    assert answer.timings_ms["total"] > 0


async def test_query_operators_scope_the_search(parts: tuple[MemoryStore, KnowledgeBase]) -> None:
    rag = RagPipeline(*parts)
    only_kb = await rag.ask("alice", "in:knowledge how do I feed a sourdough starter?")
    assert {s.kind for s in only_kb.sources} == {"knowledge"}
    only_mem = await rag.ask("alice", "in:memory starter feeding")
    assert {s.kind for s in only_mem.sources} == {"memory"}
    tagged = await rag.ask("alice", "what floats? #volc")
    assert {s.doc_id for s in tagged.sources} <= {f"volc{i:02d}" for i in range(1, 26)} | {None}
    assert "volc13" in {s.doc_id for s in tagged.sources}
    with pytest.raises(InvalidArgument, match="not a memory type"):
        await rag.ask("alice", "type:forever anything")
    with pytest.raises(InvalidArgument, match="question is empty"):
        await rag.ask("alice", "   ")


def chat_transport(
    reply: dict[str, Any] | None, status: int = 200
) -> tuple[httpx.MockTransport, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer k3y"
        seen.append(json.loads(request.content))
        return httpx.Response(status, json=reply or {})

    return httpx.MockTransport(handler), seen


async def test_llm_answers_from_the_same_passages(parts: tuple[MemoryStore, KnowledgeBase]) -> None:
    endpoint = OpenAIEndpoint("http://llm.test/v1", "tiny-model", api_key="k3y")
    transport, seen = chat_transport(
        {"choices": [{"message": {"content": "Use oxalic acid [1]."}}]}
    )
    rag = RagPipeline(
        *parts, RagOptions(llm=endpoint), answerer=LlmAnswerer(endpoint, transport=transport)
    )
    answer = await rag.ask("alice", "How are varroa mites treated in winter?")
    assert answer.mode == "llm"
    assert answer.text == "Use oxalic acid [1]."
    prompt = seen[0]["messages"][1]["content"]
    assert "[1]" in prompt
    assert answer.sources[0].text in prompt


async def test_llm_failure_falls_back_to_extractive_or_raises(
    parts: tuple[MemoryStore, KnowledgeBase],
) -> None:
    endpoint = OpenAIEndpoint("http://llm.test/v1", "tiny-model", api_key="k3y")
    transport, _ = chat_transport(None, status=503)
    rag = RagPipeline(
        *parts, RagOptions(llm=endpoint), answerer=LlmAnswerer(endpoint, transport=transport)
    )
    answer = await rag.ask("alice", "How are varroa mites treated in winter?")
    assert answer.mode == "extractive_fallback"
    assert answer.sources
    strict = RagPipeline(
        *parts,
        RagOptions(llm=endpoint, fallback_to_extractive=False),
        answerer=LlmAnswerer(endpoint, transport=transport),
    )
    with pytest.raises(Unavailable, match="HTTP 503"):
        await strict.ask("alice", "How are varroa mites treated in winter?")
