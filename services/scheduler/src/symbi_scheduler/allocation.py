"""The ``allocate`` question in the policy service's request form.

The policy service takes ``{"principal", "action", "resource", "context", "entities"}`` with
Cedar entity ids, validated against Symbi's schema (``symbi_common.cedar``): principal
``Symbi::Agent``, resource ``Symbi::Node``, and a ``RequestContext`` of integers and strings.
The node is sent as a request entity (its tiers, and labels as ``key=value`` strings) because
the scheduler, not the policy store, knows the nodes.
"""

from __future__ import annotations

import math
from typing import Any

from symbi_common.cedar import NAMESPACE

from .ports import AllocationRequest

__all__ = ["allocation_question"]


def allocation_question(request: AllocationRequest) -> dict[str, Any]:
    """``request`` as a policy-service request (JSON-compatible)."""
    node = {"type": f"{NAMESPACE}::Node", "id": request.node_id}
    r = request.resources
    return {
        "principal": {"type": f"{NAMESPACE}::Agent", "id": request.agent_id},
        "action": "allocate",
        "resource": node,
        "context": {
            "priority": request.priority.label,
            "tier": request.tier.value,
            "memory_mb": r.memory_mb,
            "cpu_millicores": r.cpu_millicores,
            # Cedar has integers only; round up so a limit is never under-reported.
            "timeout_s": math.ceil(r.execution_timeout_s),
            "reason": (
                f"preempts {len(request.preempts)} task(s)" if request.preempts else "placement"
            ),
        },
        "entities": [
            {
                "uid": node,
                "attrs": {
                    "tiers": sorted(t.value for t in request.node_tiers),
                    "labels": [f"{k}={v}" for k, v in sorted(request.node_labels.items())],
                },
                "parents": [],
            }
        ],
    }
