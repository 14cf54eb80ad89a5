"""The services' gRPC rule tables (ADR 0013): every method of every service is decided —
by policy with an action of the schema, or explicitly open — and the authorizer's logic
with a scripted decider (no I/O)."""

from __future__ import annotations

import importlib
import inspect
import re
from types import ModuleType
from typing import Any

import pytest

from symbi.audit.v1 import audit_pb2
from symbi.context.v1 import context_pb2
from symbi.lifecycle.v1 import lifecycle_pb2
from symbi.mcp_gateway.v1 import mcp_gateway_pb2
from symbi.policy.v1 import policy_pb2
from symbi.sandbox.v1 import sandbox_pb2
from symbi.scheduler.v1 import scheduler_pb2
from symbi_audit.authz import AUDIT_RULES
from symbi_common.cedar import ACTIONS, schema_text
from symbi_common.errors import InvalidArgument, PermissionDenied, Unavailable
from symbi_common.grpc.authz import (
    OPEN,
    ByPolicy,
    MethodAuthorizer,
    MethodRules,
    Open,
    Resource,
    check_rules,
)
from symbi_common.grpc.tls import Caller
from symbi_common.policy_client import PolicyDecision, PolicyQuestion
from symbi_context.authz import CONTEXT_RULES
from symbi_lifecycle.authz import LIFECYCLE_RULES
from symbi_mcp_gateway.authz import GATEWAY_RULES
from symbi_policy.authz import POLICY_RULES
from symbi_sandbox.authz import sandbox_rules
from symbi_scheduler.authz import SCHEDULER_RULES

TABLES: list[tuple[ModuleType, str, MethodRules, str]] = [
    (policy_pb2, "PolicyService", POLICY_RULES, "symbi_policy.app"),
    (audit_pb2, "AuditService", AUDIT_RULES, "symbi_audit.app"),
    (lifecycle_pb2, "LifecycleService", LIFECYCLE_RULES, "symbi_lifecycle.app"),
    (scheduler_pb2, "SchedulerService", SCHEDULER_RULES, "symbi_scheduler.app"),
    (sandbox_pb2, "SandboxService", sandbox_rules("node-1"), "symbi_sandbox.app"),
    (mcp_gateway_pb2, "McpGatewayService", GATEWAY_RULES, "symbi_mcp_gateway.app"),
    (context_pb2, "ContextService", CONTEXT_RULES, "symbi_context.app"),
]


def _applies_to() -> dict[str, set[tuple[str, str]]]:
    """action -> {(principal type, resource type)} from the Cedar schema's text."""
    text = re.sub(r"//[^\n]*", "", schema_text())
    out: dict[str, set[tuple[str, str]]] = {}
    for names, body in re.findall(r"action\s+([\w\s,]+?)\s+appliesTo\s*\{(.*?)\};", text, re.S):
        principals = re.search(r"principal:\s*\[([^\]]*)\]", body)
        resources = re.search(r"resource:\s*\[([^\]]*)\]", body)
        assert principals
        assert resources
        pairs = {
            (p.strip(), r.strip())
            for p in principals.group(1).split(",")
            for r in resources.group(1).split(",")
        }
        for name in names.split(","):
            out[name.strip()] = pairs
    return out


@pytest.mark.parametrize(("pb2", "service", "rules", "app"), TABLES, ids=[t[1] for t in TABLES])
def test_every_method_is_decided(
    pb2: ModuleType, service: str, rules: MethodRules, app: str
) -> None:
    descriptor = pb2.DESCRIPTOR.services_by_name[service]
    check_rules(descriptor, rules)  # raises on an undecided or unknown method
    # ... and the service's process serves it with the table.
    source = inspect.getsource(importlib.import_module(app))
    assert re.search(r"rules=\w+", source), f"{app} binds {service} without rules"


