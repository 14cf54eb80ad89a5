"""The policy engine: Cedar decisions over a hot-swappable, versioned policy set.

State is one immutable :class:`EngineState` (policy set + base entities + their versions)
behind one reference. A change is built off to the side (:meth:`PolicyEngine.prepare` from
a whole snapshot, :meth:`PolicyEngine.prepare_change` from what may have changed; both safe
to run in a worker thread) and swapped in with one assignment
(:meth:`PolicyEngine.install`), so a decision always sees one consistent state, and a set
that fails to build never replaces the one in force. A build starts from the state in
force and recompiles only the documents that changed and rebuilds only the partitions they
touch (ADR 0024): its cost follows the change, not the size of the set.

Decision rules (ADR 0020):

* Default deny: no satisfied permit → Deny("no policy permits …").
* A satisfied forbid overrides every permit → Deny with each forbid's ``@reason``.
* Satisfied permits with ``@condition`` → AllowWithConditions with the union of their
  conditions (a condition is never waived because another permit also matched).
* Unknown action, unknown entity type, a principal (or resource) in neither the base
  entity set nor the request's entities, a context the schema rejects → Deny with a reason.
* Fail closed: a policy that errors while evaluating (``fail_on_policy_errors``), an
  exception from the engine, a blown deadline or an allow whose audit cannot be written →
  Deny with ``fail_closed=True`` and an audit event.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import cedarpy

from symbi_common.cedar import NAMESPACE
from symbi_common.errors import InvalidArgument, SymbiError
from symbi_policy.annotations import Condition
from symbi_policy.audit import (
    EVENT_DECISION,
    EVENT_ENGINE_FAILURE,
    EVENT_SET_INSTALLED,
    EVENT_SET_REJECTED,
    AuditSink,
    PolicyAuditEvent,
)
from symbi_policy.cache import LruCache
from symbi_policy.compiler import CompiledDocument, PolicyCompiler
from symbi_policy.decision import Allow, AllowWithConditions, Decision, Deny, decision_to_dict
from symbi_policy.entities import (
    EntityCatalog,
    EntityUid,
    compile_entities,
    empty_entities,
    update_entities,
)
from symbi_policy.errors import PolicyProblem, PolicyValidationError
from symbi_policy.policy_set import CompiledPolicySet, PrincipalSets
from symbi_policy.request import AuthzRequest
from symbi_policy.source import EntitiesDocument, PolicyDocument, SourceSnapshot

__all__ = [
    "EngineConfig",
    "EngineState",
    "EngineStats",
    "EngineStatus",
    "Evaluation",
    "PolicyEngine",
    "Rejection",
    "StateChange",
]

logger = logging.getLogger(__name__)

_ACTION_TYPE = f"{NAMESPACE}::Action"
# Exceptions that mean "stop", not "the engine failed": never turned into a decision.
_NOT_ENGINE_FAILURES = (KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError)
#: Most documents a change may hold to be built on the event loop (see is_quick).
_QUICK_DOCUMENTS = 16
#: Most changed document names an installed-set audit event lists.
_CHANGED_LISTED = 100
_state_serials = itertools.count(1)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the engine decides and what it audits."""

    #: Audit allows too (denies are always audited). An allow that must be audited and
    #: cannot be becomes a fail-closed deny.
    audit_allows: bool = False
    #: Decisions remembered per state; 0 turns the cache off.
    cache_size: int = 65_536
    #: Request entity sets (base + the request's own entities) remembered per state.
    request_entities_cache_size: int = 256
    #: Deny when any policy errors during evaluation. Cedar itself skips an erroring
    #: policy, so an erroring forbid would let a permit through; we fail closed instead.
    fail_on_policy_errors: bool = True
    #: Deny when the resource is in neither the base entity set nor the request's
    #: entities (the principal must always be known).
    require_known_resource: bool = True
    #: Check each request against the schema in Cedar (action applies to these types,
    #: context fits RequestContext). About 6 µs per decision.
    validate_requests: bool = True
    #: An evaluation slower than this is treated as a timeout (fail closed).
    max_evaluation_seconds: float = 0.25
    #: Most requests one evaluate_batch call may carry.
    max_batch: int = 1_000
    #: Cedar handles of principal partitions kept (one per principal with ``principal ==``
    #: policies that decisions ask about; ~25 KB each for an agent's 7 DSL policies).
    #: 0 builds one for every such decision.
    principal_sets: int = 8_192

    def __post_init__(self) -> None:
        if self.cache_size < 0 or self.request_entities_cache_size < 0 or self.principal_sets < 0:
            raise ValueError("cache sizes must be >= 0")
        if self.max_evaluation_seconds <= 0:
            raise ValueError("max_evaluation_seconds must be > 0")
        if self.max_batch <= 0:
            raise ValueError("max_batch must be > 0")


