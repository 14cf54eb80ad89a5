"""The default configuration end to end: the ONNX all-MiniLM-L6-v2 embedder in the service
process, semantic retrieval over gRPC (no shared words between question and memory), and a
cited extractive answer. One test: the model takes seconds to load on two cores."""

from __future__ import annotations

from symbi.context.v1 import context_pb2 as pb
from symbi_testing.services import ServiceCluster

from .service import context_stub, memory, start_context

A = "agent-minilm000001"


async def test_semantic_store_retrieve_ask(services: ServiceCluster) -> None:
    proc = await start_context(services, embedder="minilm")
    async with context_stub(proc) as stub:
        stored = await stub.StoreContext(
            pb.StoreContextRequest(
                agent_id=A,
                items=[
                    memory("The customer's dog is called Biscuit and loves long walks."),
                    memory("Invoices are sent on the first working day of each month."),
                    memory("The production database runs PostgreSQL 16 on three replicas."),
                ],
            ),
            timeout=30,
        )
        found = await stub.RetrieveContext(
            pb.RetrieveContextRequest(agent_id=A, query="What is the name of the client's pet?"),
            timeout=30,
        )
        assert found.items[0].item.id == stored.ids[0]
        assert found.items[0].vector_score > found.items[1].vector_score

        answer = await stub.Ask(
            pb.AskRequest(agent_id=A, question="Which SQL engine backs production?"), timeout=30
        )
        assert "PostgreSQL" in answer.answer
        assert answer.sources[0].chunk_id == stored.ids[2]
        assert "[1]" in answer.answer
