"""Retrieval quality on the labelled corpus (tests/data/corpus.txt) with the real MiniLM.

200 passages on eight topics, 37 questions phrased differently from the passages they
answer. recall@5 is the share of a question's relevant passages found in the top five,
averaged over questions. Measured on this machine (hybrid 0.7/0.3): see FLOORS; the
asserted floors leave a margin below the measurement.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from symbi_context import (
    ClearancePolicy,
    EdgeVectorStore,
    HybridWeights,
    KnowledgeBase,
    KnowledgeOptions,
    KnowledgeQuery,
    NewDocument,
    OnnxMiniLmEmbedder,
)

CORPUS = Path(__file__).parent.parent / "data" / "corpus.txt"
log = logging.getLogger(__name__)

# Measured recall@5 (MiniLM int8, this corpus): vector-only 0.946, hybrid 0.986.
# The floors leave a margin for numeric differences between CPUs and onnxruntime builds.
FLOORS = {"vector": 0.88, "hybrid": 0.92}


def load_corpus() -> tuple[dict[str, str], list[tuple[str, set[str]]]]:
    passages: dict[str, str] = {}
    questions: list[tuple[str, set[str]]] = []
    for line in CORPUS.read_text().splitlines():
        if line.startswith("P|"):
            _, pid, text = line.split("|", 2)
            passages[pid] = text
        elif line.startswith("Q|"):
            _, ids, question = line.split("|", 2)
            questions.append((question, set(ids.split(","))))
    return passages, questions


@pytest.fixture(scope="module")
def embedder() -> OnnxMiniLmEmbedder:
    return OnnxMiniLmEmbedder()


@pytest.mark.parametrize(
    ("mode", "weights"),
    [("vector", HybridWeights(vector=1.0, keyword=0.0)), ("hybrid", HybridWeights())],
)
async def test_recall_at_5_is_above_the_measured_floor(
    tmp_path: Path, embedder: OnnxMiniLmEmbedder, mode: str, weights: HybridWeights
) -> None:
    passages, questions = load_corpus()
    assert len(passages) == 200
    assert len(questions) >= 30
    store = EdgeVectorStore(tmp_path / "store")
    kb = KnowledgeBase(store, embedder, ClearancePolicy(), KnowledgeOptions(hybrid=weights))
    await kb.open()
    try:
        for pid, text in passages.items():
            result = await kb.ingest("corpus", NewDocument(text, doc_id=pid))
            assert result.chunks == 1
        recalls = []
        for question, relevant in questions:
            hits = await kb.search("corpus", KnowledgeQuery(question, limit=5))
            found = {h.doc_id for h in hits}
            recalls.append(len(found & relevant) / len(relevant))
            if not found & relevant:
                log.warning("missed %r: got %s", question, [h.doc_id for h in hits])
        recall = sum(recalls) / len(recalls)
        print(f"recall@5 {mode}: {recall:.3f}")
        assert recall >= FLOORS[mode], f"recall@5 {mode} = {recall:.3f}"
    finally:
        await store.aclose()
