"""The context service as a process, over gRPC: memory, knowledge, answers and bad input.

The service runs with the hashing embedder here (instant start); test_service_minilm.py runs
the default ONNX model end to end.
"""

from __future__ import annotations

import json

from symbi.context.v1 import context_pb2 as pb
from symbi_common.errors import ErrorCode
from symbi_testing.services import ServiceCluster

from .service import context_stub, ingest_stream, memory, rpc_error, start_context

A = "agent-aaaaaaaaaaaa"


async def test_store_retrieve_ask_forget(services: ServiceCluster) -> None:
    proc = await start_context(services)
    async with context_stub(proc) as stub:
        stored = await stub.StoreContext(
            pb.StoreContextRequest(
                agent_id=A,
                items=[
                    memory("The deployment window for the billing system is Tuesday 14:00 UTC"),
                    memory("Alice prefers reports as PDF files", tags=["prefs"]),
                    memory(
                        "scratch: step 3 of the migration is done",
                        type=pb.MEMORY_TYPE_WORKING,
                        task_id="task-1",
                    ),
                ],
            ),
            timeout=10,
        )
        assert len(stored.ids) == 3
        assert stored.items[0].type == pb.MEMORY_TYPE_LONG_TERM
        assert stored.items[2].task_id == "task-1"

        found = await stub.RetrieveContext(
            pb.RetrieveContextRequest(agent_id=A, query="billing deployment window", limit=2),
            timeout=10,
        )
        assert found.items[0].item.id == stored.ids[0]
        assert found.items[0].owned
        assert found.items[0].score > 0

        tagged = await stub.RetrieveContext(
            pb.RetrieveContextRequest(
                agent_id=A,
                query="reports",
                filter=json.dumps({"must": [{"key": "tags", "match": "prefs"}]}),
            ),
            timeout=10,
        )
        assert [m.item.id for m in tagged.items] == [stored.ids[1]]

        answer = await stub.Ask(
            pb.AskRequest(agent_id=A, question="When is the billing deployment window?"),
            timeout=10,
        )
        assert "Tuesday" in answer.answer
        assert answer.mode == "extractive"
        assert answer.sources[0].chunk_id == stored.ids[0]
        assert answer.sources[0].kind == "memory"
        assert answer.sources[0].number == 1

        forgot = await stub.Forget(
            pb.ForgetRequest(agent_id=A, ids=[stored.ids[0]], task_id="task-1"), timeout=10
        )
        assert (forgot.memories, forgot.working, forgot.documents) == (1, 1, 0)
        missing = await rpc_error(
            stub.GetMemory(pb.GetMemoryRequest(agent_id=A, memory_id=stored.ids[0]), timeout=10)
        )
        assert missing.code is ErrorCode.NOT_FOUND


async def test_ingest_search_and_ask_with_sources(services: ServiceCluster) -> None:
    proc = await start_context(services)
    text = (
        b"# Runbook\n\n## Restarting the queue\n\nTo restart the ingest queue, drain it first "
        b"with `queuectl drain`, then restart the workers one by one.\n\n## Backups\n\n"
        b"Backups of the ledger run nightly at 02:00 and are kept for 35 days.\n"
    )
    async with context_stub(proc) as stub:
        result = await ingest_stream(
            stub,
            [
                pb.IngestRequest(
                    agent_id=A,
                    document_id="runbook",
                    content_type="text/markdown",
                    title="Ops runbook",
                    source="wiki://ops/runbook",
                    chunk=text[:40],
                ),
                pb.IngestRequest(chunk=text[40:], end_of_document=True),
                pb.IngestRequest(content_type="text/plain", chunk=b"The cafeteria opens at 8."),
            ],
        )
        assert result.document_ids[0] == "runbook"
        assert len(result.documents) == 2
        assert result.chunks >= 3

        again = await ingest_stream(
            stub,
            [
                pb.IngestRequest(
                    agent_id=A, content_type="text/plain", chunk=b"The cafeteria opens at 8."
                )
            ],
        )
        assert again.duplicates == 1
        assert again.document_ids == [result.document_ids[1]]

        hits = await stub.SearchKnowledge(
            pb.SearchKnowledgeRequest(agent_id=A, query="how long are ledger backups kept"),
            timeout=10,
        )
        assert hits.passages[0].document_id == "runbook"
        assert "35 days" in hits.passages[0].text
        assert hits.passages[0].source == "wiki://ops/runbook"

        answer = await stub.Ask(
            pb.AskRequest(agent_id=A, question="How long are ledger backups kept?"), timeout=10
        )
        assert "35 days" in answer.answer
        assert answer.sources[0].kind == "knowledge"
        assert answer.sources[0].document_id == "runbook"

        info = await stub.GetDocument(
            pb.GetDocumentRequest(agent_id=A, document_id="runbook"), timeout=10
        )
        assert info.content_type == "text/markdown"
        assert info.title == "Ops runbook"

        gone = await stub.Forget(pb.ForgetRequest(agent_id=A, ids=["runbook"]), timeout=10)
        assert gone.documents == 1
        after = await stub.SearchKnowledge(
            pb.SearchKnowledgeRequest(agent_id=A, query="ledger backups"), timeout=10
        )
        assert all(p.document_id != "runbook" for p in after.passages)


