"""Asking the policy service for decisions over the bus — and failing closed.

Every service that gates an action (scheduler: ``allocate``; lifecycle: ``create_agent``;
mcp-gateway: ``tool_call``; context: ``read_context``/``share_context``; sandbox:
``network``, ``send_message``, …) uses :class:`PolicyClient`. It sends a
``symbi.policy.v1.EvaluateRequest`` on ``symbi.rpc.policy.evaluate`` (request/reply on the
platform topic, answered by any policy replica) and turns the ``DecisionResult`` into a
:class:`PolicyDecision`.

When the policy service does not answer in time, is unreachable, or answers with an error,
the decision is a *deny* whose reason says so (``fail_closed=True``): nothing is allowed
because the gate was down.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from symbi.policy.v1 import policy_pb2
from symbi_common.bus.secure_bus import SecureBus
from symbi_common.errors import SymbiError

__all__ = [
    "EVALUATE_BATCH_SUBJECT",
    "EVALUATE_SUBJECT",
    "EntityRef",
    "PolicyClient",
    "PolicyDecision",
    "PolicyQuestion",
]

log = logging.getLogger(__name__)

EVALUATE_SUBJECT = "symbi.rpc.policy.evaluate"
EVALUATE_BATCH_SUBJECT = "symbi.rpc.policy.evaluate_batch"

_DECISIONS = {
    policy_pb2.DECISION_ALLOW: "allow",
    policy_pb2.DECISION_DENY: "deny",
    policy_pb2.DECISION_ALLOW_WITH_CONDITIONS: "allow_with_conditions",
}


@dataclass(frozen=True)
class EntityRef:
    """``EntityRef("Agent", "agent-7")``; the ``Symbi::`` namespace is optional."""

    type: str
    id: str

    def to_proto(self) -> policy_pb2.EntityRef:
        return policy_pb2.EntityRef(type=self.type, id=self.id)


@dataclass(frozen=True)
class PolicyQuestion:
    """One authorization request: may ``principal`` do ``action`` on ``resource``?"""

    principal: EntityRef
    action: str
    resource: EntityRef
    context: Mapping[str, Any] = field(default_factory=dict)
    #: Entities the caller vouches for, added to the policy service's stored set.
    entities: Sequence[Mapping[str, Any]] = ()

    def to_proto(self) -> policy_pb2.AuthorizationRequest:
        request = policy_pb2.AuthorizationRequest(
            principal=self.principal.to_proto(),
            action=self.action,
            resource=self.resource.to_proto(),
        )
        request.context.update(dict(self.context))
        for entity in self.entities:
            message = request.entities.add()
            uid = entity["uid"]
            message.uid.CopyFrom(policy_pb2.EntityRef(type=uid["type"], id=uid["id"]))
            message.attrs.update(dict(entity.get("attrs", {})))
            for parent in entity.get("parents", ()):
                message.parents.add(type=parent["type"], id=parent["id"])
        return request


@dataclass(frozen=True)
class PolicyDecision:
    decision: str  # allow | deny | allow_with_conditions
    reasons: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
    version: int = 0
    #: True when this deny comes from the gate being unavailable or unable to decide, not
    #: from a policy.
    fail_closed: bool = False
    entities_version: int = 0

    @property
    def allowed(self) -> bool:
        return self.decision != "deny"

    def reason_text(self) -> str:
        return "; ".join(self.reasons) or ("allowed" if self.allowed else "denied by policy")

    @classmethod
    def from_proto(cls, result: policy_pb2.DecisionResult) -> PolicyDecision:
        decision = _DECISIONS.get(result.decision, "deny")
        reasons = tuple(result.reasons)
        if result.decision not in _DECISIONS:
            reasons = (*reasons, "the policy service returned no decision")
        return cls(
            decision=decision,
            reasons=reasons,
            conditions=tuple(result.conditions),
            policies=tuple(result.policies),
            version=result.version,
            fail_closed=result.fail_closed,
            entities_version=result.entities_version,
        )

    @classmethod
    def closed(cls, why: str) -> PolicyDecision:
        return cls("deny", (f"policy service unavailable: {why}",), fail_closed=True)


class PolicyClient:
    """Decisions from the policy service, over the secure bus; deny when it cannot answer."""

    def __init__(self, bus: SecureBus, *, timeout_s: float = 2.0, topic: str = "platform") -> None:
        self.bus = bus
        self.timeout_s = timeout_s
        self.topic = topic

    async def evaluate(self, question: PolicyQuestion) -> PolicyDecision:
        request = policy_pb2.EvaluateRequest(request=question.to_proto())
        try:
            reply = await self.bus.request(
                EVALUATE_SUBJECT, request, topic=self.topic, timeout=self.timeout_s
            )
            response = reply.parse(policy_pb2.EvaluateResponse)
        except SymbiError as exc:
            log.warning("policy check %s failed closed: %s", question.action, exc.message)
            return PolicyDecision.closed(exc.message)
        return PolicyDecision.from_proto(response.result)

    async def evaluate_batch(self, questions: Iterable[PolicyQuestion]) -> list[PolicyDecision]:
        batch = list(questions)
        if not batch:
            return []
        request = policy_pb2.EvaluateBatchRequest(requests=[q.to_proto() for q in batch])
        try:
            reply = await self.bus.request(
                EVALUATE_BATCH_SUBJECT, request, topic=self.topic, timeout=self.timeout_s
            )
            response = reply.parse(policy_pb2.EvaluateBatchResponse)
        except SymbiError as exc:
            log.warning("policy batch of %d failed closed: %s", len(batch), exc.message)
            return [PolicyDecision.closed(exc.message) for _ in batch]
        if len(response.results) != len(batch):
            return [
                PolicyDecision.closed("the policy service answered a different number of requests")
            ] * len(batch)
        return [PolicyDecision.from_proto(result) for result in response.results]
