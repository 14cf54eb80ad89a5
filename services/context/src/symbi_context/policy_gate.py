"""The policy port over the policy service (symbi_common.policy_client), failing closed.

Cedar requests (schema: libs/common/src/symbi_common/cedar/symbi.cedarschema):

==========================  ==========================  ========================================
what                        principal / action          resource
==========================  ==========================  ========================================
read another's memory       Agent::reader read_context  Agent::owner
read another's document     Agent::reader read_context  Dataset::"knowledge/<owner>"
share memory / publish doc  Agent::owner share_context  Agent::owner / Dataset::"knowledge/<owner>"
write one's memory          Agent::agent write_context  Agent::agent  (``memory_type`` in context)
write one's knowledge       Agent::agent write_context  Dataset::"knowledge/<agent>"
==========================  ==========================  ========================================

Every request's context carries ``memory_type`` (``short_term`` … ``shared``, or
``knowledge``), ``tags``, ``target`` (``memory`` | ``knowledge``: what a DSL rule such as
``read(memory)`` names) and, for reads and shares, ``access_level`` (``public`` …
``secret``).

The policy service decides only on known entities: agents are registered by the lifecycle
service (contract C2); the ``Dataset::"knowledge/<owner>"`` entities are this service's, upserted
(without attributes) when an owner first ingests — policies read the document's level from
``context.access_level``.

When the policy service cannot answer, :class:`~symbi_common.policy_client.PolicyClient`
denies (``fail_closed``). Reads then simply do not see other agents' data; a write or a share
raises :class:`~symbi_common.errors.Unavailable` (retryable) instead of a denial that would
look like the policy's answer.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter

from symbi.policy.v1 import policy_pb2
from symbi_common.errors import PermissionDenied, SymbiError, Unavailable
from symbi_common.policy_client import EntityRef, PolicyClient, PolicyDecision, PolicyQuestion

from .ports import AccessDecision, AccessRequest

__all__ = ["KNOWLEDGE_TYPE", "PolicyServicePort", "question_for"]

log = logging.getLogger(__name__)

#: ``memory_type`` of knowledge-base requests (the domain's name for them).
KNOWLEDGE_TYPE = "knowledge"

DECISIONS = Counter(
    "symbi_context_policy_decisions_total",
    "Policy decisions the context service asked for, by action and outcome.",
    ["action", "outcome"],
)

#: Contract C1: entity upserts (callers with role service only).
PUT_ENTITIES_SUBJECT = "symbi.rpc.policy.put_entities"

_WRITE_ACTIONS = frozenset({"share_context", "write_context"})


def _resource(owner: str, memory_type: str) -> EntityRef:
    if memory_type == KNOWLEDGE_TYPE:
        return EntityRef("Dataset", f"knowledge/{owner}")
    return EntityRef("Agent", owner)


def question_for(request: AccessRequest) -> PolicyQuestion:
    """The Cedar question for one domain access request."""
    context: dict[str, Any] = {
        "memory_type": request.memory_type,
        "access_level": request.access_level.value,
        "target": KNOWLEDGE_TYPE if request.memory_type == KNOWLEDGE_TYPE else "memory",
        "tags": list(request.tags),
    }
    return PolicyQuestion(
        EntityRef("Agent", request.principal),
        request.action,
        _resource(request.owner, request.memory_type),
        context,
    )


def write_question(agent_id: str, memory_type: str, tags: Sequence[str] = ()) -> PolicyQuestion:
    """``write_context`` of an agent on its own memory (or knowledge)."""
    return PolicyQuestion(
        EntityRef("Agent", agent_id),
        "write_context",
        _resource(agent_id, memory_type),
        {
            "memory_type": memory_type,
            "target": KNOWLEDGE_TYPE if memory_type == KNOWLEDGE_TYPE else "memory",
            "tags": list(tags),
        },
    )


class PolicyServicePort:
    """:class:`~symbi_context.ports.PolicyPort` backed by the policy service, plus the write
    gate of the service edges and the registration of knowledge datasets."""

    def __init__(self, client: PolicyClient, *, max_known_datasets: int = 100_000) -> None:
        self._client = client
        self._known_datasets: OrderedDict[str, None] = OrderedDict()
        self._max_known = max_known_datasets

    async def ensure_dataset(self, owner: str) -> None:
        """Register ``Dataset::"knowledge/<owner>"`` in the policy's entity set (an upsert
        without attributes, once per owner and process): the policy service decides only
        on known resources. Unavailable when the policy service cannot take it."""
        if owner in self._known_datasets:
            self._known_datasets.move_to_end(owner)
            return
        ref = _resource(owner, KNOWLEDGE_TYPE)
        request = policy_pb2.PutEntitiesRequest(
            entities=[policy_pb2.Entity(uid=policy_pb2.EntityRef(type=ref.type, id=ref.id))]
        )
        try:
            reply = await self._client.bus.request(
                PUT_ENTITIES_SUBJECT,
                request,
                topic=self._client.topic,
                timeout=self._client.timeout_s,
            )
            reply.parse(policy_pb2.PutEntitiesResponse)
        except SymbiError as exc:
            raise Unavailable(
                f"cannot register {ref.type}::{ref.id!r} with the policy service: {exc.message}",
                reason="POLICY_UNAVAILABLE",
            ) from None
        self._known_datasets[owner] = None
        if len(self._known_datasets) > self._max_known:
            self._known_datasets.popitem(last=False)

    async def _evaluate(self, questions: Sequence[PolicyQuestion]) -> list[PolicyDecision]:
        if len(questions) == 1:
            return [await self._client.evaluate(questions[0])]
        return await self._client.evaluate_batch(questions)

    async def decide(self, requests: Sequence[AccessRequest]) -> list[AccessDecision]:
        """One decision per request; Unavailable when a write-like action could not be
        decided (reads fail closed as denials)."""
        if not requests:
            return []
        decisions = await self._evaluate([question_for(r) for r in requests])
        out = []
        for request, decision in zip(requests, decisions, strict=True):
            self._count(request.action, decision)
            if decision.fail_closed and request.action in _WRITE_ACTIONS:
                raise Unavailable(
                    f"cannot decide {request.action} now: {decision.reason_text()}",
                    reason="POLICY_UNAVAILABLE",
                )
            out.append(AccessDecision(decision.allowed, decision.reason_text()))
        return out

    async def authorize_writes(self, agent_id: str, memory_types: Sequence[str]) -> None:
        """Raise PermissionDenied unless ``agent_id`` may write every one of ``memory_types``
        (Unavailable when the policy service cannot answer)."""
        kinds = list(dict.fromkeys(memory_types))
        if not kinds:
            return
        decisions = await self._evaluate([write_question(agent_id, k) for k in kinds])
        for kind, decision in zip(kinds, decisions, strict=True):
            self._count("write_context", decision)
            if decision.fail_closed:
                raise Unavailable(
                    f"cannot decide write_context now: {decision.reason_text()}",
                    reason="POLICY_UNAVAILABLE",
                )
            if not decision.allowed:
                raise PermissionDenied(
                    f"{agent_id} may not write {kind} context: {decision.reason_text()}",
                    reason="WRITE_DENIED",
                    details={"memory_type": kind},
                )

    @staticmethod
    def _count(action: str, decision: PolicyDecision) -> None:
        outcome = "unavailable" if decision.fail_closed else decision.decision
        DECISIONS.labels(action, outcome).inc()
