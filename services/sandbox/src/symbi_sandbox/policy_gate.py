"""Policy and audit for every call an agent makes through its channel.

:class:`PolicyGate` asks the policy service (over the bus, :class:`PolicyClient`) whether the
agent may do an action, records the decision as a signed audit event (``sandbox.channel.<op>``)
and refuses what is denied: ``PermissionDenied`` with the policy's reasons, or ``Unavailable``
when the policy service could not answer (the call is refused either way — fail closed). An
audit event that cannot be written refuses the call too.

Conditions of an ``allow_with_conditions`` decision are honoured where the sandbox can:
``rate_limit:N/unit`` is enforced per task and action; ``audit_full`` adds the call's
arguments to the audit event; ``require_approval`` cannot be obtained on the channel, so it
refuses. Unknown conditions refuse (fail closed).

:class:`BusEgressPolicy` and :class:`BusAuditSink` adapt the gate and the node's audit
recorder to the channel server's ports (egress decisions are audited by the server itself).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from symbi_common.auditing import AuditRecorder
from symbi_common.dsl.guard import GUARD_TAG_PREFIX
from symbi_common.errors import (
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    SymbiError,
    Unavailable,
)
from symbi_common.policy_client import EntityRef, PolicyClient, PolicyDecision, PolicyQuestion
from symbi_sandbox.channel.ports import AgentContext, AuditRecord, EgressDecision

__all__ = ["BusAuditSink", "BusEgressPolicy", "PolicyGate", "entity", "strip_guard_tags"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}  # as the DSL compiler writes them


def strip_guard_tags(tags: object) -> list[str]:
    """Agent-supplied tags without ``dsl-guard:`` ones (only the DSL runtime may set those)."""
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidArgument("tags must be a list of strings", reason="MALFORMED_CALL")
    return [t for t in tags if not t.strip().lower().startswith(GUARD_TAG_PREFIX)]


def _parse_rate(condition: str) -> tuple[float, float] | None:
    # "rate_limit:10/minute" → (10 per 60 s)
    try:
        count, unit = condition.split(":", 1)[1].split("/", 1)
        return float(count), _UNITS[unit.strip().lower()[:1]]
    except (IndexError, ValueError, KeyError):
        return None


class _Window:
    """Calls in the current fixed window (per task and action)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.count = 0


