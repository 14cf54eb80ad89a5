"""Who may call which ContextService method (ADR 0013).

Memory methods act on ``Agent::"<agent id>"``, knowledge methods on
``Dataset::"knowledge/<agent id>"`` (``knowledge/platform`` for the platform's knowledge
base): reads are ``read_context``, writes ``write_context``, sharing ``share_context``.
Ingest is decided on its stream's first message.
"""

from __future__ import annotations

from typing import Any

from symbi_common.grpc.authz import ByPolicy, MethodRules, Resource

__all__ = ["CONTEXT_RULES"]


def _memory(request: Any) -> Resource:
    return Resource("Agent", request.agent_id or "(none)")


def _stored(request: Any) -> Resource:
    # StoreContext's owner: the request's, else the items' (one agent per request).
    items = [request.item] if request.HasField("item") else list(request.items)
    owner = request.agent_id or (items[0].agent_id if items else "")
    return Resource("Agent", owner or "(none)")


def _knowledge(request: Any) -> Resource:
    return Resource("Dataset", f"knowledge/{request.agent_id or 'platform'}")


CONTEXT_RULES: MethodRules = {
    "StoreContext": ByPolicy("write_context", _stored),
    "RetrieveContext": ByPolicy("read_context", _memory),
    "GetMemory": ByPolicy("read_context", _memory),
    "Forget": ByPolicy("write_context", _memory),
    "Feedback": ByPolicy("write_context", _memory),
    "ShareMemory": ByPolicy("share_context", _memory),
    "SearchKnowledge": ByPolicy("read_context", _knowledge),
    "GetDocument": ByPolicy("read_context", _knowledge),
    "Ask": ByPolicy("read_context", _knowledge),
    "Ingest": ByPolicy("write_context", _knowledge),
}
