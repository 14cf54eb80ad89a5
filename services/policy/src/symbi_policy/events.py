"""The policy service on the secure bus: contract C1's responders and its announcements.

Request/reply subjects (queue group ``policy``, any replica answers):

======================================  ===============================================
subject                                 who may ask
======================================  ===============================================
``symbi.rpc.policy.evaluate``           services and nodes for anyone; an agent only
``symbi.rpc.policy.evaluate_batch``     about itself (principal ``Agent::"<its id>"``)
``symbi.rpc.policy.put_policy``         role ``service`` only
``symbi.rpc.policy.delete_policy``      role ``service`` only
``symbi.rpc.policy.put_entities``       role ``service`` only
``symbi.rpc.policy.delete_entities``    role ``service`` only
======================================  ===============================================

Errors travel back as SymbiErrors (the bus carries code, reason and details; a policy
validation error's details name the document, policy, line and column).

Every write is announced as ``PolicyChanged`` on ``symbi.policy.changed`` (topic
``platform``) and recorded as a ``policy.changed`` audit event, by the replica that made it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from google.protobuf.message import Message

from symbi.bus.v1 import events_pb2
from symbi.policy.v1 import policy_pb2
from symbi_common.bus import Received, SecureBus
from symbi_common.errors import PermissionDenied, SymbiError
from symbi_common.jetstream.spec import Subjects
from symbi_common.policy_client import EVALUATE_BATCH_SUBJECT, EVALUATE_SUBJECT
from symbi_policy.convert import (
    document_to_proto,
    entities_from_proto,
    evaluation_to_proto,
    request_from_proto,
    uid_from_proto,
)
from symbi_policy.operations import PolicyChange, PolicyOperations
from symbi_policy.request import AuthzRequest
from symbi_policy.schema import qualify_type

__all__ = [
    "CHANGED_SUBJECT",
    "DELETE_ENTITIES_SUBJECT",
    "DELETE_POLICY_SUBJECT",
    "PUT_ENTITIES_SUBJECT",
    "PUT_POLICY_SUBJECT",
    "QUEUE",
    "BusChangeAnnouncer",
    "PolicyResponders",
]

logger = logging.getLogger(__name__)

QUEUE = "policy"
PUT_POLICY_SUBJECT = Subjects.rpc("policy", "put_policy")
DELETE_POLICY_SUBJECT = Subjects.rpc("policy", "delete_policy")
PUT_ENTITIES_SUBJECT = Subjects.rpc("policy", "put_entities")
DELETE_ENTITIES_SUBJECT = Subjects.rpc("policy", "delete_entities")
CHANGED_SUBJECT = "symbi.policy.changed"
#: Ids listed in one announcement or audit event; the rest are counted.
MAX_LISTED_IDS = 1_000

Responder = Callable[[Received], Awaitable[Message]]
_AGENT_TYPE = qualify_type("Agent")


class PolicyResponders:
    """The bus face of :class:`PolicyOperations` (one responder per subject)."""

    def __init__(self, operations: PolicyOperations) -> None:
        self._operations = operations

    def routes(self) -> list[tuple[str, Responder]]:
        return [
            (EVALUATE_SUBJECT, self.evaluate),
            (EVALUATE_BATCH_SUBJECT, self.evaluate_batch),
            (PUT_POLICY_SUBJECT, self.put_policy),
            (DELETE_POLICY_SUBJECT, self.delete_policy),
            (PUT_ENTITIES_SUBJECT, self.put_entities),
            (DELETE_ENTITIES_SUBJECT, self.delete_entities),
        ]

    async def evaluate(self, received: Received) -> policy_pb2.EvaluateResponse:
        message = received.parse(policy_pb2.EvaluateRequest)
        request = request_from_proto(message.request)
        _check_may_ask(received, (request,))
        await self._operations.admit(1)
        evaluation = self._operations.evaluate(request)
        return policy_pb2.EvaluateResponse(result=evaluation_to_proto(evaluation))

    async def evaluate_batch(self, received: Received) -> policy_pb2.EvaluateBatchResponse:
        message = received.parse(policy_pb2.EvaluateBatchRequest)
        requests = [request_from_proto(r, f"requests[{i}]") for i, r in enumerate(message.requests)]
        _check_may_ask(received, requests)
        await self._operations.admit(len(requests))
        evaluations = self._operations.evaluate_batch(requests)
        return policy_pb2.EvaluateBatchResponse(
            results=[evaluation_to_proto(e) for e in evaluations]
        )

    async def put_policy(self, received: Received) -> policy_pb2.PutPolicyResponse:
        _require_service(received, "put_policy")
        message = received.parse(policy_pb2.PutPolicyRequest)
        expected = message.expected_version if message.HasField("expected_version") else None
        document = await self._operations.put_policy(
            message.id,
            message.source,
            expected_revision=expected,
            origin=message.origin,
            actor=received.sender,
        )
        return policy_pb2.PutPolicyResponse(policy=document_to_proto(document))

    async def delete_policy(self, received: Received) -> policy_pb2.DeletePolicyResponse:
        _require_service(received, "delete_policy")
        message = received.parse(policy_pb2.DeletePolicyRequest)
        expected = message.expected_version if message.HasField("expected_version") else None
        version = await self._operations.delete_policy(
            message.id, expected_revision=expected, actor=received.sender
        )
        return policy_pb2.DeletePolicyResponse(version=version)

    async def put_entities(self, received: Received) -> policy_pb2.PutEntitiesResponse:
        _require_service(received, "put_entities")
        message = received.parse(policy_pb2.PutEntitiesRequest)
        version = await self._operations.put_entities(
            entities_from_proto(message.entities), actor=received.sender
        )
        return policy_pb2.PutEntitiesResponse(entities_version=version)

    async def delete_entities(self, received: Received) -> policy_pb2.DeleteEntitiesResponse:
        _require_service(received, "delete_entities")
        message = received.parse(policy_pb2.DeleteEntitiesRequest)
        uids = [uid_from_proto(u, f"uids[{i}]") for i, u in enumerate(message.uids)]
        version = await self._operations.delete_entities(uids, actor=received.sender)
        return policy_pb2.DeleteEntitiesResponse(entities_version=version)


def _require_service(received: Received, what: str) -> None:
    if received.sender_role != "service":
        raise PermissionDenied(
            f"{what} is for services only; {received.sender} is a {received.sender_role}",
            reason="SERVICE_ONLY",
        )


def _check_may_ask(received: Received, requests: Sequence[AuthzRequest]) -> None:
    """Services and nodes may ask about anyone; an agent only about itself."""
    if received.sender_role in ("service", "node"):
        return
    if received.sender_role == "agent":
        for request in requests:
            principal = request.principal
            if principal.type != _AGENT_TYPE or principal.id != received.sender:
                raise PermissionDenied(
                    f"agent {received.sender} may only ask about itself, not {principal}",
                    reason="NOT_YOUR_DECISION",
                )
        return
    raise PermissionDenied(
        f"{received.sender} (role {received.sender_role}) may not ask for decisions",
        reason="ROLE_NOT_ALLOWED",
    )


class BusChangeAnnouncer:
    """Publishes ``PolicyChanged`` and records ``policy.changed`` for every write."""

    def __init__(self, bus: SecureBus, *, timeout_s: float = 5.0) -> None:
        self._bus = bus
        self._timeout_s = timeout_s

    async def announce(self, change: PolicyChange) -> None:
        listed = list(change.ids[:MAX_LISTED_IDS])
        entity_change = change.kind.startswith("entities")
        ids = [f"entity:{i}" for i in listed] if entity_change else listed
        message = events_pb2.PolicyChanged(
            version=change.version, changed_ids=ids, actor=change.actor
        )
        details: dict[str, Any] = {
            "change": change.kind,
            "version": change.version,
            "by": change.actor,
            "count": len(change.ids),
        }
        if entity_change:
            details["entities"] = listed
        else:
            details["policy_id"] = change.ids[0] if len(change.ids) == 1 else ""
            details["policies"] = listed
        await self._attempt(
            "PolicyChanged",
            lambda: self._bus.publish("platform", message, subject=CHANGED_SUBJECT),
            change,
        )
        await self._attempt(
            "the policy.changed audit event",
            lambda: self._bus.recorder.record("policy.changed", details=details),
            change,
        )

    async def _attempt(
        self, what: str, call: Callable[[], Awaitable[object]], change: PolicyChange
    ) -> None:
        # The write is stored and every replica reloads it from the bucket whatever happens
        # here; a lost announcement is logged, not turned into a failed write.
        try:
            async with asyncio.timeout(self._timeout_s):
                await call()
        except (SymbiError, TimeoutError) as exc:
            logger.error(
                "could not publish %s for %s v%d: %s", what, change.kind, change.version, exc
            )
