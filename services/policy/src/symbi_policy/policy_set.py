"""A policy set kept in partitions: a change rebuilds what it touches, a decision evaluates
only policies that can apply.

Cedar evaluates every policy of the set it is given (about 1 µs each), and cedarpy can only
build a set by parsing all of it. Both costs are kept proportional to what matters by
partitioning the set on the two scope constraints that decide applicability before any
condition runs (ADR 0021, ADR 0024):

* **shared partitions**, one per schema action: the policies without a ``principal ==``
  scope whose action scope admits that action (``action == A``, ``action in [A, B]``, or
  any action). Built eagerly; a change rebuilds the actions whose policies it touches.
* **principal partitions**, one per principal P named by a ``principal == P`` scope (the
  DSL compiler scopes every agent policy so): P's policies, and the actions they may apply
  to. A request by P for one of those actions is evaluated against P's policies plus the
  shared partitions of P's actions, one Cedar handle built from just those. Handles live
  in :class:`PrincipalSets`, a bounded LRU shared by successive sets and keyed by
  (P, the partition's serial, the shared epoch), so a handle is only ever found for the
  exact policies it was built from and survives every change that does not touch it.
  A change rebuilds the handles of the principals it touches (eagerly when they are few);
  a change to shared partitions starts a new epoch, and principal handles are then rebuilt
  on first use.

A policy outside a request's partitions cannot be satisfied by that request and cannot
error on it (scope is checked before conditions), so every decision and determining-policy
list is the same as against the whole set (a property test checks it).

Sets are immutable: :meth:`CompiledPolicySet.evolve` returns a new set that shares every
untouched partition, document and policy with the old one (:class:`PersistentMap`), so it
is safe to build in a worker thread while decisions read the set in force.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import cedarpy

from symbi_common.cedar import ACTIONS
from symbi_policy.cache import LruCache
from symbi_policy.compiler import CompiledDocument, CompiledPolicy
from symbi_policy.errors import PolicyProblem, PolicyValidationError
from symbi_policy.persistent import PersistentMap

__all__ = ["CompiledPolicySet", "PrincipalSets", "assemble_policy_set"]

Principal = tuple[str, str]
#: A principal partition's handle key: (principal, partition serial, shared epoch).
HandleKey = tuple[Principal, int, int]

#: A change touching at most this many principals builds their handles while the set is
#: built (off the event loop); beyond it (a replica starting on thousands of agents) they
#: are built on first use.
EAGER_PRINCIPALS = 64
_DIGEST_BUCKETS = 256
_SET_JSON = '{{"staticPolicies":{{{}}},"templates":{{}},"templateLinks":[]}}'
_ACTION_LIST = tuple(sorted(ACTIONS))
#: Partition serials and shared epochs: unique in the process, so a (serial, epoch) pair
#: names one exact list of policies.
_serials = itertools.count(1)
_EMPTY_HANDLE = cedarpy.PolicySet.from_json_str(_SET_JSON.format(""))


@dataclass(frozen=True, slots=True)
class _Shared:
    """The shared policies for one action, parsed."""

    ids: tuple[str, ...]
    handle: cedarpy.PolicySet


@dataclass(frozen=True, slots=True)
class _Scoped:
    """The policies scoped to one principal (ids in (document, index) order)."""

    ids: tuple[str, ...]
    #: The actions any of them may apply to.
    actions: frozenset[str]
    serial: int


class PrincipalSets:
    """Cedar handles of principal partitions, shared by successive policy sets.

    A bounded LRU (each handle is ~3.5 KB per policy in Cedar's memory). Use it from one
    thread: the engine reads and fills it on the event loop.
    """

    def __init__(self, maxsize: int = 8192) -> None:
        self._handles: LruCache[HandleKey, cedarpy.PolicySet] = LruCache(maxsize)
        #: Handles built on first use (a decision needed one that was not cached).
        self.built_on_use = 0

    def get(self, key: HandleKey) -> cedarpy.PolicySet | None:
        return self._handles.get(key)

    def put(self, key: HandleKey, handle: cedarpy.PolicySet) -> None:
        self._handles.put(key, handle)

    def __len__(self) -> int:
        return len(self._handles)

    @property
    def maxsize(self) -> int:
        return self._handles.maxsize


class _SetDigest:
    """sha256 over the documents' names and digests, in 256 buckets (by the first byte of
    sha256(name)) so that a change rehashes one bucket and the root, not every document.
    Equal sets have equal digests on every replica; the empty set's is sha256("")."""

    __slots__ = ("_buckets", "_hashes", "value")

    def __init__(self, buckets: tuple[Mapping[str, str], ...], hashes: tuple[str, ...]) -> None:
        self._buckets = buckets
        self._hashes = hashes
        self.value = hashlib.sha256("".join(hashes).encode()).hexdigest()

    @classmethod
    def empty(cls) -> _SetDigest:
        return cls(({},) * _DIGEST_BUCKETS, ("",) * _DIGEST_BUCKETS)

    def evolve(self, changes: Mapping[str, str | None]) -> _SetDigest:
        """With each name's document digest set (or the name removed, for None)."""
        touched: dict[int, dict[str, str]] = {}
        for name, digest in changes.items():
            index = hashlib.sha256(name.encode()).digest()[0]
            bucket = touched.get(index)
            if bucket is None:
                bucket = touched[index] = dict(self._buckets[index])
            if digest is None:
                bucket.pop(name, None)
            else:
                bucket[name] = digest
        buckets = list(self._buckets)
        hashes = list(self._hashes)
        for index, bucket in touched.items():
            buckets[index] = bucket
            lines = "".join(f"{name}\0{bucket[name]}\n" for name in sorted(bucket))
            hashes[index] = hashlib.sha256(lines.encode()).hexdigest() if bucket else ""
        return _SetDigest(tuple(buckets), tuple(hashes))


