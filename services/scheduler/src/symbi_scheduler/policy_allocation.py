"""``AllocationPolicy`` over the policy service (contract C1: ``symbi.rpc.policy.evaluate``).

The question is the ``allocate`` action of ``allocation_question``: principal the agent,
resource the node (sent as a request entity with its tiers and labels, which only the
scheduler knows), context the request. The policy client fails closed — a deny marked
``fail_closed`` when the service cannot answer; the scheduler turns that into "no answer"
(``Unavailable``): the task stays queued at its rank instead of failing, and nothing is placed
until the policy service answers.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from symbi_common.errors import Unavailable
from symbi_common.policy_client import EntityRef, PolicyClient, PolicyQuestion

from .allocation import allocation_question
from .nats_errors import nats_call
from .ports import AllocationDecision, AllocationRequest

__all__ = ["PolicyAllocation"]

log = logging.getLogger(__name__)

DECISIONS = Counter(
    "symbi_scheduler_allocate_decisions_total",
    "Answers to the allocate question, by outcome.",
    ["outcome"],
)


class PolicyAllocation:
    """Asks the policy service before every placement. With ``enforce=False``
    (``security.enforce_policies = false``) every allocation is allowed without asking."""

    def __init__(self, client: PolicyClient, *, enforce: bool = True) -> None:
        self._client = client
        self._enforce = enforce

    async def allocate(self, request: AllocationRequest) -> AllocationDecision:
        if not self._enforce:
            DECISIONS.labels("not_enforced").inc()
            return AllocationDecision(True)
        q = allocation_question(request)
        question = PolicyQuestion(
            EntityRef("Agent", request.agent_id),
            "allocate",
            EntityRef("Node", request.node_id),
            context=q["context"],
            entities=q["entities"],
        )
        async with nats_call("policy allocate"):
            decision = await self._client.evaluate(question)
        if decision.fail_closed:
            DECISIONS.labels("no_answer").inc()
            raise Unavailable(decision.reason_text(), reason="POLICY_UNAVAILABLE")
        DECISIONS.labels("allow" if decision.allowed else "deny").inc()
        if decision.allowed:
            return AllocationDecision(True)
        return AllocationDecision(False, decision.reason_text())
