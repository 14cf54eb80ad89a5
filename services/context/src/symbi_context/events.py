"""The context service on the secure bus: request/reply responders (contract C4).

Subjects (request → reply, both ``symbi.context.v1`` messages):

=====================================  =======================  =======================
subject                                request                  reply
=====================================  =======================  =======================
symbi.rpc.context.store                StoreContextRequest      StoreContextResponse
symbi.rpc.context.retrieve             RetrieveContextRequest   RetrieveContextResponse
symbi.rpc.context.search               SearchKnowledgeRequest   SearchKnowledgeResponse
symbi.rpc.context.ask                  AskRequest               AskResponse
symbi.rpc.context.get                  GetMemoryRequest         MemoryItem
symbi.rpc.context.forget               ForgetRequest            ForgetResponse
symbi.rpc.context.share                ShareMemoryRequest       MemoryItem
symbi.rpc.context.feedback             FeedbackRequest          MemoryItem
symbi.rpc.context.ingest               IngestRequest (whole)    IngestResponse
=====================================  =======================  =======================

The first four are contract C4; the others are additions of the same shape. Every replica
answers ``symbi.rpc.context.<method>`` in the queue group ``context``: services and nodes
send there encrypted to the platform topic. An agent principal (not a platform member)
encrypts to one replica's principal; with more than one replica it sends to that replica's
own subject ``symbi.rpc.context.<replica principal>.<method>`` so the request cannot land
on a replica that cannot open it.

Requests are answered by ``bus_responders`` concurrent loops per subject; each runs
:class:`ContextApi` under the sender's :class:`~symbi_context.audit.Caller` (writes need the
policy's ``write_context``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from google.protobuf.message import Message

from symbi.context.v1 import context_pb2 as pb
from symbi_common.bus import Received
from symbi_common.errors import Unimplemented

from .api import ContextApi
from .audit import CURRENT_CALLER, Caller

__all__ = ["QUEUE_GROUP", "SUBJECT_PREFIX", "BusResponder", "instance_subject", "shared_subject"]

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "symbi.rpc.context"
QUEUE_GROUP = "context"


def shared_subject(method: str = "*") -> str:
    """``symbi.rpc.context.<method>`` (answered by any replica)."""
    return f"{SUBJECT_PREFIX}.{method}"


def instance_subject(principal_id: str, method: str = "*") -> str:
    """``symbi.rpc.context.<principal>.<method>`` (answered by that replica only)."""
    return f"{SUBJECT_PREFIX}.{principal_id}.{method}"


Call = Callable[[ContextApi, Caller, Received], Awaitable[Message]]


async def _one(msg: pb.IngestRequest) -> AsyncIterator[pb.IngestRequest]:
    yield msg


def _methods() -> dict[str, Call]:
    async def store(api: ContextApi, c: Caller, r: Received) -> Message:
        return await api.store(c, r.parse(pb.StoreContextRequest))

    async def retrieve(api: ContextApi, c: Caller, r: Received) -> Message:
        return await api.retrieve(c, r.parse(pb.RetrieveContextRequest))

    async def search(api: ContextApi, c: Caller, r: Received) -> Message:
        return await api.search(c, r.parse(pb.SearchKnowledgeRequest))

    async def ask(api: ContextApi, c: Caller, r: Received) -> Message:
        return await api.ask(c, r.parse(pb.AskRequest))

    async def get(api: ContextApi, c: Caller, r: Received) -> Message:
        return await api.get_memory(c, r.parse(pb.GetMemoryRequest))

    async def forget(api: ContextApi, c: Caller, r: Received) -> Message:
        return await api.forget(c, r.parse(pb.ForgetRequest))

    async def share(api: ContextApi, c: Caller, r: Received) -> Message:
        return await api.share(c, r.parse(pb.ShareMemoryRequest))

    async def feedback(api: ContextApi, c: Caller, r: Received) -> Message:
        return await api.feedback(c, r.parse(pb.FeedbackRequest))

    async def ingest(api: ContextApi, c: Caller, r: Received) -> Message:
        return await api.ingest(c, _one(r.parse(pb.IngestRequest)))

    return {
        "store": store,
        "retrieve": retrieve,
        "search": search,
        "ask": ask,
        "get": get,
        "forget": forget,
        "share": share,
        "feedback": feedback,
        "ingest": ingest,
    }


METHODS = tuple(_methods())


@dataclass
class BusResponder:
    """Answers context requests that arrive over the bus."""

    api: Callable[[], ContextApi]

    def __post_init__(self) -> None:
        self._methods = _methods()

    async def __call__(self, received: Received) -> Message:
        method = received.subject.rsplit(".", 1)[-1]
        call = self._methods.get(method)
        if call is None:
            raise Unimplemented(
                f"{received.subject}: no such context method; known: {', '.join(METHODS)}",
                reason="UNKNOWN_METHOD",
            )
        caller = Caller("bus", received.sender, received.sender_role, check_writes=True)
        token = CURRENT_CALLER.set(caller)
        try:
            return await call(self.api(), caller, received)
        finally:
            CURRENT_CALLER.reset(token)
