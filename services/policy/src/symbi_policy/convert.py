"""Pure converters between ``symbi.policy.v1`` messages and the policy domain.

Malformed input raises ``InvalidArgument`` naming the field (``requests[3].principal.type``).
Numbers in a ``google.protobuf.Struct`` are doubles on the wire; integral ones become ints,
because Cedar has Longs and no floats (``{"risk_score": 70}`` must stay 70, not 70.0).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import struct_pb2

from symbi.common.v1 import common_pb2
from symbi.policy.v1 import policy_pb2
from symbi_common.errors import InvalidArgument
from symbi_policy.decision import AllowWithConditions, Decision, Deny
from symbi_policy.engine import EngineStatus, Evaluation
from symbi_policy.entities import EntityUid, normalize_entities
from symbi_policy.errors import PolicyProblem
from symbi_policy.request import AuthzRequest, parse_action
from symbi_policy.schema import qualify_type
from symbi_policy.source import PolicyDocument

__all__ = [
    "decode_page_token",
    "document_to_proto",
    "encode_page_token",
    "entities_from_proto",
    "evaluation_to_proto",
    "problems_to_violations",
    "request_from_proto",
    "status_to_proto",
    "struct_to_dict",
    "uid_from_proto",
]

_KINDS = {
    "Allow": policy_pb2.DECISION_ALLOW,
    "Deny": policy_pb2.DECISION_DENY,
    "AllowWithConditions": policy_pb2.DECISION_ALLOW_WITH_CONDITIONS,
}


def value_to_python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise InvalidArgument(f"numbers must be finite, got {number}", reason="BAD_REQUEST")
        return int(number) if number.is_integer() else number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [value_to_python(v) for v in value.list_value.values]
    return None


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain Python (integral numbers as ints)."""
    return {key: value_to_python(value) for key, value in struct.fields.items()}


def uid_from_proto(ref: policy_pb2.EntityRef, field: str) -> EntityUid:
    if not ref.type:
        raise InvalidArgument(f"{field}.type is required", reason="BAD_REQUEST")
    return EntityUid(qualify_type(ref.type), ref.id)


def entities_from_proto(
    entities: Iterable[policy_pb2.Entity], field: str = "entities"
) -> list[dict[str, Any]]:
    """Entities as normalized Cedar JSON (qualified types, every key present)."""
    raw = []
    for index, entity in enumerate(entities):
        where = f"{field}[{index}]"
        uid = uid_from_proto(entity.uid, f"{where}.uid")
        raw.append(
            {
                "uid": uid.as_cedar(),
                "attrs": struct_to_dict(entity.attrs),
                "parents": [
                    uid_from_proto(p, f"{where}.parents[{i}]").as_cedar()
                    for i, p in enumerate(entity.parents)
                ],
            }
        )
    try:
        return normalize_entities(raw, what=field)
    except ValueError as exc:
        raise InvalidArgument(str(exc), reason="BAD_REQUEST") from None


def request_from_proto(
    message: policy_pb2.AuthorizationRequest, field: str = "request"
) -> AuthzRequest:
    if not message.action:
        raise InvalidArgument(f"{field}.action is required", reason="BAD_REQUEST")
    principal = uid_from_proto(message.principal, f"{field}.principal")
    resource = uid_from_proto(message.resource, f"{field}.resource")
    try:
        action = parse_action(message.action)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{field}.action: {exc.message}", reason="BAD_REQUEST") from None
    context = struct_to_dict(message.context) if message.context.fields else {}
    entities = (
        tuple(entities_from_proto(message.entities, f"{field}.entities"))
        if message.entities
        else ()
    )
    return AuthzRequest(principal, action, resource, context, entities)


def evaluation_to_proto(evaluation: Evaluation) -> policy_pb2.DecisionResult:
    decision: Decision = evaluation.decision
    result = policy_pb2.DecisionResult(
        decision=_KINDS[decision.kind],
        policies=decision.policies,
        version=decision.version,
        entities_version=decision.entities_version,
        cached=evaluation.cached,
    )
    if isinstance(decision, Deny):
        result.reasons.extend(decision.reasons)
        result.fail_closed = decision.fail_closed
    elif isinstance(decision, AllowWithConditions):
        result.conditions.extend(str(c) for c in decision.conditions)
    return result


def document_to_proto(document: PolicyDocument) -> policy_pb2.Policy:
    return policy_pb2.Policy(
        id=document.name,
        source=document.text,
        version=document.revision,
        updated_at_ms=document.updated_at_ms,
        updated_by=document.updated_by,
        origin=document.origin,
    )


def problems_to_violations(
    problems: Sequence[PolicyProblem], file: str = ""
) -> list[common_pb2.FieldViolation]:
    """Each problem as a violation with its position (``field`` is the policy id, or
    ``source`` when the problem is not inside one policy)."""
    return [
        common_pb2.FieldViolation(
            field=problem.policy or "source",
            description=problem.message,
            position=common_pb2.SourcePosition(
                file=file or problem.document, line=problem.line, column=problem.column
            ),
        )
        for problem in problems
    ]


def status_to_proto(status: EngineStatus, instance: str) -> policy_pb2.PolicyStatus:
    message = policy_pb2.PolicyStatus(
        version=status.version,
        entities_version=status.entities_version,
        digest=status.digest,
        documents=len(status.documents),
        policies=status.policy_count,
        entities=status.entity_count,
        installed_at_ms=status.installed_at_ms,
        instance=instance,
    )
    rejection = status.last_rejection
    if rejection is not None:
        message.last_rejection.CopyFrom(
            policy_pb2.PolicyRejection(
                version=rejection.version,
                entities_version=rejection.entities_version,
                at_ms=rejection.at_ms,
                errors=problems_to_violations(rejection.error.problems),
            )
        )
    return message


def encode_page_token(last_name: str) -> str:
    """An opaque cursor: the last document name of the page (documents are listed by name)."""
    return base64.urlsafe_b64encode(last_name.encode()).decode().rstrip("=")


def decode_page_token(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        name = base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode()
        if not name or encode_page_token(name) != token:
            raise ValueError("not canonical")
        return name
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument(
            "page_token is not one this service issued", reason="BAD_PAGE_TOKEN"
        ) from None
