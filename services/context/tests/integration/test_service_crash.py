"""Kill -9 of the context process loses no acknowledged memory.

Writers store memories over gRPC as fast as the service acknowledges them; the process is
killed with SIGKILL mid-stream and started again on the same data directory. Every memory
whose StoreContext returned is there, and the restarted service takes new writes.
"""

from __future__ import annotations

import asyncio
import contextlib

import grpc

from symbi.context.v1 import context_pb2 as pb
from symbi.context.v1 import context_pb2_grpc as pb_grpc
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

from .service import context_stub, memory, start_context

A = "agent-crash0000001"


async def test_kill_9_loses_no_acknowledged_memory(services: ServiceCluster) -> None:
    proc = await start_context(services, instance="k")
    acked: dict[str, str] = {}

    async def writer(stub: pb_grpc.ContextServiceStub, w: int) -> None:
        i = 0
        while True:
            content = f"writer {w} remembers fact number {i}"
            try:
                reply = await stub.StoreContext(
                    pb.StoreContextRequest(item=memory(content, agent_id=A)), timeout=5
                )
            except grpc.aio.AioRpcError:
                return  # the process is gone
            acked[reply.id] = content
            i += 1

    async with context_stub(proc) as stub:
        writers = [asyncio.create_task(writer(stub, w)) for w in range(4)]
        try:
            await eventually(lambda: len(acked) >= 200, timeout=60)
            assert not any(t.done() for t in writers), "a writer stopped before the kill"
            proc.kill()
            await asyncio.wait_for(asyncio.gather(*writers), timeout=30)
        finally:
            for t in writers:
                t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*writers, return_exceptions=True)
    assert proc.returncode == -9

    restarted = await start_context(services, instance="k")
    async with context_stub(restarted) as stub:
        for memory_id, content in acked.items():
            item = await stub.GetMemory(
                pb.GetMemoryRequest(agent_id=A, memory_id=memory_id), timeout=10
            )
            assert item.content == content
        found = await stub.RetrieveContext(
            pb.RetrieveContextRequest(agent_id=A, query="writer 2 remembers fact number 7"),
            timeout=10,
        )
        assert found.items
        after = await stub.StoreContext(
            pb.StoreContextRequest(item=memory("written after the restart", agent_id=A)),
            timeout=10,
        )
        assert after.id