class PolicyGate:
    """Decides, audits and refuses channel calls (see the module docstring)."""

    def __init__(
        self,
        client: PolicyClient | None,
        recorder: AuditRecorder,
        *,
        node_id: str,
        audit_timeout_s: float = 5.0,
        max_windows: int = 10_000,
    ) -> None:
        self._client = client  # None: [security] enforce_policies = false
        self._recorder = recorder
        self._node_id = node_id
        self._audit_timeout_s = audit_timeout_s
        self._windows: OrderedDict[tuple[str, str, str], _Window] = OrderedDict()
        self._max_windows = max_windows

    async def decide(
        self,
        ctx: AgentContext,
        action: str,
        resource: EntityRef,
        context: Mapping[str, Any],
        *,
        entities: Sequence[Mapping[str, Any]] = (),
        if_unknown: Sequence[Mapping[str, Any]] = (),
    ) -> PolicyDecision:
        """The policy's answer (no audit, no refusal).

        ``entities`` are resources the node vouches for (topics, destinations, tools: things
        the policy store does not hold). ``if_unknown`` are vouched for only when the policy
        service does not know the resource — another agent or a service that lifecycle never
        registered — because a request may add entities but never restate stored ones.
        """
        if self._client is None:
            return PolicyDecision("allow", ("policy enforcement is disabled on this node",))
        now = time.time()
        full = {"time": int(now), "hour": int(now // 3600 % 24), **context}
        question = PolicyQuestion(
            EntityRef("Agent", ctx.agent_id), action, resource, full, tuple(entities)
        )
        decision = await self._client.evaluate(question)
        if if_unknown and _unknown_resource(decision):
            question = replace(question, entities=(*entities, *if_unknown))
            decision = await self._client.evaluate(question)
        return decision

    async def authorize(
        self,
        ctx: AgentContext,
        op: str,
        action: str,
        resource: EntityRef,
        *,
        context: Mapping[str, Any] | None = None,
        arguments: Mapping[str, Any] | None = None,
        entities: Sequence[Mapping[str, Any]] = (),
        if_unknown: Sequence[Mapping[str, Any]] = (),
    ) -> PolicyDecision:
        """Decides ``action`` on ``resource`` for the agent; audits; raises when refused."""
        decision = await self.decide(
            ctx, action, resource, context or {}, entities=entities, if_unknown=if_unknown
        )
        refusal = self._refusal(ctx, action, decision)
        details: dict[str, Any] = {
            "decision": "allow" if refusal is None else "deny",
            "action": action,
            "resource": f"{resource.type}::{resource.id}",
            "task_id": ctx.task_id,
            "attempt": ctx.attempt,
            "node": self._node_id,
            "reasons": list(decision.reasons),
            "conditions": list(decision.conditions),
            "policies": list(decision.policies),
            "policy_version": decision.version,
            "fail_closed": decision.fail_closed,
        }
        if refusal is not None:
            details["refusal"] = refusal.reason
        if "audit_full" in decision.conditions and arguments is not None:
            details["arguments"] = dict(arguments)
        await self.record(f"sandbox.channel.{op}", ctx, details)
        if refusal is not None:
            raise refusal
        return decision

    async def record(self, event_type: str, ctx: AgentContext, details: Mapping[str, Any]) -> None:
        """Writes one audit event for the agent; failing to is a refusal (Unavailable)."""
        try:
            await asyncio.wait_for(
                self._recorder.record(event_type, details=dict(details), agent_id=ctx.agent_id),
                self._audit_timeout_s,
            )
        except (SymbiError, TimeoutError) as exc:
            raise Unavailable(
                f"the call was refused because its audit record could not be written ({exc})",
                reason="AUDIT_UNAVAILABLE",
            ) from exc

    def _refusal(
        self, ctx: AgentContext, action: str, decision: PolicyDecision
    ) -> SymbiError | None:
        if not decision.allowed:
            if decision.fail_closed:
                return Unavailable(
                    f"{action} refused: {decision.reason_text()}", reason="POLICY_UNAVAILABLE"
                )
            return PermissionDenied(
                f"policy denies {action} for agent {ctx.agent_id}: {decision.reason_text()}",
                reason="POLICY_DENIED",
            )
        for condition in decision.conditions:
            if condition == "audit_full":
                continue
            if condition.startswith("rate_limit:"):
                rate = _parse_rate(condition)
                if rate is None:
                    return PermissionDenied(
                        f"{action} refused: unreadable policy condition {condition!r}",
                        reason="POLICY_CONDITION",
                    )
                if not self._take(ctx.task_id, action, condition, *rate):
                    return ResourceExhausted(
                        f"{action} refused: policy rate limit {condition.split(':', 1)[1]} reached",
                        reason="POLICY_RATE_LIMITED",
                    )
                continue
            if condition == "require_approval":
                return PermissionDenied(
                    f"{action} requires approval, which calls from a sandbox cannot obtain",
                    reason="APPROVAL_REQUIRED",
                )
            return PermissionDenied(
                f"{action} refused: policy condition {condition!r} cannot be met in the sandbox",
                reason="POLICY_CONDITION",
            )
        return None

    def _take(self, task_id: str, action: str, condition: str, count: float, per_s: float) -> bool:
        key = (task_id, action, condition)
        window = self._windows.get(key)
        now = time.monotonic()
        if window is None or now - window.started >= per_s:
            window = _Window()
            self._windows[key] = window
        self._windows.move_to_end(key)
        while len(self._windows) > self._max_windows:
            self._windows.popitem(last=False)
        if window.count >= count:
            return False
        window.count += 1
        return True


def _unknown_resource(decision: PolicyDecision) -> bool:
    # The policy service's deny for a resource outside its entity set (symbi_policy.engine).
    return (
        not decision.allowed
        and not decision.fail_closed
        and any(r.startswith("unknown resource ") for r in decision.reasons)
    )


def entity(
    kind: str,
    entity_id: str,
    attrs: Mapping[str, Any] | None = None,
    parents: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """A Cedar entity the node vouches for, in the shape PolicyQuestion.entities takes."""
    return {
        "uid": {"type": f"Symbi::{kind}", "id": entity_id},
        "attrs": dict(attrs or {}),
        "parents": [{"type": f"Symbi::{k}", "id": i} for k, i in parents],
    }


class BusEgressPolicy:
    """The channel server's EgressPolicy: the ``network`` action on ``Resource::host:port``."""

    def __init__(self, gate: PolicyGate) -> None:
        self._gate = gate

    async def check_egress(self, ctx: AgentContext, host: str, port: int) -> EgressDecision:
        where = f"{host}:{port}"
        decision = await self._gate.decide(
            ctx,
            "network",
            EntityRef("Resource", where),
            {"destination": host, "port": port, "protocol": "tcp"},
            entities=[entity("Resource", where, {"kind": "network"})],
        )
        if decision.allowed and decision.conditions and set(decision.conditions) != {"audit_full"}:
            return EgressDecision(
                False, f"conditions {', '.join(decision.conditions)} cannot be met for egress"
            )
        return EgressDecision(decision.allowed, decision.reason_text())


class BusAuditSink:
    """The channel server's AuditSink: signed audit events on the bus."""

    def __init__(self, recorder: AuditRecorder, node_id: str) -> None:
        self._recorder = recorder
        self._node_id = node_id

    async def record(self, record: AuditRecord) -> None:
        details: dict[str, Any] = {"task_id": record.task_id, "node": self._node_id}
        if record.decision:
            details["decision"] = record.decision
        details.update(record.details)
        await self._recorder.record(record.event_type, details=details, agent_id=record.agent_id)
