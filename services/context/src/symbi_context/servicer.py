"""The gRPC face of the context service: every method hands its request to ContextApi.

gRPC callers are the platform's operators and SDKs (mTLS in production): the request's
``agent_id`` is believed, and writes need the policy's ``write_context`` only with
``context.write_checks = "all"``. Errors are SymbiErrors; the server's interceptor maps them
to status codes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from symbi.context.v1 import context_pb2 as pb
from symbi.context.v1 import context_pb2_grpc as pb_grpc

from .api import ContextApi
from .audit import CURRENT_CALLER, Caller

__all__ = ["ContextServicer"]

_R = TypeVar("_R")


class ContextServicer(pb_grpc.ContextServiceServicer):
    def __init__(self, api: Callable[[], ContextApi], *, check_writes: bool) -> None:
        self._api = api
        self._caller = Caller("grpc", check_writes=check_writes)

    async def _call(self, fn: Callable[[ContextApi, Caller], Awaitable[_R]]) -> _R:
        token = CURRENT_CALLER.set(self._caller)
        try:
            return await fn(self._api(), self._caller)
        finally:
            CURRENT_CALLER.reset(token)

    async def StoreContext(
        self, request: pb.StoreContextRequest, context: Any
    ) -> pb.StoreContextResponse:
        return await self._call(lambda api, c: api.store(c, request))

    async def RetrieveContext(
        self, request: pb.RetrieveContextRequest, context: Any
    ) -> pb.RetrieveContextResponse:
        return await self._call(lambda api, c: api.retrieve(c, request))

    async def GetMemory(self, request: pb.GetMemoryRequest, context: Any) -> pb.MemoryItem:
        return await self._call(lambda api, c: api.get_memory(c, request))

    async def SearchKnowledge(
        self, request: pb.SearchKnowledgeRequest, context: Any
    ) -> pb.SearchKnowledgeResponse:
        return await self._call(lambda api, c: api.search(c, request))

    async def Ingest(
        self, request_iterator: AsyncIterator[pb.IngestRequest], context: Any
    ) -> pb.IngestResponse:
        return await self._call(lambda api, c: api.ingest(c, request_iterator))

    async def GetDocument(self, request: pb.GetDocumentRequest, context: Any) -> pb.Document:
        return await self._call(lambda api, c: api.get_document(c, request))

    async def Ask(self, request: pb.AskRequest, context: Any) -> pb.AskResponse:
        return await self._call(lambda api, c: api.ask(c, request))

    async def Forget(self, request: pb.ForgetRequest, context: Any) -> pb.ForgetResponse:
        return await self._call(lambda api, c: api.forget(c, request))

    async def ShareMemory(self, request: pb.ShareMemoryRequest, context: Any) -> pb.MemoryItem:
        return await self._call(lambda api, c: api.share(c, request))

    async def Feedback(self, request: pb.FeedbackRequest, context: Any) -> pb.MemoryItem:
        return await self._call(lambda api, c: api.feedback(c, request))
