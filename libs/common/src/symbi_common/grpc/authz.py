"""Per-method authorization of gRPC calls by policy (ADR 0013).

Every gRPC service of the platform declares, for each of its methods, a :data:`MethodRule`:

- :class:`ByPolicy` — the call is an action on a resource, decided by the policy service
  with the caller as principal (``User::"<id>"`` for role ``user``, ``Service::"<id>"`` for
  role ``service``), the action, the resource the rule derives from the request, and a
  context naming the method (``grpc_method``). Worker nodes (role ``node``) are refused.
- :class:`Open` — any admitted caller (``Open(nodes=True)``: worker nodes too).

:func:`check_rules` refuses a table that leaves a method of the service undecided or names
one it does not have, so adding an RPC without deciding who may call it fails at start-up
(and in the rule tables' unit tests).

:class:`MethodAuthorizer` enforces the tables, inside the caller interceptor
(:mod:`symbi_common.grpc.auth`), only when mTLS is on: without TLS the caller is unknown
and the listener is on loopback (the dev mode, which trusts the local machine). It asks a
:class:`Decider` — the process's :class:`~symbi_common.policy_client.PolicyClient` over the
bus, or the policy service's own engine — and answers PERMISSION_DENIED naming the action,
the resource and the policy's reasons, or UNAVAILABLE when policy cannot be reached (fail
closed). The policy service audits the decisions it makes, denies included.

The policy service decides only about principals and resources it knows. A caller or a
resource it does not hold in its entity set is vouched for in the request (the principal
without attributes or roles, the resource as the rule describes it) and the question asked
again — a request may add entities but never restate stored ones, so a stored entity (an
operator's ``Role`` memberships, a tool's attributes) is never overridden. The authorizer
remembers what it had to vouch for (bounded) and vouches for it at once the next time; when
the policy service has registered it since, it forgets it and asks again.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from google.protobuf.descriptor import ServiceDescriptor

from symbi_common.errors import InvalidArgument, PermissionDenied, Unavailable
from symbi_common.grpc.tls import Caller
from symbi_common.policy_client import EntityRef, PolicyDecision, PolicyQuestion

__all__ = [
    "OPEN",
    "ByPolicy",
    "Decider",
    "MethodAuthorizer",
    "MethodRule",
    "MethodRules",
    "Open",
    "Resource",
    "check_rules",
]

log = logging.getLogger(__name__)

#: Principal entity types by certificate role (``node`` is not a policy principal).
PRINCIPAL_TYPES: Mapping[str, str] = {"user": "User", "service": "Service"}

#: Attributes a vouched-for principal gets (the schema requires ``role`` on a Service).
_VOUCHED_ATTRS: Mapping[str, Mapping[str, Any]] = {
    "User": {},
    "Service": {"role": "unregistered"},
}

_UNAVAILABLE_PREFIX = "policy service unavailable"


@dataclass(frozen=True)
class Resource:
    """A Cedar resource (``Resource("Tool", "srv/grep", {"name": "grep"}, parents=…)``) with
    what the server vouches for when the policy service does not hold it."""

    type: str
    id: str
    attrs: Mapping[str, Any] = field(default_factory=dict)
    parents: tuple[EntityRef, ...] = ()

    @property
    def ref(self) -> EntityRef:
        return EntityRef(self.type, self.id)

    def entity(self) -> dict[str, Any]:
        return {
            "uid": {"type": self.type, "id": self.id},
            "attrs": dict(self.attrs),
            "parents": [{"type": p.type, "id": p.id} for p in self.parents],
        }

    def __str__(self) -> str:
        return f'{self.type}::"{self.id}"'


@dataclass(frozen=True)
class ByPolicy:
    """The method is ``action`` on ``resource`` (fixed, or derived from the request — the
    first message of a client stream), decided by policy."""

    action: str
    resource: Resource | Callable[[Any], Resource]

    def resource_for(self, request: Any) -> Resource:
        if isinstance(self.resource, Resource):
            return self.resource
        return self.resource(request)

    @property
    def needs_request(self) -> bool:
        return not isinstance(self.resource, Resource)


@dataclass(frozen=True)
class Open:
    """Any admitted caller (users and services; worker nodes only with ``nodes=True``)."""

    nodes: bool = False


OPEN = Open()

MethodRule = ByPolicy | Open
#: One service's rules by method name (``{"PutPolicy": ByPolicy(...), "GetStatus": OPEN}``).
MethodRules = Mapping[str, MethodRule]


def check_rules(service: ServiceDescriptor, rules: MethodRules) -> None:
    """ValueError unless ``rules`` decides every method of ``service`` and no other."""
    methods = {m.name for m in service.methods}
    missing = sorted(methods - set(rules))
    unknown = sorted(set(rules) - methods)
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"methods without a rule: {', '.join(missing)}")
        if unknown:
            parts.append(f"rules for methods it does not have: {', '.join(unknown)}")
        raise ValueError(
            f"authorization rules of {service.full_name}: {'; '.join(parts)} "
            "(every method is ByPolicy(...) or Open(); see ADR 0013)"
        )


class Decider(Protocol):
    """Where decisions come from: :class:`~symbi_common.policy_client.PolicyClient`, or the
    policy service's own engine. Denies (never raises) when it cannot decide."""

    async def evaluate(self, question: PolicyQuestion) -> PolicyDecision: ...


def _key(entity: Mapping[str, Any]) -> str:
    return f"{entity['uid']['type']}::{entity['uid']['id']}"


def _restated(decision: PolicyDecision) -> bool:
    # The engine's deny for request entities it holds already (a request may only add).
    return not decision.allowed and any(
        "a request may only add entities" in r for r in decision.reasons
    )