@pytest.mark.parametrize(("pb2", "service", "rules", "app"), TABLES, ids=[t[1] for t in TABLES])
def test_decided_methods_name_schema_actions_and_resources(
    pb2: ModuleType, service: str, rules: MethodRules, app: str
) -> None:
    applies = _applies_to()
    descriptor = pb2.DESCRIPTOR.services_by_name[service]
    for method in descriptor.methods:
        rule = rules[method.name]
        if isinstance(rule, Open):
            continue
        assert rule.action in ACTIONS
        request = _empty_request(method.input_type)
        resource = rule.resource_for(request)
        for principal in ("User", "Service"):
            assert (principal, resource.type) in applies[rule.action], (
                f"{service}.{method.name}: {principal} may not be asked {rule.action} "
                f"on a {resource.type} by the schema"
            )


def _empty_request(message: Any) -> Any:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(message)()


def test_check_rules_names_what_is_missing_and_unknown() -> None:
    descriptor = policy_pb2.DESCRIPTOR.services_by_name["PolicyService"]
    rules = {k: v for k, v in POLICY_RULES.items() if k != "PutPolicy"}
    with pytest.raises(ValueError, match="methods without a rule: PutPolicy"):
        check_rules(descriptor, rules)
    with pytest.raises(ValueError, match="does not have: Bogus"):
        check_rules(descriptor, {**POLICY_RULES, "Bogus": OPEN})


def test_binding_refuses_an_incomplete_table() -> None:
    from symbi.policy.v1 import policy_pb2_grpc
    from symbi_common.service import binding

    with pytest.raises(ValueError, match="GetStatus"):
        binding(
            policy_pb2,
            "PolicyService",
            policy_pb2_grpc.add_PolicyServiceServicer_to_server,
            object(),
            rules={k: v for k, v in POLICY_RULES.items() if k != "GetStatus"},
        )


# ---------------------------------------------------------------- the authorizer


class ScriptedDecider:
    """Answers like the policy engine: unknown entities first, then the permit set."""

    def __init__(self, known: set[str], permitted: set[tuple[str, str]]) -> None:
        self.known = known
        self.permitted = permitted
        self.questions: list[PolicyQuestion] = []
        self.down = False

    async def evaluate(self, question: PolicyQuestion) -> PolicyDecision:
        self.questions.append(question)
        if self.down:
            return PolicyDecision.closed("no responders")
        vouched = {f"{e['uid']['type']}::{e['uid']['id']}" for e in question.entities}
        if vouched & self.known:
            return PolicyDecision(
                "deny",
                (
                    f"request entities {', '.join(sorted(vouched & self.known))} are already "
                    "in the entity set (version 1); a request may only add entities",
                ),
            )
        for role, ref in (("principal", question.principal), ("resource", question.resource)):
            uid = f"{ref.type}::{ref.id}"
            if uid not in self.known and uid not in vouched:
                return PolicyDecision("deny", (f"unknown {role} {uid}: not in the entity set",))
        if (f"{question.principal.type}::{question.principal.id}", question.action) in (
            self.permitted
        ):
            return PolicyDecision("allow", policies=("p",))
        return PolicyDecision("deny", ("no policy permits (default deny)",))


METHOD = "/symbi.policy.v1.PolicyService/PutPolicy"
STORE = Resource("PolicyStore", "default")


def _authorizer(decider: ScriptedDecider) -> MethodAuthorizer:
    authorizer = MethodAuthorizer(
        {
            METHOD: ByPolicy("modify_policy", STORE),
            "/s/Open": OPEN,
            "/s/NodesToo": Open(nodes=True),
            "/s/FromRequest": ByPolicy("administer", lambda r: Resource("Node", r["node"])),
        }
    )
    authorizer.use(decider)
    return authorizer


def who(principal: str, role: str) -> Caller:
    return Caller(role=role, principal_id=principal)