async def test_bad_input_is_invalid_argument(services: ServiceCluster) -> None:
    proc = await start_context(services, env={"SYMBI_CONTEXT__MAX_DOCUMENT_BYTES": "4KiB"})
    async with context_stub(proc) as stub:
        await stub.StoreContext(
            pb.StoreContextRequest(item=memory("something to search", agent_id=A)), timeout=10
        )

        async def invalid(call: object) -> str:
            error = await rpc_error(call)  # type: ignore[arg-type]
            assert error.code is ErrorCode.INVALID_ARGUMENT, error
            return error.reason

        # Oversized: a document over the limit stops the stream.
        big = [
            pb.IngestRequest(agent_id=A, chunk=b"x" * 3000),
            pb.IngestRequest(chunk=b"y" * 3000),
        ]
        assert await invalid(ingest_stream(stub, big)) == "DOCUMENT_TOO_LARGE"
        assert (
            await invalid(
                stub.StoreContext(
                    pb.StoreContextRequest(item=memory("z" * 20_000, agent_id=A)), timeout=10
                )
            )
            == "CONTENT_TOO_LARGE"
        )
        # Wrong vector dimension.
        assert (
            await invalid(
                stub.RetrieveContext(
                    pb.RetrieveContextRequest(agent_id=A, query="x", query_vector=[0.5] * 17),
                    timeout=10,
                )
            )
            == "WRONG_VECTOR_DIMENSION"
        )
        # Malformed filters: not JSON, wrong shape, an undeclared field, an isolation field.
        for bad, reason in (
            ("{not json", "MALFORMED_FILTER"),
            (json.dumps({"must": {"key": "tags"}}), "MALFORMED_FILTER"),
            (json.dumps({"must": [{"key": "colour", "match": "red"}]}), "UNKNOWN_FILTER_FIELD"),
            (
                json.dumps({"must": [{"key": "agent_id", "match": "agent-x"}]}),
                "RESERVED_FILTER_FIELD",
            ),
        ):
            got = await invalid(
                stub.RetrieveContext(
                    pb.RetrieveContextRequest(agent_id=A, query="x", filter=bad), timeout=10
                )
            )
            assert got == reason, (bad, got)
        assert (
            await invalid(
                ingest_stream(
                    stub, [pb.IngestRequest(agent_id=A, content_type="image/png", chunk=b"x")]
                )
            )
            == "BAD_CONTENT_TYPE"
        )
        assert (
            await invalid(
                stub.RetrieveContext(
                    pb.RetrieveContextRequest(agent_id="bad id!", query="x"), timeout=10
                )
            )
            == "BAD_AGENT_ID"
        )
        # The process lives on.
        ok = await stub.RetrieveContext(
            pb.RetrieveContextRequest(agent_id=A, query="something"), timeout=10
        )
        assert len(ok.items) == 1