def _unknown(decision: PolicyDecision, role: str) -> bool:
    # The policy engine's deny for an entity outside its set (symbi_policy.engine).
    return (
        not decision.allowed
        and not decision.fail_closed
        and any(r.startswith(f"unknown {role} ") for r in decision.reasons)
    )


class MethodAuthorizer:
    """Decides each call by the rule of its method (see the module docstring).

    ``rules`` maps full method names (``/symbi.policy.v1.PolicyService/PutPolicy``) to rules;
    methods of services without a table are not decided here (the role check still applies).
    Decisions need a :class:`Decider` (:meth:`use`); until then a decided method is
    UNAVAILABLE."""

    def __init__(self, rules: Mapping[str, MethodRule], *, max_vouched: int = 4096) -> None:
        self.rules = dict(rules)
        self.max_vouched = max_vouched
        self._decider: Decider | None = None
        #: Entities the policy service did not hold when last asked (most recent last).
        self._vouch: OrderedDict[str, None] = OrderedDict()

    @property
    def enforcing(self) -> bool:
        return bool(self.rules)

    def use(self, decider: Decider) -> None:
        self._decider = decider

    def rule(self, full_method: str) -> MethodRule | None:
        return self.rules.get(full_method)

    async def authorize(self, full_method: str, who: Caller, request: Any) -> None:
        """Return when ``who`` may call; raise PermissionDenied or Unavailable otherwise."""
        rule = self.rules.get(full_method)
        if rule is None:
            return
        principal_type = PRINCIPAL_TYPES.get(who.role)
        if isinstance(rule, Open):
            if who.role == "node" and not rule.nodes:
                self._refuse_node(full_method, who)
            return
        if principal_type is None:
            self._refuse_node(full_method, who)
        if request is None and rule.needs_request:
            raise InvalidArgument(f"{full_method}: the request stream is empty")
        resource = rule.resource_for(request)
        decision = await self._decide(full_method, who, principal_type, rule.action, resource)
        details = {
            "method": full_method,
            "principal": f'{principal_type}::"{who.principal_id}"',
            "action": rule.action,
            "resource": str(resource),
        }
        if decision.allowed:
            return
        reasons = decision.reason_text()
        if decision.fail_closed and all(
            r.startswith(_UNAVAILABLE_PREFIX) for r in decision.reasons
        ):
            log.warning("%s refused (fail closed): %s", full_method, reasons)
            raise Unavailable(
                f"{full_method}: cannot decide {rule.action} on {resource} for "
                f"{details['principal']}: {reasons}",
                reason="POLICY_UNAVAILABLE",
                details=details,
            )
        log.info("%s denied to %s: %s", full_method, details["principal"], reasons)
        raise PermissionDenied(
            f"{full_method}: {details['principal']} may not {rule.action} on {resource}: {reasons}",
            reason="POLICY_DENIED",
            details={**details, "policies": ",".join(decision.policies)},
        )

    async def _decide(
        self, full_method: str, who: Caller, principal_type: str, action: str, resource: Resource
    ) -> PolicyDecision:
        decider = self._decider
        if decider is None:
            return PolicyDecision.closed("this server has no policy connection yet")
        # No "time": with the hour only, repeated calls hit the policy's decision cache.
        hour = int(time.time() // 3600 % 24)
        principal = EntityRef(principal_type, who.principal_id)
        entities = {
            "principal": {
                "uid": {"type": principal_type, "id": who.principal_id},
                "attrs": dict(_VOUCHED_ATTRS[principal_type]),
                "parents": [],
            },
            "resource": resource.entity(),
        }
        # Entities vouched for before are vouched for at once (one question, not three).
        vouched = [
            role for role in ("principal", "resource") if _key(entities[role]) in self._vouch
        ]

        async def ask() -> PolicyDecision:
            question = PolicyQuestion(
                principal,
                action,
                resource.ref,
                {"hour": hour, "grpc_method": full_method},
                tuple(entities[role] for role in vouched),
            )
            return await decider.evaluate(question)

        decision = await ask()
        if vouched and _restated(decision):
            # Registered since: forget what this server remembered, ask as it is stored.
            for role in vouched:
                self._vouch.pop(_key(entities[role]), None)
            vouched = []
            decision = await ask()
        # At most one more question per entity the policy service does not know.
        for _ in range(2):
            missing = next(
                (
                    r
                    for r in ("principal", "resource")
                    if r not in vouched and _unknown(decision, r)
                ),
                None,
            )
            if missing is None:
                break
            vouched.append(missing)
            self._vouch[_key(entities[missing])] = None
            while len(self._vouch) > self.max_vouched:
                self._vouch.popitem(last=False)
            decision = await ask()
        return decision

    @staticmethod
    def _refuse_node(full_method: str, who: Caller) -> NoReturn:
        raise PermissionDenied(
            f"{full_method}: worker nodes ({who.principal_id}) may not call this method",
            reason="ROLE_NOT_ALLOWED",
            details={"method": full_method, "role": who.role, "principal": who.principal_id},
        )


async def peek(requests: AsyncIterator[Any]) -> tuple[Any, AsyncIterator[Any]]:
    """The first message of a client stream (None when it is empty), and the whole stream."""
    iterator = aiter(requests)
    try:
        first = await anext(iterator)
    except StopAsyncIteration:
        return None, _empty()

    async def chained() -> AsyncIterator[Any]:
        yield first
        async for item in iterator:
            yield item

    return first, chained()


async def _empty() -> AsyncIterator[Any]:
    return
    yield  # an async generator that yields nothing