async def test_allowed_caller_and_the_question_asked() -> None:
    decider = ScriptedDecider(
        {"User::alice", "PolicyStore::default"}, {("User::alice", "modify_policy")}
    )
    await _authorizer(decider).authorize(METHOD, who("alice", "user"), object())
    (question,) = decider.questions
    assert (question.principal.type, question.principal.id) == ("User", "alice")
    assert question.action == "modify_policy"
    assert question.context["grpc_method"] == METHOD
    assert question.entities == ()


async def test_unknown_principal_and_resource_are_vouched_for_one_by_one() -> None:
    decider = ScriptedDecider(set(), {("Service::svc-a", "modify_policy")})
    await _authorizer(decider).authorize(METHOD, who("svc-a", "service"), object())
    assert [len(q.entities) for q in decider.questions] == [0, 1, 2]
    principal, resource = decider.questions[-1].entities
    assert principal["uid"] == {"type": "Service", "id": "svc-a"}
    assert principal["parents"] == []  # a vouched principal holds no role
    assert resource["uid"] == {"type": "PolicyStore", "id": "default"}


async def test_vouched_entities_are_remembered_until_registered() -> None:
    decider = ScriptedDecider(set(), {("Service::svc-a", "modify_policy")})
    authorizer = _authorizer(decider)
    caller = who("svc-a", "service")
    await authorizer.authorize(METHOD, caller, object())
    decider.questions.clear()
    await authorizer.authorize(METHOD, caller, object())
    assert [len(q.entities) for q in decider.questions] == [2]  # one question, both vouched
    # The service registers itself and the store: restating them is refused; the authorizer
    # forgets them and asks as they are stored.
    decider.known |= {"Service::svc-a", "PolicyStore::default"}
    decider.questions.clear()
    await authorizer.authorize(METHOD, caller, object())
    assert [len(q.entities) for q in decider.questions] == [2, 0]
    decider.questions.clear()
    await authorizer.authorize(METHOD, caller, object())
    assert [len(q.entities) for q in decider.questions] == [0]


async def test_denied_names_action_resource_and_reasons() -> None:
    decider = ScriptedDecider({"User::bob", "PolicyStore::default"}, set())
    with pytest.raises(PermissionDenied) as info:
        await _authorizer(decider).authorize(METHOD, who("bob", "user"), object())
    message = info.value.message
    assert "modify_policy" in message
    assert 'PolicyStore::"default"' in message
    assert "default deny" in message
    assert info.value.details["action"] == "modify_policy"


async def test_policy_unreachable_is_unavailable() -> None:
    decider = ScriptedDecider(set(), set())
    decider.down = True
    with pytest.raises(Unavailable, match=r"modify_policy.*policy service unavailable"):
        await _authorizer(decider).authorize(METHOD, who("alice", "user"), object())
    without = MethodAuthorizer({METHOD: ByPolicy("modify_policy", STORE)})
    with pytest.raises(Unavailable, match="no policy connection"):
        await without.authorize(METHOD, who("alice", "user"), object())


async def test_nodes_only_where_the_table_says() -> None:
    decider = ScriptedDecider(set(), set())
    authorizer = _authorizer(decider)
    node = who("node-a", "node")
    for method in (METHOD, "/s/Open"):
        with pytest.raises(PermissionDenied, match="worker nodes"):
            await authorizer.authorize(method, node, object())
    await authorizer.authorize("/s/NodesToo", node, object())
    await authorizer.authorize("/s/Open", who("alice", "user"), object())
    await authorizer.authorize("/other.Service/Any", node, object())  # no table: not decided
    assert decider.questions == []


async def test_resource_from_the_request() -> None:
    decider = ScriptedDecider({"User::alice", "Node::n1"}, {("User::alice", "administer")})
    authorizer = _authorizer(decider)
    await authorizer.authorize("/s/FromRequest", who("alice", "user"), {"node": "n1"})
    assert decider.questions[-1].resource.id == "n1"
    with pytest.raises(InvalidArgument, match="stream is empty"):
        await authorizer.authorize("/s/FromRequest", who("alice", "user"), None)