@dataclass(frozen=True, slots=True)
class EngineState:
    """What decisions are made against: one policy set and one base entity set."""

    policy_set: CompiledPolicySet
    entities: EntityCatalog
    #: The serial of the state this one was built as a change of (None: it holds a whole
    #: snapshot and may replace any state).
    built_on: int | None = None
    serial: int = field(default_factory=lambda: next(_state_serials))

    @property
    def version(self) -> int:
        return self.policy_set.version

    @property
    def entities_version(self) -> int:
        return self.entities.version


@dataclass(frozen=True, slots=True)
class StateChange:
    """What may differ from the state in force: the reloader's view of the source for the
    documents and entities written since that state was built."""

    policy_version: int
    entities_version: int
    #: Each document that may have changed, as the source has it (None: it is not there).
    #: Documents equal to the ones in force are skipped.
    documents: Mapping[str, PolicyDocument | None] = field(default_factory=dict)
    #: Each entity that may have changed: its JSON text, or None when it is not there.
    entity_changes: Mapping[EntityUid, str | None] = field(default_factory=dict)
    #: Replace the whole entity set with ``entities`` (None: no entities) instead.
    replace_entities: bool = False
    entities: EntitiesDocument | None = None


class _Versioned(Protocol):
    @property
    def policy_version(self) -> int: ...

    @property
    def entities_version(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Rejection:
    """A state that failed to build and was not installed."""

    version: int
    entities_version: int
    error: PolicyValidationError
    at_ms: int


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """What is in force, and the last change that was refused."""

    version: int
    entities_version: int
    digest: str
    documents: tuple[str, ...]
    policy_count: int
    entity_count: int
    installed_at_ms: int
    last_rejection: Rejection | None


@dataclass(slots=True)
class EngineStats:
    """Counters for metrics (the wiring exports them); only ever increase."""

    decisions: int = 0
    cache_hits: int = 0
    allows: int = 0
    denies: int = 0
    fail_closed: int = 0
    audit_failures: int = 0
    installs: int = 0
    rejections: int = 0
    #: Documents compiled into installed states (changed or new ones only).
    documents_built: int = 0
    #: Shared (per action) partitions rebuilt for installed states.
    shared_partitions_built: int = 0
    #: Principal partitions built with installed states (decisions build more on first
    #: use: ``PrincipalSets.built_on_use``).
    principal_partitions_built: int = 0


class Evaluation(NamedTuple):
    """A decision and whether it came from the decision cache."""

    decision: Decision
    cached: bool


@dataclass(frozen=True, slots=True)
class _Call:
    """A request that passed the pre-checks, ready for Cedar."""

    cedar_request: dict[str, Any]
    policies: cedarpy.PolicySet
    entities: cedarpy.Entities
    #: Requests with equal groups share policy and entity handles: one Cedar batch call.
    group: tuple[object, str]


class PolicyEngine:
    """Decides requests against the installed state; audits through ``audit``.

    Not thread-safe for decisions: call ``evaluate``/``evaluate_batch``/``install`` from
    one thread (the event loop). ``prepare`` may run in a worker thread.
    """

    def __init__(
        self,
        *,
        audit: AuditSink,
        config: EngineConfig | None = None,
        compiler: PolicyCompiler | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._audit = audit
        self._config = config or EngineConfig()
        self._compiler = compiler or PolicyCompiler()
        self._schema = self._compiler.schema
        self._clock = clock
        self._cedar_schema = self._schema if self._config.validate_requests else None
        self._sets = PrincipalSets(self._config.principal_sets)
        self._state = self._empty_state()
        self._installed_at_ms = 0
        self._last_rejection: Rejection | None = None
        self._decisions: LruCache[tuple[object, ...], Decision] = LruCache(self._config.cache_size)
        self._request_entities: LruCache[str, tuple[cedarpy.Entities, frozenset[EntityUid]]] = (
            LruCache(self._config.request_entities_cache_size)
        )
        self.stats = EngineStats()

    # ------------------------------------------------------------------ state

    @property
    def config(self) -> EngineConfig:
        return self._config

    @property
    def compiler(self) -> PolicyCompiler:
        return self._compiler

    @property
    def state(self) -> EngineState:
        """The state in force (an immutable snapshot)."""
        return self._state

    @property
    def version(self) -> int:
        return self._state.version

    @property
    def entities_version(self) -> int:
        return self._state.entities_version

    @property
    def principal_sets(self) -> PrincipalSets:
        """The principal-partition handles kept across states (for metrics)."""
        return self._sets

    def prepare(self, snapshot: SourceSnapshot) -> EngineState:
        """Build a state holding exactly ``snapshot``, without touching the one in force.

        Documents and partitions equal to the ones in force are reused, so only what
        differs is compiled and built. Raises PolicyValidationError when any document or
        the entity set is invalid, or when policy ids collide. Pure apart from the
        compiler's cache: safe in a thread.
        """
        base = self._state
        documents: dict[str, PolicyDocument | None] = {d.name: d for d in snapshot.policies}
        for name in base.policy_set.documents:
            documents.setdefault(name, None)
        change = StateChange(
            snapshot.policy_version,
            snapshot.entities_version,
            documents,
            replace_entities=True,
            entities=snapshot.entities,
        )
        return self._build(base, change, built_on=None)

    def prepare_change(self, change: StateChange) -> EngineState:
        """Build the state in force with ``change`` applied, without touching it.

        The result can only be installed while the state it was built from is in force.
        Raises PolicyValidationError as :meth:`prepare` does. Safe in a thread.
        """
        base = self._state
        return self._build(base, change, built_on=base.serial)

    def is_quick(self, change: StateChange) -> bool:
        """Whether ``change`` builds in well under a millisecond or so: a few documents the
        compiler already has (a write this replica validated), entities only added. Such a
        build costs less on the event loop than the hand-off to a worker thread and back
        (which, with the loop busy, can wait a GIL switch interval of 5 ms each way)."""
        if change.replace_entities or len(change.documents) > _QUICK_DOCUMENTS:
            return False
        texts = self._state.entities.texts
        if change.entity_changes and (
            texts is None or any(u in texts for u in change.entity_changes)
        ):
            return False  # a changed or removed entity parses the whole entity set
        in_force = self._state.policy_set
        for name, document in change.documents.items():
            if document is None:
                continue
            current = in_force.document(name)
            if current is not None and current.source == document.text:
                continue
            if not self._compiler.has_compiled(name, document.text):
                return False
        return True

    def _build(
        self, base: EngineState, change: StateChange, *, built_on: int | None
    ) -> EngineState:
        problems: list[PolicyProblem] = []
        compiled: dict[str, CompiledDocument | None] = {}
        todo: list[tuple[str, str]] = []
        for name in sorted(change.documents):
            document = change.documents[name]
            in_force = base.policy_set.document(name)
            if document is None:
                if in_force is not None:
                    compiled[name] = None
            elif in_force is None or in_force.source != document.text:
                todo.append((name, document.text))
        for (name, _), result in zip(todo, self._compiler.compile_many(todo), strict=True):
            if isinstance(result, PolicyValidationError):
                problems.extend(result.problems)
            else:
                compiled[name] = result
        try:
            entities = self._entities_for(base.entities, change)
        except PolicyValidationError as exc:
            problems.extend(exc.problems)
        if problems:
            raise PolicyValidationError(problems)
        try:
            policy_set = base.policy_set.evolve(compiled, change.policy_version)
        except ValueError as exc:  # compiled documents parse alone; this is not expected
            raise PolicyValidationError(
                [PolicyProblem("<policy set>", 1, 1, f"Cedar rejected the assembled set: {exc}")]
            ) from None
        return EngineState(policy_set, entities, built_on=built_on)

    def _entities_for(self, base: EntityCatalog, change: StateChange) -> EntityCatalog:
        version = change.entities_version
        if not change.replace_entities:
            return update_entities(base, change.entity_changes, self._schema, version=version)
        document = change.entities
        if document is None:
            return empty_entities(self._schema, version)
        return compile_entities(
            document.text,
            self._schema,
            version=version,
            by_uid=document.by_uid,
            # The state in force is immutable: a set that only adds entities to it is
            # built by adding to its entity handle instead of parsing every entity again.
            previous=base,
        )

    def install(self, state: EngineState) -> bool:
        """Put ``state`` in force; False (and nothing changes) if it is older than the current.

        The swap is one assignment, and both caches are emptied with it.
        """
        current = self._state
        if (state.version, state.entities_version) < (current.version, current.entities_version):
            logger.info(
                "not installing policy set v%d/entities v%d: v%d/entities v%d is newer",
                state.version,
                state.entities_version,
                current.version,
                current.entities_version,
            )
            return False
        if state.built_on is not None and state.built_on != current.serial:
            logger.warning(
                "not installing policy set v%d/entities v%d: it was built as a change of a "
                "state that is no longer in force",
                state.version,
                state.entities_version,
            )
            return False
        self._state = state
        self._decisions.clear()
        self._request_entities.clear()
        self._installed_at_ms = time.time_ns() // 1_000_000
        policy_set = state.policy_set
        built = policy_set.take_built()
        for key, handle in built:
            self._sets.put(key, handle)
        changed = policy_set.changed
        self.stats.installs += 1
        self.stats.documents_built += sum(1 for n in changed if policy_set.document(n))
        self.stats.shared_partitions_built += policy_set.built_shared
        self.stats.principal_partitions_built += len(built)
        logger.info(
            "policy set v%d (%d policies, %d documents changed, digest %.12s) and entities "
            "v%d in force",
            state.version,
            len(policy_set.policies),
            len(changed),
            policy_set.digest,
            state.entities_version,
        )
        self._record_quietly(
            PolicyAuditEvent(
                EVENT_SET_INSTALLED,
                "",
                "",
                "",
                {
                    "version": state.version,
                    "entities_version": state.entities_version,
                    "digest": policy_set.digest,
                    "documents": policy_set.document_count,
                    "policies": len(policy_set.policies),
                    "changed": list(changed[:_CHANGED_LISTED]),
                    "changed_count": len(changed),
                },
            )
        )
        return True

    def apply(self, snapshot: SourceSnapshot) -> EngineState:
        """``prepare`` then ``install``; on a validation failure record it and re-raise."""
        try:
            state = self.prepare(snapshot)
        except PolicyValidationError as exc:
            self.record_rejection(snapshot, exc)
            raise
        self.install(state)
        return state

    def record_rejection(self, snapshot: _Versioned, error: PolicyValidationError) -> None:
        """Note (status, audit, log) that ``snapshot`` (or a change) failed and the old
        state stays."""
        self._last_rejection = Rejection(
            snapshot.policy_version,
            snapshot.entities_version,
            error,
            time.time_ns() // 1_000_000,
        )
        self.stats.rejections += 1
        logger.warning(
            "policy set v%d/entities v%d rejected, v%d stays in force: %s",
            snapshot.policy_version,
            snapshot.entities_version,
            self._state.version,
            error.message,
        )
        self._record_quietly(
            PolicyAuditEvent(
                EVENT_SET_REJECTED,
                "",
                "",
                "",
                {
                    "version": snapshot.policy_version,
                    "entities_version": snapshot.entities_version,
                    "in_force": self._state.version,
                    "problems": [str(p) for p in error.problems],
                },
            )
        )

    def status(self) -> EngineStatus:
        state = self._state
        return EngineStatus(
            version=state.version,
            entities_version=state.entities_version,
            digest=state.policy_set.digest,
            documents=state.policy_set.documents,
            policy_count=len(state.policy_set.policies),
            entity_count=len(state.entities.uids),
            installed_at_ms=self._installed_at_ms,
            last_rejection=self._last_rejection,
        )

    # ------------------------------------------------------------------ decisions

    def evaluate(self, request: AuthzRequest, *, deadline: float | None = None) -> Decision:
        """Decide one request. Never raises for a bad request or engine failure: denies.

        ``deadline`` is a ``time.monotonic()`` instant; past it the answer is a
        fail-closed deny.
        """
        return self.evaluation(request, deadline=deadline).decision

    def evaluation(self, request: AuthzRequest, *, deadline: float | None = None) -> Evaluation:
        """As :meth:`evaluate`, and whether the decision came from the cache."""
        state = self._state
        key = self._cache_key(state, request)
        cached = self._decisions.get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            return Evaluation(self._finish(request, cached, cached=True), True)
        decision = self._decide(state, request, deadline)
        return Evaluation(self._finish(request, decision, cached=False, key=key), False)

    def evaluate_batch(
        self, requests: Sequence[AuthzRequest], *, deadline: float | None = None
    ) -> list[Decision]:
        """Decide many requests with one Cedar call per distinct entity set.

        Raises InvalidArgument when the batch is larger than ``max_batch``.
        """
        return [e.decision for e in self.evaluations(requests, deadline=deadline)]

    def evaluations(
        self, requests: Sequence[AuthzRequest], *, deadline: float | None = None
    ) -> list[Evaluation]:
        """As :meth:`evaluate_batch`, and for each whether it came from the cache."""
        if len(requests) > self._config.max_batch:
            raise InvalidArgument(
                f"batch of {len(requests)} requests is over the limit of {self._config.max_batch}",
                reason="BATCH_TOO_LARGE",
            )
        state = self._state
        decisions: list[Decision | None] = [None] * len(requests)
        keys: list[tuple[object, ...]] = []
        hits: list[bool] = [False] * len(requests)
        groups: dict[tuple[object, str], list[tuple[int, _Call]]] = {}
        for i, request in enumerate(requests):
            key = self._cache_key(state, request)
            keys.append(key)
            cached = self._decisions.get(key)
            if cached is not None:
                self.stats.cache_hits += 1
                decisions[i] = cached
                hits[i] = True
                continue
            call = self._precheck(state, request)
            if isinstance(call, Decision):
                decisions[i] = call
            else:
                groups.setdefault(call.group, []).append((i, call))
        for members in groups.values():
            self._decide_group(state, requests, members, decisions, deadline)
        results = []
        for i, request in enumerate(requests):
            decision = decisions[i]
            assert decision is not None  # every index was filled above
            final = self._finish(
                request, decision, cached=hits[i], key=None if hits[i] else keys[i]
            )
            results.append(Evaluation(final, hits[i]))
        return results

    def _decide(
        self, state: EngineState, request: AuthzRequest, deadline: float | None
    ) -> Decision:
        call = self._precheck(state, request)
        if isinstance(call, Decision):
            return call
        start = self._clock()
        if deadline is not None and start >= deadline:
            return self._failure(state, request, "deadline passed before evaluation")
        try:
            result = cedarpy.is_authorized(
                call.cedar_request, call.policies, call.entities, self._cedar_schema
            )
        except _NOT_ENGINE_FAILURES:
            raise
        except BaseException as exc:  # pyo3 panics derive from BaseException
            logger.exception("Cedar failed on %s", request.describe())
            return self._failure(state, request, f"engine error: {type(exc).__name__}: {exc}")
        late = self._lateness(start, deadline)
        if late is not None:
            return self._failure(state, request, late)
        return self._interpret(state, request, result)

    def _decide_group(
        self,
        state: EngineState,
        requests: Sequence[AuthzRequest],
        members: list[tuple[int, _Call]],
        decisions: list[Decision | None],
        deadline: float | None,
    ) -> None:
        start = self._clock()
        if deadline is not None and start >= deadline:
            for i, _ in members:
                decisions[i] = self._failure(
                    state, requests[i], "deadline passed before evaluation"
                )
            return
        try:
            results = cedarpy.is_authorized_batch(
                [call.cedar_request for _, call in members],
                members[0][1].policies,
                members[0][1].entities,
                self._cedar_schema,
            )
        except _NOT_ENGINE_FAILURES:
            raise
        except BaseException:  # pyo3 panics derive from BaseException
            # One bad request must not deny its neighbours: decide each on its own.
            logger.warning("batch of %d failed in Cedar; deciding one by one", len(members))
            for i, _ in members:
                decisions[i] = self._decide(state, requests[i], deadline)
            return
        late = self._lateness(start, deadline, count=len(members))
        for (i, _), result in zip(members, results, strict=True):
            if late is not None:
                decisions[i] = self._failure(state, requests[i], late)
            else:
                decisions[i] = self._interpret(state, requests[i], result)

    def _lateness(self, start: float, deadline: float | None, *, count: int = 1) -> str | None:
        now = self._clock()
        budget = self._config.max_evaluation_seconds * count
        if now - start > budget:
            return (
                f"evaluation timed out: took {(now - start) * 1e3:.1f} ms, "
                f"over the {budget * 1e3:.1f} ms budget"
            )
        if deadline is not None and now > deadline:
            return "deadline passed during evaluation"
        return None

    def _precheck(self, state: EngineState, request: AuthzRequest) -> Decision | _Call:
        """Deny what Cedar would misjudge or cannot judge; otherwise build the Cedar call."""
        if not request.known_action:
            return self._deny(
                state, f"unknown action {request.action!r}: the Symbi schema does not declare it"
            )
        for role, uid in (("principal", request.principal), ("resource", request.resource)):
            if not uid.known_type:
                return self._deny(
                    state, f"unknown {role} type {uid.type!r}: the Symbi schema does not declare it"
                )
        entities = state.entities.handle
        request_uids: frozenset[EntityUid] = frozenset()
        group = ""
        if request.entities:
            group = request.entities_key()
            merged = self._merge_entities(state, group)
            if isinstance(merged, str):
                return self._deny(state, merged)
            entities, request_uids = merged
        for role, uid, required in (
            ("principal", request.principal, True),
            ("resource", request.resource, self._config.require_known_resource),
        ):
            if required and uid not in state.entities.uids and uid not in request_uids:
                return self._deny(
                    state,
                    f"unknown {role} {uid}: not in the entity set (version "
                    f"{state.entities_version}) nor in the request's entities",
                )
        cedar_request = {
            "principal": request.principal.as_cedar(),
            "action": {"type": _ACTION_TYPE, "id": request.action},
            "resource": request.resource.as_cedar(),
            "context": request.context,
        }
        slice_key, policies = state.policy_set.handle_for(request.action, request.principal)
        return _Call(cedar_request, policies, entities, (slice_key, group))

    def _merge_entities(
        self, state: EngineState, key: str
    ) -> tuple[cedarpy.Entities, frozenset[EntityUid]] | str:
        cached = self._request_entities.get(key)
        if cached is not None:
            return cached
        delta = json.loads(key)
        uids = frozenset(EntityUid(e["uid"]["type"], e["uid"]["id"]) for e in delta)
        clashes = sorted(str(u) for u in uids if u in state.entities.uids)
        if clashes:
            # A request may add entities, never restate stored ones: a caller that could
            # override an agent's attributes could grant itself anything.
            return (
                f"request entities {', '.join(clashes)} are already in the entity set "
                f"(version {state.entities_version}); a request may only add entities"
            )
        try:
            handle = state.entities.handle.with_added_json_str(key, self._schema)
        except ValueError as exc:
            return f"request entities rejected by the schema: {exc}"
        merged = (handle, uids)
        self._request_entities.put(key, merged)
        return merged

    def _interpret(
        self, state: EngineState, request: AuthzRequest, result: cedarpy.AuthzResult
    ) -> Decision:
        diagnostics = result.diagnostics
        errors = diagnostics.errors
        if result.decision == cedarpy.Decision.NoDecision:
            return self._deny(state, *(f"request rejected: {e}" for e in errors or ["no decision"]))
        # Cedar reports a set; sorted, every replica names the same policies in one order.
        ids = tuple(sorted(diagnostics.reasons))
        if errors and self._config.fail_on_policy_errors:
            return Deny(
                policies=(),
                version=state.version,
                entities_version=state.entities_version,
                reasons=tuple(f"policy evaluation error (fail closed): {e}" for e in errors),
                fail_closed=True,
            )
        policies = state.policy_set.policies
        if result.decision == cedarpy.Decision.Allow:
            conditions: list[Condition] = []
            for policy_id in ids:
                policy = policies.get(policy_id)
                if policy is None:
                    return self._failure(
                        state, request, f"determining policy {policy_id!r} is not in the set"
                    )
                conditions.extend(c for c in policy.conditions if c not in conditions)
            if conditions:
                return AllowWithConditions(
                    policies=ids,
                    version=state.version,
                    entities_version=state.entities_version,
                    conditions=tuple(conditions),
                )
            return Allow(
                policies=ids, version=state.version, entities_version=state.entities_version
            )
        if not ids:
            return self._deny(state, f"no policy permits {request.describe()} (default deny)")
        reasons = []
        for policy_id in ids:
            policy = policies.get(policy_id)
            reason = policy.reason if policy is not None else None
            reasons.append(reason or f"forbidden by policy {policy_id}")
        return Deny(
            policies=ids,
            version=state.version,
            entities_version=state.entities_version,
            reasons=tuple(reasons),
        )

    def _deny(self, state: EngineState, *reasons: str) -> Deny:
        return Deny(
            policies=(),
            version=state.version,
            entities_version=state.entities_version,
            reasons=reasons,
        )

    def _failure(self, state: EngineState, request: AuthzRequest, cause: str) -> Deny:
        """A fail-closed deny, with its own audit event naming the cause."""
        self.stats.fail_closed += 1
        self._record_quietly(
            PolicyAuditEvent(
                EVENT_ENGINE_FAILURE,
                "deny",
                str(request.principal),
                _agent_id(request.principal),
                {"request": _request_details(request), "cause": cause, "version": state.version},
            )
        )
        return Deny(
            policies=(),
            version=state.version,
            entities_version=state.entities_version,
            reasons=(cause,),
            fail_closed=True,
        )

    def _finish(
        self,
        request: AuthzRequest,
        decision: Decision,
        *,
        cached: bool,
        key: tuple[object, ...] | None = None,
    ) -> Decision:
        """Cache, count and audit a decision; may turn an unauditable allow into a deny."""
        if key is not None and not (isinstance(decision, Deny) and decision.fail_closed):
            # A fail-closed deny says something about the moment (an error, a deadline,
            # load), not about the request: never remember it.
            self._decisions.put(key, decision)
        self.stats.decisions += 1
        must_audit = (
            isinstance(decision, Deny)
            or self._config.audit_allows
            or (
                isinstance(decision, AllowWithConditions)
                and any(c.name == "audit_full" for c in decision.conditions)
            )
        )
        if must_audit:
            event = PolicyAuditEvent(
                EVENT_DECISION,
                _audit_decision(decision),
                str(request.principal),
                _agent_id(request.principal),
                functools.partial(_decision_details, request, decision, cached),
            )
            try:
                self._audit.record(event)
            except SymbiError as exc:
                self.stats.audit_failures += 1
                if decision.allowed:
                    logger.warning(  # rare by design: allows are few next to denies
                        "audit refused an allow of %s (%s): denying", request.describe(), exc
                    )
                    decision = Deny(
                        policies=decision.policies,
                        version=decision.version,
                        entities_version=decision.entities_version,
                        reasons=(
                            f"audit unavailable, allow withdrawn (fail closed): {exc.message}",
                        ),
                        fail_closed=True,
                    )
                    self.stats.fail_closed += 1
                elif _worth_logging(self.stats.audit_failures):
                    logger.error(
                        "audit refused a deny of %s: %s (%d audit failures so far)",
                        request.describe(),
                        exc,
                        self.stats.audit_failures,
                    )
        if decision.allowed:
            self.stats.allows += 1
        else:
            self.stats.denies += 1
        return decision

    def _record_quietly(self, event: PolicyAuditEvent) -> None:
        try:
            self._audit.record(event)
        except SymbiError as exc:
            self.stats.audit_failures += 1
            if _worth_logging(self.stats.audit_failures):
                logger.error(
                    "audit refused %s event: %s (%d audit failures so far)",
                    event.event_type,
                    exc,
                    self.stats.audit_failures,
                )

    def _cache_key(self, state: EngineState, request: AuthzRequest) -> tuple[object, ...]:
        if self._config.cache_size == 0:
            return ()  # no cache: skip encoding the request
        return (state.version, state.entities_version, *request.cache_key())

    def _empty_state(self) -> EngineState:
        return EngineState(CompiledPolicySet.empty(self._sets), empty_entities(self._schema))


def _worth_logging(failures: int) -> bool:
    # A full audit buffer fails every event: log the 1st, 2nd, 4th, 8th, ... not each one.
    return failures & (failures - 1) == 0


def _agent_id(uid: EntityUid) -> str:
    return uid.id if uid.type == f"{NAMESPACE}::Agent" else ""


def _audit_decision(decision: Decision) -> str:
    if isinstance(decision, Deny):
        return "deny"
    return "conditional" if isinstance(decision, AllowWithConditions) else "allow"


def _decision_details(request: AuthzRequest, decision: Decision, cached: bool) -> dict[str, Any]:
    return {
        "request": _request_details(request),
        "result": decision_to_dict(decision, cached=cached),
    }


def _request_details(request: AuthzRequest) -> dict[str, Any]:
    return {
        "principal": str(request.principal),
        "action": request.action,
        "resource": str(request.resource),
        "context": dict(request.context),
    }
