"""A whole policy set, indexed so that Cedar only evaluates policies that can apply.

Cedar evaluates every policy of the set it is given, about 1 µs each: a set of 200
per-agent policies costs ~200 µs per decision even though at most a few can match. The set
is therefore sliced by the two scope constraints that decide applicability before any
condition runs:

* the action (``action == A`` / ``action in [A, B]``): slice per action, built eagerly;
* the principal (``principal == P``, as the DSL compiler emits per-agent policies): a
  policy with such a scope joins only the slice for (its action, P), built on first use
  and kept in a bounded LRU.

A policy whose scope says neither is in every slice it could apply to. A policy outside a
request's slice cannot be satisfied by that request and cannot error on it (scope is
checked before conditions), so every decision and every determining-policy list is the
same as against the whole set.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import cedarpy

from symbi_common.cedar import ACTIONS
from symbi_policy.cache import LruCache
from symbi_policy.compiler import CompiledDocument, CompiledPolicy
from symbi_policy.errors import PolicyProblem, PolicyValidationError

__all__ = ["CompiledPolicySet", "assemble_policy_set"]

_EMPTY: tuple[str, ...] = ()


class CompiledPolicySet:
    """Every policy in force by id, and the Cedar handles to evaluate them with.

    Immutable from the outside; the principal-slice LRU fills as requests arrive (call
    ``handle_for`` from one thread, as the engine does).
    """

    def __init__(
        self,
        policies: Mapping[str, CompiledPolicy],
        documents: tuple[str, ...],
        version: int,
        digest: str,
        *,
        principal_slices: int = 4096,
    ) -> None:
        self.policies: Mapping[str, CompiledPolicy] = MappingProxyType(dict(policies))
        self.documents = documents
        self.version = version
        #: sha256 over the documents' names and digests: equal sets have equal digests.
        self.digest = digest
        general: dict[str, list[str]] = {action: [] for action in ACTIONS}
        specific: dict[tuple[str, tuple[str, str]], list[str]] = {}
        for policy_id, policy in self.policies.items():
            actions = policy.actions if policy.actions is not None else ACTIONS
            for action in actions:
                if action not in general:
                    continue  # validation admits only schema actions; nothing to index
                if policy.principal is None:
                    general[action].append(policy_id)
                else:
                    specific.setdefault((action, policy.principal), []).append(policy_id)
        self._general_ids = {a: tuple(ids) for a, ids in general.items()}
        self._specific_ids = {k: tuple(ids) for k, ids in specific.items()}
        self._general = {a: self._build(ids) for a, ids in self._general_ids.items()}
        self._slices: LruCache[tuple[str, tuple[str, str]], cedarpy.PolicySet] = LruCache(
            principal_slices
        )

    def handle_for(
        self, action: str, principal: tuple[str, str]
    ) -> tuple[object, cedarpy.PolicySet]:
        """The policies that can apply to ``principal`` doing ``action``, parsed, and a key
        identifying that handle (requests with equal keys share it in a batch)."""
        key = (action, principal)
        specific = self._specific_ids.get(key)
        if specific is None:
            general = self._general.get(action)
            return action, general if general is not None else self._build(_EMPTY)
        handle = self._slices.get(key)
        if handle is None:
            handle = self._build(self._general_ids.get(action, _EMPTY) + specific)
            self._slices.put(key, handle)
        return key, handle

    def _build(self, ids: Iterable[str]) -> cedarpy.PolicySet:
        body = ",".join(f"{json.dumps(pid)}:{self.policies[pid].est_json}" for pid in ids)
        text = f'{{"staticPolicies":{{{body}}},"templates":{{}},"templateLinks":[]}}'
        return cedarpy.PolicySet.from_json_str(text)


def assemble_policy_set(documents: Sequence[CompiledDocument], version: int) -> CompiledPolicySet:
    """Join documents into one set; PolicyValidationError if two policies share an id."""
    by_id: dict[str, CompiledPolicy] = {}
    problems: list[PolicyProblem] = []
    ordered = sorted(documents, key=lambda d: d.name)
    for document in ordered:
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
    digest = hashlib.sha256()
    for document in ordered:
        digest.update(f"{document.name}\0{document.digest}\n".encode())
    names = tuple(d.name for d in ordered)
    try:
        return CompiledPolicySet(by_id, names, version, digest.hexdigest())
    except ValueError as exc:  # compiled documents parse alone; this is not expected
        raise PolicyValidationError(
            [PolicyProblem("<policy set>", 1, 1, f"Cedar rejected the assembled set: {exc}")]
        ) from None
