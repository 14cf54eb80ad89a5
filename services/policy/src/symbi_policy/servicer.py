"""The gRPC servicer of ``symbi.policy.v1.PolicyService``: proto → operations → proto.

Errors are ``symbi_common.errors`` exceptions (the server's interceptor maps them), except
policy validation failures: those abort here with INVALID_ARGUMENT and an ``ErrorInfo``
whose ``violations`` carry each problem's line and column.
"""

from __future__ import annotations

import time
from typing import Any

import grpc

from symbi.policy.v1 import policy_pb2
from symbi_common.errors import Unavailable
from symbi_common.grpc.status import ERROR_METADATA_KEY, error_info
from symbi_policy.convert import (
    decode_page_token,
    document_to_proto,
    encode_page_token,
    entities_from_proto,
    evaluation_to_proto,
    problems_to_violations,
    request_from_proto,
    status_to_proto,
    uid_from_proto,
)
from symbi_policy.errors import PolicyValidationError
from symbi_policy.operations import PolicyOperations

__all__ = ["PolicyServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


class PolicyServicer:
    """Implements every PolicyService RPC; UNAVAILABLE until the service has started."""

    def __init__(self, instance: str) -> None:
        self._instance = instance
        self._operations: PolicyOperations | None = None

    def attach(self, operations: PolicyOperations) -> None:
        """Start answering (called once the first policy set was built)."""
        self._operations = operations

    @property
    def operations(self) -> PolicyOperations:
        if self._operations is None:
            raise Unavailable(
                "the policy service is starting: no policy set loaded yet", reason="STARTING"
            )
        return self._operations

    # ------------------------------------------------------------------ decisions

    async def Evaluate(
        self, request: policy_pb2.EvaluateRequest, context: Context
    ) -> policy_pb2.EvaluateResponse:
        operations = self.operations
        authz = request_from_proto(request.request)
        deadline = _deadline(context)
        await operations.admit(1, deadline=deadline)
        evaluation = operations.evaluate(authz, deadline=deadline)
        return policy_pb2.EvaluateResponse(result=evaluation_to_proto(evaluation))

    async def EvaluateBatch(
        self, request: policy_pb2.EvaluateBatchRequest, context: Context
    ) -> policy_pb2.EvaluateBatchResponse:
        operations = self.operations
        requests = [request_from_proto(r, f"requests[{i}]") for i, r in enumerate(request.requests)]
        deadline = _deadline(context)
        await operations.admit(len(requests), deadline=deadline)
        evaluations = operations.evaluate_batch(requests, deadline=deadline)
        return policy_pb2.EvaluateBatchResponse(
            results=[evaluation_to_proto(e) for e in evaluations]
        )

    # ------------------------------------------------------------------ documents

    async def PutPolicy(
        self, request: policy_pb2.PutPolicyRequest, context: Context
    ) -> policy_pb2.PutPolicyResponse:
        expected = request.expected_version if request.HasField("expected_version") else None
        try:
            document = await self.operations.put_policy(
                request.id,
                request.source,
                expected_revision=expected,
                origin=request.origin,
                actor=_actor(context),
            )
        except PolicyValidationError as exc:
            await _abort_invalid(context, exc)
            raise  # unreachable: abort raises
        return policy_pb2.PutPolicyResponse(policy=document_to_proto(document))

    async def GetPolicy(
        self, request: policy_pb2.GetPolicyRequest, context: Context
    ) -> policy_pb2.Policy:
        return document_to_proto(await self.operations.get_policy(request.id))

    async def ListPolicies(
        self, request: policy_pb2.ListPoliciesRequest, context: Context
    ) -> policy_pb2.ListPoliciesResponse:
        token = decode_page_token(request.page.page_token) if request.page.page_token else ""
        page = self.operations.list_policies(request.page.page_size, token)
        response = policy_pb2.ListPoliciesResponse(
            policies=[document_to_proto(d) for d in page.documents], version=page.version
        )
        if page.next_token:
            response.page.next_page_token = encode_page_token(page.next_token)
        return response

    async def DeletePolicy(
        self, request: policy_pb2.DeletePolicyRequest, context: Context
    ) -> policy_pb2.DeletePolicyResponse:
        expected = request.expected_version if request.HasField("expected_version") else None
        version = await self.operations.delete_policy(
            request.id, expected_revision=expected, actor=_actor(context)
        )
        return policy_pb2.DeletePolicyResponse(version=version)

    async def Validate(
        self, request: policy_pb2.ValidateRequest, context: Context
    ) -> policy_pb2.ValidateResponse:
        problems = self.operations.validate(request.source, file=request.file)
        return policy_pb2.ValidateResponse(
            valid=not problems, errors=problems_to_violations(problems, request.file)
        )

    # ------------------------------------------------------------------ entities

    async def PutEntities(
        self, request: policy_pb2.PutEntitiesRequest, context: Context
    ) -> policy_pb2.PutEntitiesResponse:
        entities = entities_from_proto(request.entities)
        try:
            version = await self.operations.put_entities(entities, actor=_actor(context))
        except PolicyValidationError as exc:
            await _abort_invalid(context, exc)
            raise
        return policy_pb2.PutEntitiesResponse(entities_version=version)

    async def DeleteEntities(
        self, request: policy_pb2.DeleteEntitiesRequest, context: Context
    ) -> policy_pb2.DeleteEntitiesResponse:
        uids = [uid_from_proto(u, f"uids[{i}]") for i, u in enumerate(request.uids)]
        version = await self.operations.delete_entities(uids, actor=_actor(context))
        return policy_pb2.DeleteEntitiesResponse(entities_version=version)

    async def GetStatus(
        self, request: policy_pb2.GetStatusRequest, context: Context
    ) -> policy_pb2.PolicyStatus:
        return status_to_proto(self.operations.status(), self._instance)


def _deadline(context: Context) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _actor(context: Context) -> str:
    return f"grpc:{context.peer()}"


async def _abort_invalid(context: Context, exc: PolicyValidationError) -> None:
    info = error_info(exc)
    info.violations.extend(problems_to_violations(exc.problems))
    await context.abort(
        grpc.StatusCode.INVALID_ARGUMENT,
        exc.message,
        trailing_metadata=((ERROR_METADATA_KEY, info.SerializeToString()),),
    )
