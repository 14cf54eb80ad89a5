"""Who may call which PolicyService method (ADR 0013), and this service's own decider.

Reading and changing the policy set are decided by policy, on ``PolicyStore::"default"``;
asking for decisions, validating text and the replica's status are open to every admitted
caller. The policy service decides its own methods in process, with its own engine (no bus
round trip to itself), through the same admission and audit as every other decision.
"""

from __future__ import annotations

from collections.abc import Callable

from symbi_common.grpc.authz import OPEN, ByPolicy, MethodRules, Resource
from symbi_common.policy_client import PolicyDecision, PolicyQuestion
from symbi_policy.convert import evaluation_to_proto, request_from_proto
from symbi_policy.operations import PolicyOperations

__all__ = ["GRPC_POLICY", "GRPC_POLICY_ID", "POLICY_RULES", "POLICY_STORE", "LocalDecider"]

POLICY_STORE = Resource("PolicyStore", "default")

POLICY_RULES: MethodRules = {
    "Evaluate": OPEN,
    "EvaluateBatch": OPEN,
    "Validate": OPEN,
    "GetStatus": OPEN,
    "GetPolicy": ByPolicy("read_policy", POLICY_STORE),
    "ListPolicies": ByPolicy("read_policy", POLICY_STORE),
    "PutPolicy": ByPolicy("modify_policy", POLICY_STORE),
    "DeletePolicy": ByPolicy("modify_policy", POLICY_STORE),
    "PutEntities": ByPolicy("modify_policy", POLICY_STORE),
    "DeleteEntities": ByPolicy("modify_policy", POLICY_STORE),
}


GRPC_POLICY_ID = "platform/grpc"
#: Installed (when absent) by the policy service when gRPC runs with mTLS: who may call the
#: methods the services' rule tables decide by policy. Edit it or add forbids to narrow it.
GRPC_POLICY = """\
@id("platform-grpc-services")
@description("Services may call every gRPC method (ADR 0013); narrow with forbids.")
permit(principal is Symbi::Service, action, resource)
when { context has grpc_method };

@id("platform-grpc-operators")
@description("Users in Role operators may call every gRPC method (ADR 0013).")
permit(principal is Symbi::User in Symbi::Role::"operators", action, resource)
when { context has grpc_method };

@id("platform-grpc-users-read-policy")
@description("Every user may read the policy set (symbi policy list); forbid to narrow.")
permit(principal is Symbi::User, action == Symbi::Action::"read_policy", resource)
when { context has grpc_method };
"""


class LocalDecider:
    """Decisions from this replica's engine (a :class:`~symbi_common.grpc.authz.Decider`)."""

    def __init__(self, operations: Callable[[], PolicyOperations | None]) -> None:
        self._operations = operations

    async def evaluate(self, question: PolicyQuestion) -> PolicyDecision:
        operations = self._operations()
        if operations is None:
            return PolicyDecision.closed("the policy set is not loaded yet")
        request = request_from_proto(question.to_proto())
        await operations.admit(1)
        return PolicyDecision.from_proto(evaluation_to_proto(operations.evaluate(request)))
