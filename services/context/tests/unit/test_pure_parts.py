"""Unit tests of the pure parts: filters, keywords, chunking, query analysis, ranking,
answers, options and the local clearance policy (no I/O)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

import symbi_context
from symbi_common.errors import ConfigError, InvalidArgument
from symbi_context import (
    AccessLevel,
    AccessRequest,
    Chunker,
    ClearancePolicy,
    DocumentFormat,
    ExtractiveAnswerer,
    Filter,
    HasId,
    KeywordEncoder,
    KnowledgeOptions,
    Match,
    MatchAny,
    MemoryKind,
    Passage,
    QueryAnalyzer,
    Range,
    RankingWeights,
    parse_filter,
)
from symbi_context.keywords import stem
from symbi_context.options import HybridWeights, ImportanceWeights
from symbi_context.ranking import ImportanceModel, Ranker


def test_public_names_are_exported() -> None:
    for name in symbi_context.__all__:
        assert hasattr(symbi_context, name), name
    assert sorted(symbi_context.__all__) == sorted(set(symbi_context.__all__))


# ---------------------------------------------------------------- filters


def test_parse_filter_builds_the_tree() -> None:
    flt = parse_filter(
        {
            "must": [
                {"key": "tags", "any": ["a", "b"]},
                {"key": "created_at", "range": {"gte": 1, "lt": 2.5}},
            ],
            "must_not": [{"key": "kind", "match": "shared"}],
            "should": [{"has_id": ["x"]}, {"must": [{"key": "task_id", "match": "t"}]}],
        }
    )
    assert flt == Filter(
        must=(MatchAny("tags", ("a", "b")), Range("created_at", gte=1.0, lt=2.5)),
        should=(HasId(("x",)), Filter(must=(Match("task_id", "t"),))),
        must_not=(Match("kind", "shared"),),
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected an object"),
        ({"mist": []}, "unknown key"),
        ({"must": {"key": "a"}}, "list of conditions"),
        ({"must": [{"key": "a"}]}, "exactly one of"),
        ({"must": [{"key": "a", "match": 1.5}]}, "string or an integer"),
        ({"must": [{"key": "a", "match": True}]}, "string or an integer"),
        ({"must": [{"key": "a", "any": []}]}, "non-empty list"),
        ({"must": [{"key": "a", "any": ["x", 1]}]}, "strings or a list of integers"),
        ({"must": [{"key": "a", "range": {"gte": "1"}}]}, "finite number"),
        ({"must": [{"key": "a", "range": {"from": 1}}]}, "unknown range bound"),
        ({"must": [{"key": "", "match": "x"}]}, "non-empty string"),
        ({"must": [{"has_id": "x"}]}, "non-empty list of ids"),
        ({"must": [{"must": [{"must": [{"must": [{"must": [{"must": []}]}]}]}]}]}, "nest at most"),
        ({"must": [{"key": "a", "match": "x"}] * 65}, "at most 64 conditions"),
    ],
)
def test_malformed_filters_name_the_problem(data: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as err:
        parse_filter(data)
    assert err.value.reason == "MALFORMED_FILTER"


# ---------------------------------------------------------------- keywords


def test_stemming_groups_word_forms() -> None:
    assert stem("running") == stem("runs") == "run"
    assert stem("tomatoes") == stem("tomato") or stem("tomatoes") == "tomato"
    assert stem("batteries") == "battery"
    assert stem("glass") == "glass"


def test_keyword_vectors_are_sorted_sparse_and_skip_stopwords() -> None:
    enc = KeywordEncoder()
    doc = enc.document("The bees and the bee keeper")
    assert list(doc.indices) == sorted(doc.indices)
    assert len(doc.indices) == 2  # bee (×2), keeper; "the", "and" dropped
    assert max(doc.values) > min(doc.values)
    assert enc.query("the and of").is_empty()
    assert enc.keywords("How do bees make honey?") == ["bees", "make", "honey"]


@given(st.text(max_size=300))
def test_keyword_encoding_never_fails(text: str) -> None:
    enc = KeywordEncoder()
    doc = enc.document(text)
    assert len(doc.indices) == len(set(doc.indices))
    assert all(v > 0 for v in doc.values)


# ---------------------------------------------------------------- chunking


@given(st.lists(st.text(alphabet="abcdefgh ", min_size=1, max_size=60), min_size=1, max_size=80))
def test_text_chunks_respect_the_size_and_cover_every_word(sentences: list[str]) -> None:
    text = ". ".join(s.strip() or "x" for s in sentences) + "."
    chunks = Chunker(200, 40).chunk(text, DocumentFormat.TEXT)
    assert all(len(c.text) <= 200 for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    joined = " ".join(c.text for c in chunks).split()
    assert set(text.replace(".", " ").split()) <= {w.strip(".") for w in joined}


def test_chunks_overlap_at_sentence_boundaries() -> None:
    text = " ".join(f"Sentence {i} is here." for i in range(30))
    chunks = Chunker(120, 40).chunk(text, DocumentFormat.TEXT)
    assert len(chunks) > 3
    for a, b in itertools.pairwise(chunks):
        last = a.text.split(". ")[-1]
        assert b.text.startswith(last.rstrip(".")) or last in b.text


def test_markdown_sections_and_fences() -> None:
    md = "# A\nintro text.\n## B\n```\n# not heading\n```\nbody b.\n# C\nbody c."
    chunks = Chunker(200, 20).chunk(md, DocumentFormat.MARKDOWN)
    assert [c.section for c in chunks] == ["A", "A > B", "C"]
    assert "# not heading" in chunks[1].text


def test_bad_chunker_options() -> None:
    with pytest.raises(InvalidArgument):
        Chunker(100, 60)
    with pytest.raises(ConfigError, match="overlap_chars"):
        KnowledgeOptions(chunk_chars=200, overlap_chars=150)


# ---------------------------------------------------------------- query analysis


NOW = dt.datetime(2025, 6, 18, 15, 0, tzinfo=dt.UTC).timestamp()  # a Wednesday


def test_operators_become_filters() -> None:
    a = QueryAnalyzer().analyze(
        "tag:ops #infra type:long_term in:memory since:2025-06-01 until:2025-06-10 deploy keys",
        now=NOW,
    )
    assert a.text == "deploy keys"
    assert a.tags == ("ops", "infra")
    assert a.kinds == (MemoryKind.LONG_TERM,)
    assert a.scope == "memory"
    assert a.since == dt.datetime(2025, 6, 1, tzinfo=dt.UTC).timestamp()
    assert a.until is not None
    assert a.until < dt.datetime(2025, 6, 11, tzinfo=dt.UTC).timestamp()
    assert a.keywords == ("deploy", "keys")


@pytest.mark.parametrize(
    ("phrase", "since"),
    [
        ("what did I do today", dt.datetime(2025, 6, 18, tzinfo=dt.UTC)),
        ("what happened yesterday", dt.datetime(2025, 6, 17, tzinfo=dt.UTC)),
        ("notes from this week", dt.datetime(2025, 6, 16, tzinfo=dt.UTC)),
        ("errors in the last 3 days", dt.datetime(2025, 6, 15, 15, 0, tzinfo=dt.UTC)),
        ("alerts in the past hour", dt.datetime(2025, 6, 18, 14, 0, tzinfo=dt.UTC)),
    ],
)
def test_time_phrases(phrase: str, since: dt.datetime) -> None:
    assert QueryAnalyzer().analyze(phrase, now=NOW).since == since.timestamp()


@pytest.mark.parametrize(
    "question",
    [
        "type:forever x",
        "in:everywhere x",
        "since:yesterday x",
        "since:2025-06-10 until:2025-06-01 x",
    ],
)
def test_bad_operators(question: str) -> None:
    with pytest.raises(InvalidArgument):
        QueryAnalyzer().analyze(question, now=NOW)


# ---------------------------------------------------------------- ranking


def test_importance_rises_with_use_and_feedback_and_decays_with_age() -> None:
    model = ImportanceModel(ImportanceWeights())
    base = {"base": 0.5, "access_count": 0, "last_used_at": NOW, "feedback": 0.0, "now": NOW}
    plain = model.score(**base)
    assert model.score(**{**base, "access_count": 10}) > plain
    assert model.score(**{**base, "feedback": 2.0}) > plain
    assert model.score(**{**base, "feedback": -2.0}) < plain
    assert model.score(**{**base, "now": NOW + 90 * 86400}) < plain
    assert 0.0 <= model.score(**{**base, "feedback": 100.0, "access_count": 10**6}) <= 1.0


def test_ranker_weights() -> None:
    r = Ranker(RankingWeights(relevance=1, recency=0, importance=0))
    assert r.score(relevance=0.8, timestamp=0, importance=1, now=NOW) == pytest.approx(0.8)
    r = Ranker(RankingWeights())
    fresh = r.score(relevance=0.5, timestamp=NOW, importance=0.5, now=NOW)
    stale = r.score(relevance=0.5, timestamp=NOW - 60 * 86400, importance=0.5, now=NOW)
    assert fresh > stale


@pytest.mark.parametrize(
    "make",
    [
        lambda: HybridWeights(vector=0, keyword=0),
        lambda: HybridWeights(candidates=5),
        lambda: RankingWeights(relevance=0),
        lambda: ImportanceWeights(recency=-1),
        lambda: KnowledgeOptions(retention_days=-1),
    ],
)
def test_invalid_options_raise_config_error(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        make()


# ---------------------------------------------------------------- answers and policy


async def test_extractive_answer_picks_covering_sentences_and_cites() -> None:
    passages = [
        Passage(1, "Bees make honey from nectar. They store it in wax cells.", 0.9),
        Passage(2, "Wasps do not make honey. Hornets are large wasps.", 0.5),
    ]
    text = await ExtractiveAnswerer(sentences=2).answer(
        "how do bees make honey", ["bees", "make", "honey"], passages
    )
    assert text.startswith("Bees make honey from nectar. [1]")
    assert text.count("[") == 2
    assert await ExtractiveAnswerer().answer("q", ["q"], []) == "No relevant context was found."


async def test_clearance_policy() -> None:
    policy = ClearancePolicy(clearances={"a": AccessLevel.CONFIDENTIAL})
    reqs = [
        AccessRequest("a", "read_context", "o", AccessLevel.CONFIDENTIAL, "shared"),
        AccessRequest("a", "read_context", "o", AccessLevel.SECRET, "shared"),
        AccessRequest("b", "read_context", "o", AccessLevel.PUBLIC, "shared"),
        AccessRequest("b", "share_context", "b", AccessLevel.RESTRICTED, "shared"),
        AccessRequest("a", "tool_call", "o", AccessLevel.PUBLIC, "shared"),
    ]
    assert [d.allowed for d in await policy.decide(reqs)] == [True, False, True, False, False]
