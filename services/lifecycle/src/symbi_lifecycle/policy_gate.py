"""The policy service over the secure bus (contracts C1 and C2).

Decisions go through :class:`~symbi_common.policy_client.PolicyClient` (fail closed). The
store writes use the policy service's request subjects:

- ``put_entities``: the Agent entity (``capabilities``, ``sandbox_tier``, ``owner``);
- ``put_policy``: the agent's compiled Cedar as ``agents/<agent id>``;
- ``delete_policy`` / ``delete_entities`` on terminate (an absent one is fine).

Who asks: ``create_agent`` and ``modify_agent`` are asked with this lifecycle process as the
principal (``Symbi::Service::"svc-lifecycle-<instance>"``, attribute ``role = "lifecycle"``)
and the agent as the resource, with the agent's tier and limits in the context. Before its
first question the gate registers that principal and, unless configured off, installs the
base policy ``lifecycle/base`` when absent (ADR 0043).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from google.protobuf.message import Message

from symbi.policy.v1 import policy_pb2
from symbi_common.bus import SecureBus
from symbi_common.errors import Aborted, AlreadyExists, FailedPrecondition, NotFound, SymbiError
from symbi_common.policy_client import EntityRef, PolicyClient, PolicyDecision, PolicyQuestion
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


def policy_document(agent_id: str) -> str:
    return f"agents/{agent_id}"


def _rpc(method: str) -> str:
    return f"symbi.rpc.policy.{method}"


class BusPolicyGate:
    """:class:`~symbi_lifecycle.ports.PolicyGate` over the bus."""

    def __init__(
        self, bus: SecureBus, *, timeout_s: float = 2.0, install_base_policy: bool = True
    ) -> None:
        self.bus = bus
        self.timeout_s = timeout_s
        self.install_base_policy = install_base_policy
        self.client = PolicyClient(bus, timeout_s=timeout_s)
        self.principal = EntityRef("Service", bus.principal_id)
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()

    async def _request(self, method: str, request: Message, response: type[Any]) -> Any:
        reply = await self.bus.request(
            _rpc(method), request, topic="platform", timeout=self.timeout_s
        )
        return reply.parse(response)

    async def bootstrap(self) -> None:
        """Register this process as a principal, and the base policy (once per process)."""
        if self._ready.is_set():
            return
        async with self._lock:
            if self._ready.is_set():
                return
            entity = policy_pb2.Entity(uid=self.principal.to_proto())
            entity.attrs.update({"role": "lifecycle"})
            await self._request(
                "put_entities",
                policy_pb2.PutEntitiesRequest(entities=[entity]),
                policy_pb2.PutEntitiesResponse,
            )
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
        await self._request(
            "put_entities",
            policy_pb2.PutEntitiesRequest(entities=[self._agent_entity(record)]),
            policy_pb2.PutEntitiesResponse,
        )

    async def _decide(self, action: str, record: AgentRecord, reason: str = "") -> PolicyDecision:
        try:
            await self.bootstrap()
        except SymbiError as exc:
            return PolicyDecision.closed(exc.message)
        return await self.client.evaluate(
            PolicyQuestion(
                self.principal, action, EntityRef("Agent", record.id), self._context(record, reason)
            )
        )

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
            await self._request(
                "delete_entities",
                policy_pb2.DeleteEntitiesRequest(uids=[EntityRef("Agent", record.id).to_proto()]),
                policy_pb2.DeleteEntitiesResponse,
            )


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
