"""The policy service over the secure bus (contracts C1 and C2).

Requests on the policy service's subjects (topic "platform"):

- ``evaluate_batch``: ``create_agent`` and ``modify_agent`` decisions (concurrent ones in
  one request); no answer in time is a deny that fails closed;
- ``put_entities``: the Agent entity (``capabilities``, ``sandbox_tier``, ``owner``);
- ``put_policy``: the agent's compiled Cedar as ``agents/<agent id>`` (origin ``dsl:<id>``);
- ``delete_policy`` / ``delete_entities`` on terminate (an absent one is fine).

Who asks: this lifecycle process is the principal (``Symbi::Service::"svc-lifecycle-<instance>"``,
attribute ``role = "lifecycle"``) and the agent the resource, with the agent's tier and
limits in the context. Before its first question the gate registers that principal and,
unless configured off, installs the base policy ``lifecycle/base`` when absent (ADR 0043).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any

from google.protobuf.message import Message

from symbi.policy.v1 import policy_pb2
from symbi_common.bus import SecureBus
from symbi_common.errors import Aborted, AlreadyExists, FailedPrecondition, NotFound, SymbiError
from symbi_common.policy_client import EntityRef, PolicyDecision, PolicyQuestion
from symbi_lifecycle.batching import Batcher
from symbi_lifecycle.record import AgentRecord

__all__ = ["BASE_POLICY", "BASE_POLICY_ID", "BusPolicyGate", "OpenPolicyGate", "policy_document"]

log = logging.getLogger(__name__)

BASE_POLICY_ID = "lifecycle/base"
BASE_POLICY = """\
@id("lifecycle-base")
@description("The lifecycle service may create agents and change their state; restrict it with forbids.")
permit(
    principal is Symbi::Service,
    action in [Symbi::Action::"create_agent", Symbi::Action::"modify_agent"],
    resource is Symbi::Agent
)
when { principal.role == "lifecycle" };
"""


#: Decisions by a replica behind this gate's own registration are asked again this often.
_STALE_RETRIES = 10


def policy_document(agent_id: str) -> str:
    return f"agents/{agent_id}"


def _rpc(method: str) -> str:
    return f"symbi.rpc.policy.{method}"


class BusPolicyGate:
    """:class:`~symbi_lifecycle.ports.PolicyGate` over the bus.

    Entity writes and decisions of concurrent calls are coalesced (``put_entities``,
    ``delete_entities`` and ``evaluate_batch`` carry up to ``max_batch`` each), so a burst
    of creates costs the policy service a few writes and rebuilds, not one per agent. A
    decision made by a replica that has not yet loaded the entity this gate just wrote
    (its ``entities_version`` is older) is asked again, briefly, instead of being taken
    for a deny. :meth:`run` must run (the service spawns it).
    """

    def __init__(
        self,
        bus: SecureBus,
        *,
        timeout_s: float = 2.0,
        write_timeout_s: float = 10.0,
        install_base_policy: bool = True,
        max_batch: int = 256,
    ) -> None:
        self.bus = bus
        self.timeout_s = timeout_s
        self.write_timeout_s = write_timeout_s
        self.install_base_policy = install_base_policy
        self.principal = EntityRef("Service", bus.principal_id)
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()
        # A call may wait for the request in flight before its own goes out.
        write_wait_s = write_timeout_s * 2
        self._puts: Batcher[policy_pb2.Entity, int] = Batcher(
            "put_entities", self._put_entities, max_batch=max_batch, wait_s=write_wait_s
        )
        self._deletes: Batcher[policy_pb2.EntityRef, int] = Batcher(
            "delete_entities", self._delete_entities, max_batch=max_batch, wait_s=write_wait_s
        )
        self._decisions: Batcher[policy_pb2.AuthorizationRequest, policy_pb2.DecisionResult] = (
            Batcher(
                "evaluate_batch", self._evaluate_batch, max_batch=max_batch, wait_s=timeout_s * 2
            )
        )
        #: The entities version each agent's registration produced (read by its decision).
        self._registered: dict[str, int] = {}

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for batcher in (self._puts, self._deletes, self._decisions):
                group.create_task(batcher.run(), name=f"policy-{batcher.name}")

    async def _request(
        self, method: str, request: Message, response: type[Any], *, write: bool = True
    ) -> Any:
        timeout = self.write_timeout_s if write else self.timeout_s
        reply = await self.bus.request(_rpc(method), request, topic="platform", timeout=timeout)
        return reply.parse(response)

    async def _put_entities(self, entities: list[policy_pb2.Entity]) -> list[int]:
        unique = {(e.uid.type, e.uid.id): e for e in entities}  # one request may name each once
        response = await self._request(
            "put_entities",
            policy_pb2.PutEntitiesRequest(entities=list(unique.values())),
            policy_pb2.PutEntitiesResponse,
        )
        return [response.entities_version] * len(entities)

    async def _delete_entities(self, uids: list[policy_pb2.EntityRef]) -> list[int]:
        unique = {(u.type, u.id): u for u in uids}
        response = await self._request(
            "delete_entities",
            policy_pb2.DeleteEntitiesRequest(uids=list(unique.values())),
            policy_pb2.DeleteEntitiesResponse,
        )
        return [response.entities_version] * len(uids)

    async def _evaluate_batch(
        self, requests: list[policy_pb2.AuthorizationRequest]
    ) -> list[policy_pb2.DecisionResult]:
        response = await self._request(
            "evaluate_batch",
            policy_pb2.EvaluateBatchRequest(requests=requests),
            policy_pb2.EvaluateBatchResponse,
            write=False,
        )
        return list(response.results)

    async def bootstrap(self) -> None:
        """Register this process as a principal, and the base policy (once per process)."""
        if self._ready.is_set():
            return
        async with self._lock:
            if self._ready.is_set():
                return
            entity = policy_pb2.Entity(uid=self.principal.to_proto())
            entity.attrs.update({"role": "lifecycle"})
            await self._puts.call(entity)
            if self.install_base_policy:
                try:
                    await self._request(
                        "put_policy",
                        policy_pb2.PutPolicyRequest(
                            id=BASE_POLICY_ID, source=BASE_POLICY, expected_version=0
                        ),
                        policy_pb2.PutPolicyResponse,
                    )
                    log.info("installed the base policy %s", BASE_POLICY_ID)
                except (AlreadyExists, Aborted, FailedPrecondition):
                    pass  # present already (perhaps edited by an operator): keep it
            self._ready.set()

    def _agent_entity(self, record: AgentRecord) -> policy_pb2.Entity:
        entity = policy_pb2.Entity(uid=EntityRef("Agent", record.id).to_proto())
        attrs: dict[str, Any] = {
            "capabilities": list(record.capabilities),
            "sandbox_tier": record.tier,
        }
        if record.owner:
            attrs["owner"] = record.owner
        entity.attrs.update(attrs)
        return entity

    def _context(self, record: AgentRecord, reason: str = "") -> dict[str, Any]:
        context: dict[str, Any] = {
            "tier": record.tier,
            "memory_mb": record.memory_mb,
            "cpu_millicores": record.cpu_millicores,
            "timeout_s": max(1, record.timeout_ms // 1000),
        }
        if reason:
            context["reason"] = reason
        return context

    async def register(self, record: AgentRecord) -> None:
        await self.bootstrap()
        version = await self._puts.call(self._agent_entity(record))
        if len(self._registered) >= 100_000:  # bounded: a registration never decided
            self._registered.clear()
        self._registered[record.id] = version

    async def _decide(self, action: str, record: AgentRecord, reason: str = "") -> PolicyDecision:
        question = PolicyQuestion(
            self.principal, action, EntityRef("Agent", record.id), self._context(record, reason)
        )
        wanted = self._registered.pop(record.id, 0)
        try:
            await self.bootstrap()
            for attempt in range(_STALE_RETRIES):
                result = await self._decisions.call(question.to_proto())
                stale = result.entities_version < wanted
                if not stale or result.decision == policy_pb2.DECISION_ALLOW:
                    break
                # That replica has not loaded the registration yet: ask again shortly.
                await asyncio.sleep(0.05 * (attempt + 1))
        except SymbiError as exc:
            log.warning("policy check %s of %s failed closed: %s", action, record.id, exc.message)
            return PolicyDecision.closed(exc.message)
        if stale and result.decision != policy_pb2.DECISION_ALLOW:
            return PolicyDecision.closed(
                f"the policy service has not loaded entities version {wanted} "
                f"(it decided with {result.entities_version})"
            )
        decision = PolicyDecision.from_proto(result)
        # from_proto leaves fail_closed unset; an engine that could not decide is no deny.
        return dataclasses.replace(decision, fail_closed=result.fail_closed)

    async def allow_create(self, record: AgentRecord) -> PolicyDecision:
        return await self._decide("create_agent", record)

    async def allow_modify(self, record: AgentRecord, reason: str) -> PolicyDecision:
        return await self._decide("modify_agent", record, reason)

    async def install(self, record: AgentRecord, cedar: str) -> None:
        await self._request(
            "put_policy",
            policy_pb2.PutPolicyRequest(
                id=policy_document(record.id), source=cedar, origin=f"dsl:{record.id}"
            ),
            policy_pb2.PutPolicyResponse,
        )

    async def unregister(self, record: AgentRecord) -> None:
        if record.policy_ids:
            with contextlib.suppress(NotFound):
                await self._request(
                    "delete_policy",
                    policy_pb2.DeletePolicyRequest(id=policy_document(record.id)),
                    policy_pb2.DeletePolicyResponse,
                )
        with contextlib.suppress(NotFound):
            await self._deletes.call(EntityRef("Agent", record.id).to_proto())


class OpenPolicyGate:
    """The gate when ``[security] enforce_policies = false``: nothing is registered and
    everything is allowed. Named in every decision's reason, so it is never mistaken for a
    policy decision."""

    REASON = "policy enforcement is off ([security] enforce_policies = false)"

    async def register(self, record: AgentRecord) -> None:
        return None

    async def allow_create(self, record: AgentRecord) -> PolicyDecision:
        return PolicyDecision("allow", (self.REASON,))

    async def allow_modify(self, record: AgentRecord, reason: str) -> PolicyDecision:
        return PolicyDecision("allow", (self.REASON,))

    async def install(self, record: AgentRecord, cedar: str) -> None:
        return None

    async def unregister(self, record: AgentRecord) -> None:
        return None