class CompiledPolicySet:
    """Every policy in force by id, in partitions with their Cedar handles.

    Immutable; build the first with :meth:`empty` and the next with :meth:`evolve`.
    ``handle_for`` fills the shared :class:`PrincipalSets` (call it from one thread).
    """

    __slots__ = (
        "_documents",
        "_epoch",
        "_names",
        "_policies",
        "_scoped",
        "_sets",
        "_shared",
        "built",
        "built_shared",
        "changed",
        "digest_state",
        "version",
    )

    def __init__(
        self,
        *,
        version: int,
        documents: PersistentMap[str, CompiledDocument],
        policies: PersistentMap[str, CompiledPolicy],
        shared: Mapping[str, _Shared],
        epoch: int,
        scoped: PersistentMap[Principal, _Scoped],
        digest: _SetDigest,
        sets: PrincipalSets,
        built: tuple[tuple[HandleKey, cedarpy.PolicySet], ...] = (),
        built_shared: int = 0,
        changed: tuple[str, ...] = (),
    ) -> None:
        self.version = version
        self._documents = documents
        self._policies = policies
        self._shared = shared
        self._epoch = epoch
        self._scoped = scoped
        self.digest_state = digest
        self._sets = sets
        #: Principal handles built with this set (the engine adds them to ``sets`` when it
        #: installs the set: only the event loop touches the LRU).
        self.built = built
        #: Shared partitions rebuilt for this set.
        self.built_shared = built_shared
        #: Document names this set changed from the one it evolved from, sorted.
        self.changed = changed
        self._names: tuple[str, ...] | None = None

    @classmethod
    def empty(cls, sets: PrincipalSets | None = None, *, version: int = 0) -> CompiledPolicySet:
        """No policies at all (every decision a default deny)."""
        shared = {action: _Shared((), _EMPTY_HANDLE) for action in _ACTION_LIST}
        return cls(
            version=version,
            documents=PersistentMap(),
            policies=PersistentMap(),
            shared=shared,
            epoch=next(_serials),
            scoped=PersistentMap(),
            digest=_SetDigest.empty(),
            sets=sets if sets is not None else PrincipalSets(),
        )

    # ------------------------------------------------------------------ reading

    @property
    def policies(self) -> Mapping[str, CompiledPolicy]:
        return self._policies

    @property
    def digest(self) -> str:
        """sha256 over the documents' names and digests: equal sets have equal digests."""
        return self.digest_state.value

    @property
    def documents(self) -> tuple[str, ...]:
        """Every document's name, sorted (computed on first use, then kept)."""
        if self._names is None:
            self._names = tuple(sorted(self._documents))
        return self._names

    @property
    def document_count(self) -> int:
        return len(self._documents)

    @property
    def sets(self) -> PrincipalSets:
        return self._sets

    def take_built(self) -> tuple[tuple[HandleKey, cedarpy.PolicySet], ...]:
        """The principal handles built with this set, once (the engine caches them)."""
        built, self.built = self.built, ()
        return built

    def document(self, name: str) -> CompiledDocument | None:
        """The compiled document ``name`` in this set, or None."""
        return self._documents.get(name)

    def handle_for(self, action: str, principal: Principal) -> tuple[object, cedarpy.PolicySet]:
        """The policies that can apply to ``principal`` doing ``action``, parsed, and a key
        identifying that handle (requests with equal keys share it in a batch)."""
        scoped = self._scoped.get(principal)
        if scoped is None or action not in scoped.actions:
            shared = self._shared.get(action)
            return action, shared.handle if shared is not None else _EMPTY_HANDLE
        key = (principal, scoped.serial, self._epoch)
        handle = self._sets.get(key)
        if handle is None:
            handle = self._principal_handle(scoped, self._shared, self._policies)
            self._sets.built_on_use += 1
            self._sets.put(key, handle)
        return key, handle

    # ------------------------------------------------------------------ changing

    def evolve(
        self, changes: Mapping[str, CompiledDocument | None], version: int
    ) -> CompiledPolicySet:
        """This set with each named document replaced (None: removed), at ``version``.

        Only the partitions holding policies of changed documents are rebuilt. Raises
        PolicyValidationError when a policy id would be held by two documents, naming the
        same problems a build of the whole set would (the document first by name keeps
        the id). Safe in a worker thread.
        """
        removed: list[CompiledPolicy] = []
        added: list[CompiledPolicy] = []
        document_updates: dict[str, CompiledDocument] = {}
        document_removals: list[str] = []
        digests: dict[str, str | None] = {}
        for name in sorted(changes):
            new = changes[name]
            old = self._documents.get(name)
            if new is None:
                if old is None:
                    continue
                document_removals.append(name)
                digests[name] = None
            else:
                if old is not None and old.digest == new.digest:
                    continue  # same text: same policies
                document_updates[name] = new
                digests[name] = new.digest
                added.extend(new.policies)
            if old is not None:
                removed.extend(old.policies)
        if not digests:
            return self if version == self.version else self._at(version)
        self._check_unique_ids(added, digests)

        added_ids = {p.id for p in added}
        policies = self._policies.evolve(
            {p.id: p for p in added}, [p.id for p in removed if p.id not in added_ids]
        )
        shared, built_shared = self._evolve_shared(removed, added, policies)
        scoped, touched = self._evolve_scoped(removed, added, policies)
        epoch = next(_serials) if built_shared else self._epoch
        built: list[tuple[HandleKey, cedarpy.PolicySet]] = []
        if len(touched) <= EAGER_PRINCIPALS:
            for principal in sorted(touched):
                part = scoped.get(principal)
                if part is not None:
                    key = (principal, part.serial, epoch)
                    built.append((key, self._principal_handle(part, shared, policies)))
        return CompiledPolicySet(
            version=version,
            documents=self._documents.evolve(document_updates, document_removals),
            policies=policies,
            shared=shared,
            epoch=epoch,
            scoped=scoped,
            digest=self.digest_state.evolve(digests),
            sets=self._sets,
            built=tuple(built),
            built_shared=built_shared,
            changed=tuple(digests),
        )

    def _at(self, version: int) -> CompiledPolicySet:
        """The same policies at another version."""
        return CompiledPolicySet(
            version=version,
            documents=self._documents,
            policies=self._policies,
            shared=self._shared,
            epoch=self._epoch,
            scoped=self._scoped,
            digest=self.digest_state,
            sets=self._sets,
        )

    def _check_unique_ids(
        self, added: Sequence[CompiledPolicy], changes: Mapping[str, object]
    ) -> None:
        claims: dict[str, list[CompiledPolicy]] = {}
        for policy in added:
            claims.setdefault(policy.id, []).append(policy)
        problems: list[tuple[str, int, PolicyProblem]] = []
        for policy_id, holders in claims.items():
            existing = self._policies.get(policy_id)
            if existing is not None and existing.document not in changes:
                holders = [*holders, existing]
            if len(holders) < 2:
                continue
            holders.sort(key=lambda p: p.document)
            owner = holders[0]
            for policy in holders[1:]:
                problem = PolicyProblem(
                    policy.document,
                    policy.line,
                    policy.column,
                    f"policy id {policy.id!r} is already used in document "
                    f"{owner.document!r} (line {owner.line}): @id must be unique across "
                    "the policy set",
                    policy.id,
                )
                problems.append((policy.document, policy.index, problem))
        if problems:
            problems.sort(key=lambda p: (p[0], p[1]))
            raise PolicyValidationError([p for _, _, p in problems])

    def _evolve_shared(
        self,
        removed: Sequence[CompiledPolicy],
        added: Sequence[CompiledPolicy],
        policies: Mapping[str, CompiledPolicy],
    ) -> tuple[Mapping[str, _Shared], int]:
        gone: set[str] = set()
        touched: set[str] = set()
        joining: dict[str, list[str]] = {}
        for policy in removed:
            if policy.principal is None:
                gone.add(policy.id)
                touched.update(_actions_of(policy))
        for policy in added:
            if policy.principal is None:
                for action in _actions_of(policy):
                    touched.add(action)
                    joining.setdefault(action, []).append(policy.id)
        if not touched:
            return self._shared, 0
        shared = dict(self._shared)
        for action in touched:
            ids = [i for i in self._shared[action].ids if i not in gone]
            ids.extend(joining.get(action, ()))
            ordered = _ordered(ids, policies)
            shared[action] = _Shared(ordered, _build(ordered, policies))
        return shared, len(touched)

    def _evolve_scoped(
        self,
        removed: Sequence[CompiledPolicy],
        added: Sequence[CompiledPolicy],
        policies: Mapping[str, CompiledPolicy],
    ) -> tuple[PersistentMap[Principal, _Scoped], set[Principal]]:
        gone: dict[Principal, set[str]] = {}
        joining: dict[Principal, list[str]] = {}
        for policy in removed:
            if policy.principal is not None:
                gone.setdefault(policy.principal, set()).add(policy.id)
        for policy in added:
            if policy.principal is not None:
                joining.setdefault(policy.principal, []).append(policy.id)
        touched = set(gone) | set(joining)
        updates: dict[Principal, _Scoped] = {}
        removals: list[Principal] = []
        for principal in touched:
            old = self._scoped.get(principal)
            leaving = gone.get(principal, set())
            ids = [i for i in (old.ids if old is not None else ()) if i not in leaving]
            ids.extend(joining.get(principal, ()))
            if not ids:
                removals.append(principal)
                continue
            actions: set[str] = set()
            for policy_id in ids:
                actions.update(_actions_of(policies[policy_id]))
            updates[principal] = _Scoped(
                _ordered(ids, policies), frozenset(actions), next(_serials)
            )
        return self._scoped.evolve(updates, removals), touched

    @staticmethod
    def _principal_handle(
        part: _Scoped, shared: Mapping[str, _Shared], policies: Mapping[str, CompiledPolicy]
    ) -> cedarpy.PolicySet:
        """P's policies and the shared ones of every action they may apply to: for any of
        those actions, the policies that can apply are all in it."""
        common: set[str] = set()
        for action in part.actions:
            common.update(shared[action].ids)
        return _build((*_ordered(common, policies), *part.ids), policies)


