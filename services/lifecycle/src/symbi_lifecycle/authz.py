"""Who may call which LifecycleService method (ADR 0013).

Creating an agent is ``create_agent`` and changing its state ``modify_agent``, on
``Agent::"<id>"`` (``Agent::"(new)"`` when the create leaves the id to the service); the
lifecycle service then asks its own ``create_agent``/``modify_agent`` questions as before.
Reading agents and watching transitions are open to every admitted caller.
"""

from __future__ import annotations

from typing import Any

from symbi_common.grpc.authz import OPEN, ByPolicy, MethodRules, Resource

__all__ = ["LIFECYCLE_RULES"]


def _new_agent(request: Any) -> Resource:
    return Resource("Agent", request.agent_id or "(new)")


def _agent(request: Any) -> Resource:
    return Resource("Agent", request.id or "(none)")


_MODIFY = ByPolicy("modify_agent", _agent)

LIFECYCLE_RULES: MethodRules = {
    "CreateAgent": ByPolicy("create_agent", _new_agent),
    "Suspend": _MODIFY,
    "Resume": _MODIFY,
    "Terminate": _MODIFY,
    "GetAgent": OPEN,
    "ListAgents": OPEN,
    "WatchAgent": OPEN,
    "GetHistory": OPEN,
}
