"""A whole policy set, assembled from compiled documents into one parsed Cedar handle."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import cedarpy

from symbi_policy.compiler import CompiledDocument, CompiledPolicy
from symbi_policy.errors import PolicyProblem, PolicyValidationError

__all__ = ["CompiledPolicySet", "assemble_policy_set"]


@dataclass(frozen=True, slots=True)
class CompiledPolicySet:
    """Every policy in force, by id, with the parsed handle Cedar evaluates."""

    handle: cedarpy.PolicySet
    policies: Mapping[str, CompiledPolicy]
    documents: tuple[str, ...]
    version: int
    #: sha256 over the documents' names and digests: equal sets have equal digests.
    digest: str


def assemble_policy_set(documents: Sequence[CompiledDocument], version: int) -> CompiledPolicySet:
    """Join documents into one set; PolicyValidationError if two policies share an id."""
    by_id: dict[str, CompiledPolicy] = {}
    problems: list[PolicyProblem] = []
    for document in sorted(documents, key=lambda d: d.name):
        for policy in document.policies:
            other = by_id.get(policy.id)
            if other is not None:
                problems.append(
                    PolicyProblem(
                        policy.document,
                        policy.line,
                        policy.column,
                        f"policy id {policy.id!r} is already used in document "
                        f"{other.document!r} (line {other.line}): @id must be unique across "
                        "the policy set",
                        policy.id,
                    )
                )
                continue
            by_id[policy.id] = policy
    if problems:
        raise PolicyValidationError(problems)
    body = ",".join(f"{json.dumps(pid)}:{p.est_json}" for pid, p in by_id.items())
    text = f'{{"staticPolicies":{{{body}}},"templates":{{}},"templateLinks":[]}}'
    try:
        handle = cedarpy.PolicySet.from_json_str(text)
    except ValueError as exc:  # compiled documents parse alone; this is not expected
        raise PolicyValidationError(
            [PolicyProblem("<policy set>", 1, 1, f"Cedar rejected the assembled set: {exc}")]
        ) from None
    digest = hashlib.sha256()
    names = []
    for document in sorted(documents, key=lambda d: d.name):
        names.append(document.name)
        digest.update(f"{document.name}\0{document.digest}\n".encode())
    return CompiledPolicySet(
        handle, MappingProxyType(by_id), tuple(names), version, digest.hexdigest()
    )
