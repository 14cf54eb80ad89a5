"""Who may call which SandboxService method (ADR 0013).

Running a task on this node is ``execute`` on ``Node::"<this node>"``; killing one is
``administer`` on it. Reading executions, logs and the node's resources is open to every
admitted caller. Worker nodes never call a sandbox over gRPC (tasks arrive on the bus).
"""

from __future__ import annotations

from symbi_common.grpc.authz import OPEN, ByPolicy, MethodRules, Resource

__all__ = ["sandbox_rules"]


def sandbox_rules(node_id: str) -> MethodRules:
    node = Resource("Node", node_id)
    return {
        "Run": ByPolicy("execute", node),
        "Kill": ByPolicy("administer", node),
        "Get": OPEN,
        "Logs": OPEN,
        "NodeInfo": OPEN,
    }