def _actions_of(policy: CompiledPolicy) -> Iterable[str]:
    """The schema actions ``policy``'s action scope admits (validation admits no other)."""
    if policy.actions is None:
        return _ACTION_LIST
    return [a for a in policy.actions if a in ACTIONS]


def _ordered(ids: Iterable[str], policies: Mapping[str, CompiledPolicy]) -> tuple[str, ...]:
    """Policy ids in (document, position) order: every replica builds the same handles."""
    return tuple(sorted(ids, key=lambda i: (policies[i].document, policies[i].index)))


def _build(ids: Sequence[str], policies: Mapping[str, CompiledPolicy]) -> cedarpy.PolicySet:
    if not ids:
        return _EMPTY_HANDLE
    body = ",".join(f"{json.dumps(pid)}:{policies[pid].est_json}" for pid in ids)
    return cedarpy.PolicySet.from_json_str(_SET_JSON.format(body))


def assemble_policy_set(
    documents: Sequence[CompiledDocument], version: int, sets: PrincipalSets | None = None
) -> CompiledPolicySet:
    """Join documents into one set; PolicyValidationError if two policies share an id."""
    try:
        return CompiledPolicySet.empty(sets).evolve({d.name: d for d in documents}, version)
    except ValueError as exc:  # compiled documents parse alone; this is not expected
        raise PolicyValidationError(
            [PolicyProblem("<policy set>", 1, 1, f"Cedar rejected the assembled set: {exc}")]
        ) from None
