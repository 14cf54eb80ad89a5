"""Who may call which SchedulerService method (ADR 0013).

Scheduling is ``schedule`` on ``Agent::"<agent id>"``. Cancel names only a task, so it is
``schedule`` on ``Agent::"*"``: whoever may schedule any agent may cancel. Removing a node
is ``administer`` on ``Node::"<node id>"``. Reading tasks, nodes and the queue is open to
every admitted caller.
"""

from __future__ import annotations

from typing import Any

from symbi_common.grpc.authz import OPEN, ByPolicy, MethodRules, Resource

__all__ = ["SCHEDULER_RULES"]


def _agent(request: Any) -> Resource:
    return Resource("Agent", request.agent_id or "(none)")


def _node(request: Any) -> Resource:
    return Resource("Node", request.node_id or "(none)")


SCHEDULER_RULES: MethodRules = {
    "ScheduleAgent": ByPolicy("schedule", _agent),
    "Cancel": ByPolicy("schedule", Resource("Agent", "*")),
    "RemoveNode": ByPolicy("administer", _node),
    "GetTask": OPEN,
    "ListTasks": OPEN,
    "GetSystemStatus": OPEN,
    "ListNodes": OPEN,
    "WatchQueue": OPEN,
}
