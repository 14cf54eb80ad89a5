"""Isolation decided by the real policy service (its process, policies pushed over gRPC).

Agent B never sees agent A's memory or documents unless A shared them and a policy permits
B ``read_context`` on them; a node writing for an agent over the bus needs ``write_context``.
"""

from __future__ import annotations

import pytest

from symbi.context.v1 import context_pb2 as pb
from symbi_common.errors import ErrorCode, PermissionDenied
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

from .service import (
    bus_endpoint,
    context_stub,
    ingest_stream,
    memory,
    put_policy,
    register_agents,
    rpc_error,
    start_context,
)

A = "agent-aaaaaaaaaaaa"
B = "agent-bbbbbbbbbbbb"

A_SHARES = f"""
@id("a-shares")
permit(
  principal == Symbi::Agent::"{A}",
  action == Symbi::Action::"share_context",
  resource
) when {{ context has access_level && context.access_level != "secret" }};
"""

B_READS_PUBLIC = f"""
@id("b-reads-a-public")
permit(
  principal == Symbi::Agent::"{B}",
  action == Symbi::Action::"read_context",
  resource
) when {{
  (resource == Symbi::Agent::"{A}" || resource == Symbi::Dataset::"knowledge/{A}") &&
  context has access_level && context.access_level == "public"
}};
"""

A_WRITES_LONG_TERM = f"""
@id("a-writes")
permit(
  principal == Symbi::Agent::"{A}",
  action == Symbi::Action::"write_context",
  resource == Symbi::Agent::"{A}"
) when {{ context has memory_type && context.memory_type == "long_term" }};
"""


async def test_sharing_needs_the_policy(services: ServiceCluster) -> None:
    policy = await services.start_serving("policy", instance="p")
    proc = await start_context(services)
    await register_agents(policy, A, B)
    await put_policy(policy, "test/a-shares", A_SHARES)
    async with context_stub(proc) as stub:

        async def store(item: pb.MemoryItem) -> str:
            reply = await stub.StoreContext(
                pb.StoreContextRequest(agent_id=A, item=item), timeout=10
            )
            return reply.id

        private = await store(memory("Project Falcon budget is 2.4 million euros"))
        public = await eventually(
            lambda: store(
                memory(
                    "Project Falcon kickoff meeting is on Monday",
                    access=pb.ACCESS_LEVEL_PUBLIC,
                )
            ),
            timeout=20,
        )
        restricted = await store(
            memory("Project Falcon supplier is Acme Corp", access=pb.ACCESS_LEVEL_RESTRICTED)
        )
        denied = await rpc_error(
            stub.StoreContext(
                pb.StoreContextRequest(
                    agent_id=A,
                    item=memory("Project Falcon password", access=pb.ACCESS_LEVEL_SECRET),
                ),
                timeout=10,
            )
        )
        assert denied.code is ErrorCode.PERMISSION_DENIED
        await ingest_stream(
            stub,
            [
                pb.IngestRequest(
                    agent_id=A, document_id="falcon", chunk=b"Project Falcon ships in May."
                )
            ],
        )

        async def b_sees() -> set[str]:
            found = await stub.RetrieveContext(
                pb.RetrieveContextRequest(
                    agent_id=B, query="Project Falcon", include_shared=True, limit=20
                ),
                timeout=10,
            )
            return {m.item.id for m in found.items}

        async def b_documents() -> set[str]:
            hits = await stub.SearchKnowledge(
                pb.SearchKnowledgeRequest(agent_id=B, query="Project Falcon ships"), timeout=10
            )
            return {p.document_id for p in hits.passages}

        # No policy lets B read: nothing of A's, shared or not.
        assert await b_sees() == set()
        assert await b_documents() == set()
        for memory_id in (private, public, restricted):
            hidden = await rpc_error(
                stub.GetMemory(pb.GetMemoryRequest(agent_id=B, memory_id=memory_id), timeout=10)
            )
            assert hidden.code is ErrorCode.NOT_FOUND
        answer = await stub.Ask(
            pb.AskRequest(agent_id=B, question="What is the Project Falcon budget?"), timeout=10
        )
        assert all(s.owner != A for s in answer.sources)
        assert "2.4" not in answer.answer

        # The policy permits B to read A's public data: exactly the public shared memory and
        # the public document — never the private or restricted memories.
        await put_policy(policy, "test/b-reads", B_READS_PUBLIC)

        async def b_sees_public_only() -> bool:
            assert await b_sees() == {public}
            return True

        await eventually(b_sees_public_only, timeout=20)
        assert await b_documents() == {"falcon"}
        got = await stub.GetMemory(pb.GetMemoryRequest(agent_id=B, memory_id=public), timeout=10)
        assert got.agent_id == A
        answer = await stub.Ask(
            pb.AskRequest(agent_id=B, question="What is the Project Falcon budget?"), timeout=10
        )
        from_a = [s for s in answer.sources if s.owner == A]
        assert {s.chunk_id for s in from_a if s.kind == "memory"} <= {public}
        assert {s.document_id for s in from_a if s.kind == "knowledge"} <= {"falcon"}
        assert "2.4" not in answer.answer

    # Over the bus a node writes for A only as far as write_context permits.
    await put_policy(policy, "test/a-writes", A_WRITES_LONG_TERM)
    async with bus_endpoint(services, "node-t2", "node") as node:
        await eventually(lambda: node.bus.groups.latest("platform") is not None, timeout=20)

        async def node_store(item: pb.MemoryItem) -> pb.StoreContextResponse:
            reply = await node.bus.request(
                "symbi.rpc.context.store",
                pb.StoreContextRequest(agent_id=A, item=item),
                topic="platform",
                timeout=10,
            )
            return reply.parse(pb.StoreContextResponse)

        written = await eventually(lambda: node_store(memory("Falcon review passed")), timeout=20)
        assert written.items[0].agent_id == A
        with pytest.raises(PermissionDenied) as refused:
            await node_store(memory("scratch", type=pb.MEMORY_TYPE_SHORT_TERM))
        assert refused.value.reason == "WRITE_DENIED"
