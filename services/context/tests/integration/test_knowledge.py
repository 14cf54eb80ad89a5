"""The knowledge base on the real embedded engine: formats, dedup, update, delete,
retention, size limits and visibility across owners."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from symbi_common.errors import InvalidArgument, NotFound, PermissionDenied
from symbi_context import (
    AccessLevel,
    ClearancePolicy,
    DocumentFormat,
    EdgeVectorStore,
    HashingEmbedder,
    KnowledgeBase,
    KnowledgeOptions,
    KnowledgeQuery,
    NewDocument,
)

MARKDOWN = """# Runbook

## Restarting the ingest worker

Drain the queue first. Then restart the worker with the deploy tool.
Check the dashboard for errors afterwards.

```bash
# not a heading: a comment inside a code fence
deploy restart ingest-worker
```

## Rotating keys

Keys rotate every ninety days. The rotation job runs at midnight UTC.
"""


@pytest.fixture
async def kb(tmp_path: Path, clock: Any) -> AsyncIterator[KnowledgeBase]:
    store = EdgeVectorStore(tmp_path / "store")
    policy = ClearancePolicy(
        clearances={"auditor": AccessLevel.CONFIDENTIAL, "ops": AccessLevel.SECRET}
    )
    base = KnowledgeBase(
        store,
        HashingEmbedder(),
        policy,
        KnowledgeOptions(
            chunk_chars=200, overlap_chars=40, max_document_bytes=20_000, retention_days=30
        ),
        clock=clock,
    )
    await base.open()
    yield base
    await store.aclose()


async def test_markdown_is_chunked_by_section_and_searchable(kb: KnowledgeBase) -> None:
    result = await kb.ingest("ops", NewDocument(MARKDOWN, DocumentFormat.MARKDOWN, title="Runbook"))
    assert result.chunks >= 2
    assert result.embedded == result.chunks
    assert not result.deduplicated
    hits = await kb.search("ops", KnowledgeQuery("how often do keys rotate", limit=3))
    assert hits[0].section == "Runbook > Rotating keys"
    assert "ninety days" in hits[0].text
    assert hits[0].doc_id == result.doc_id
    assert hits[0].score > 0
    sections = {
        h.section for h in await kb.search("ops", KnowledgeQuery("deploy restart worker", limit=10))
    }
    assert "Runbook > Restarting the ingest worker" in sections
    assert not any("not a heading" in s for s in sections)


async def test_json_is_flattened_into_path_value_lines(kb: KnowledgeBase) -> None:
    doc = json.dumps(
        {
            "services": [
                {"name": "billing", "owner": "team-ledger", "port": 8443},
                {"name": "search", "owner": "team-find", "oncall": True},
            ]
        }
    )
    result = await kb.ingest("ops", NewDocument(doc, DocumentFormat.JSON))
    assert result.chunks == 2
    hits = await kb.search("ops", KnowledgeQuery("who owns billing", limit=1))
    assert "services[0].owner: team-ledger" in hits[0].text
    with pytest.raises(InvalidArgument, match="not valid JSON") as err:
        await kb.ingest("ops", NewDocument('{"a": ', DocumentFormat.JSON))
    assert err.value.details["line"] == "1"


async def test_same_content_is_deduplicated_and_changed_chunks_reembedded(
    kb: KnowledgeBase,
) -> None:
    text = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(40))
    first = await kb.ingest("ops", NewDocument(text))
    again = await kb.ingest("ops", NewDocument(text + "\n"))  # same after normalising
    assert again.deduplicated
    assert again.doc_id == first.doc_id
    other_owner = await kb.ingest("auditor", NewDocument(text))
    assert not other_owner.deduplicated  # dedup is per owner

    changed = text.replace("Sentence number 39 talks about topic 4.", "A brand new closing line.")
    update = await kb.ingest("ops", NewDocument(changed, doc_id=first.doc_id))
    assert not update.deduplicated
    assert update.reused >= first.chunks - 2
    assert 1 <= update.embedded <= 2
    assert update.embedded + update.reused == update.chunks
    assert update.removed == first.chunks - update.reused
    info = await kb.document("ops", first.doc_id)
    assert info.chunks == update.chunks
    assert info.content_hash == update.content_hash
    hits = await kb.search(
        "ops", KnowledgeQuery("brand new closing line", limit=1, include_others=False)
    )
    assert "brand new closing line" in hits[0].text


async def test_delete_removes_every_chunk(kb: KnowledgeBase) -> None:
    result = await kb.ingest(
        "ops", NewDocument(MARKDOWN, DocumentFormat.MARKDOWN, doc_id="runbook-1")
    )
    assert result.doc_id == "runbook-1"
    assert await kb.delete("ops", "runbook-1") == result.chunks
    assert await kb.search("ops", KnowledgeQuery("rotate keys")) == []
    with pytest.raises(NotFound):
        await kb.delete("ops", "runbook-1")
    with pytest.raises(NotFound):
        await kb.document("ops", "runbook-1")


async def test_retention_hides_and_purges_old_documents(kb: KnowledgeBase, clock: Any) -> None:
    await kb.ingest("ops", NewDocument("The old office was on Baker Street."))
    clock.advance(20 * 86400)
    await kb.ingest("ops", NewDocument("The new office is on Harbour Road."))
    assert len(await kb.search("ops", KnowledgeQuery("office street road"))) == 2
    clock.advance(15 * 86400)  # the first is now 35 days old, past the 30-day retention
    hits = await kb.search("ops", KnowledgeQuery("office street road"))
    assert [h.text for h in hits] == ["The new office is on Harbour Road."]
    assert await kb.purge_expired() == 1
    assert await kb.purge_expired() == 0


async def test_oversized_and_empty_documents_are_invalid(kb: KnowledgeBase) -> None:
    with pytest.raises(InvalidArgument, match="at most 20000 bytes") as err:
        await kb.ingest("ops", NewDocument("x" * 20_001))
    assert err.value.reason == "DOCUMENT_TOO_LARGE"
    with pytest.raises(InvalidArgument, match="no text"):
        await kb.ingest("ops", NewDocument("   \n  "))
    with pytest.raises(InvalidArgument, match="not UTF-8"):
        await kb.ingest("ops", NewDocument(b"\xff\xfe bad"))


async def test_visibility_follows_access_level_and_policy(kb: KnowledgeBase) -> None:
    await kb.ingest(
        "ops", NewDocument("Public: the status page lives at status.example.", tags=("web",))
    )
    await kb.ingest(
        "ops",
        NewDocument(
            "Confidential: the status page admin is Dana.", access_level=AccessLevel.CONFIDENTIAL
        ),
    )
    await kb.ingest(
        "ops",
        NewDocument("Secret: the status page token is t0k3n.", access_level=AccessLevel.SECRET),
    )
    q = KnowledgeQuery("status page", limit=10)
    assert {h.text.split(":")[0] for h in await kb.search("guest", q)} == {"Public"}
    assert {h.text.split(":")[0] for h in await kb.search("auditor", q)} == {
        "Public",
        "Confidential",
    }
    assert {h.text.split(":")[0] for h in await kb.search("ops", q)} == {
        "Public",
        "Confidential",
        "Secret",
    }
    assert await kb.search("guest", KnowledgeQuery("status page", include_others=False)) == []
    assert [
        h.text for h in await kb.search("guest", KnowledgeQuery("status page", tags=("web",)))
    ] == ["Public: the status page lives at status.example."]
    with pytest.raises(PermissionDenied):
        await kb.ingest("guest", NewDocument("guest secret", access_level=AccessLevel.SECRET))
