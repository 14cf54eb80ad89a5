"""Hot reload: keep an engine in step with its policy source.

The reloader follows ``PolicySource.watch()`` and keeps the desired state (every document
and every entity as the source has them), and which documents and entities were written
since the state in force was built. A builder hands just those to the engine
(:meth:`PolicyEngine.prepare_change`), which builds the new state off to the side (in a
worker thread, so decisions keep flowing) from the state in force, recompiling only what
changed (ADR 0024), and installs it with one swap. Changes that arrive while a build runs
are coalesced into the next build, so a burst of writes costs a few builds, not one per
write. A state that fails validation is recorded as rejected and the state in force stays;
what it was built from stays pending, so the next change builds it again together with
the new one, and fixing (or deleting) the bad document recovers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from symbi_policy.engine import PolicyEngine, StateChange
from symbi_policy.entities import EntityUid
from symbi_policy.errors import PolicyValidationError
from symbi_policy.source import (
    EntitiesDocument,
    EntitiesPut,
    EntityDeleted,
    EntityPut,
    PolicyDeleted,
    PolicyDocument,
    PolicyPut,
    PolicySource,
    SourceEvent,
    SourceSnapshot,
    join_entities,
    snapshot_from,
    split_entities,
)

__all__ = ["PolicyReloader"]

logger = logging.getLogger(__name__)


class PolicyReloader:
    """Follows a source and installs each valid change into an engine.

    ``run()`` is the long-lived loop (owned by the service's TaskGroup; cancel it to stop).
    It returns when the source's watch ends.
    """

    def __init__(
        self, source: PolicySource, engine: PolicyEngine, *, build_in_thread: bool = True
    ) -> None:
        self._source = source
        self._engine = engine
        self._build_in_thread = build_in_thread
        self._policies: dict[str, PolicyDocument] = {}
        self._policy_version = 0
        #: Entities one canonical JSON text per uid; a stored whole document that cannot be
        #: split (not a list of entities) is kept whole in ``_entities_raw`` instead, so the
        #: build fails on it (and the state in force stays) rather than it being ignored.
        self._entities: dict[EntityUid, str] = {}
        self._entities_raw: EntitiesDocument | None = None
        self._entities_version = 0
        self._entities_meta: tuple[int, str] = (0, "")
        #: What was written since the state in force was built: document names and
        #: entity uids, or the whole entity set (a snapshot or a whole-set write).
        self._pending_documents: set[str] = set()
        self._pending_entities: set[EntityUid] = set()
        self._pending_all_entities = True
        self._all_entities_epoch = 0
        self._names: list[str] | None = None  # sorted document names, until one is added
        self._dirty = asyncio.Event()
        self._ended = False
        self._seen = asyncio.Condition()
        #: (policy version, entities version) of the last snapshot built, valid or not.
        self._last_attempt = (-1, -1)

    # ------------------------------------------------------------------ views

    @property
    def started(self) -> bool:
        """Whether the first build (of the source's initial snapshot) was attempted."""
        return self._last_attempt >= (0, 0)

    @property
    def policy_version(self) -> int:
        """The policy-set version of the desired state (what the source has)."""
        return self._policy_version

    @property
    def entities_version(self) -> int:
        return self._entities_version

    def documents(self) -> list[PolicyDocument]:
        """Every document of the desired state, by name (the source as this replica saw it
        last; a write this replica made is in it once :meth:`wait_attempted` returned)."""
        if self._names is None:
            self._names = sorted(self._policies)
        return [self._policies[name] for name in self._names]

    def desired(self) -> SourceSnapshot:
        """The desired state as one snapshot (O(everything): for tests and tools)."""
        return snapshot_from(self._policies, self._desired_entities(), self._policy_version)

    def _desired_entities(self) -> EntitiesDocument | None:
        if self._entities_raw is not None:
            return self._entities_raw
        if self._entities or self._entities_version:
            updated_at, updated_by = self._entities_meta
            return EntitiesDocument(
                join_entities(self._entities),
                self._entities_version,
                updated_at,
                updated_by,
                by_uid=dict(self._entities),  # a copy: the build runs in another thread
            )
        return None

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Apply every change the source reports until the source ends or we are cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._build_loop(), name="policy-build")
            try:
                async for event in self._source.watch():
                    self._track(event)
                    self._dirty.set()
            finally:
                # Let the builder finish the last change, then stop (cancellation skips it).
                self._ended = True
                self._dirty.set()

    async def wait_for(self, version: int, entities_version: int = 0) -> None:
        """Return once the engine has ``version`` (and ``entities_version``) or newer in force.

        Waits without limit: wrap it in ``asyncio.timeout()``.
        """

        def reached() -> bool:
            return (
                self._engine.version >= version
                and self._engine.entities_version >= entities_version
            )

        async with self._seen:
            await self._seen.wait_for(reached)

    async def wait_attempted(self, version: int = 0, entities_version: int = 0) -> None:
        """Return once a state at least this new was built (installed, or rejected).

        Waits without limit: wrap it in ``asyncio.timeout()``.
        """

        def reached() -> bool:
            policy, entities = self._last_attempt
            return policy >= version and entities >= entities_version

        async with self._seen:
            await self._seen.wait_for(reached)

    # ------------------------------------------------------------------ internals

    def _track(self, event: SourceEvent) -> None:
        if isinstance(event, SourceSnapshot):
            # Whatever the state in force holds is in the old desired state or pending.
            self._pending_documents.update(self._policies)
            self._policies = {d.name: d for d in event.policies}
            self._pending_documents.update(self._policies)
            self._names = None
            self._policy_version = event.policy_version
            self._replace_entities(event.entities)
        elif isinstance(event, PolicyPut):
            name = event.document.name
            if name not in self._policies:
                self._names = None
            self._policies[name] = event.document
            self._pending_documents.add(name)
            self._policy_version = max(self._policy_version, event.document.revision)
        elif isinstance(event, PolicyDeleted):
            if self._policies.pop(event.name, None) is not None:
                self._names = None
            self._pending_documents.add(event.name)
            self._policy_version = max(self._policy_version, event.revision)
        elif isinstance(event, EntitiesPut):
            self._replace_entities(event.document)
        elif isinstance(event, EntityPut | EntityDeleted):
            # A source that writes per entity starts from an empty set when its whole
            # document could not be split (InMemoryPolicySource does): so do we.
            if self._entities_raw is not None:
                self._entities_raw = None
                self._all_entities_changed()
            if isinstance(event, EntityPut):
                self._entities[event.uid] = event.text
            else:
                self._entities.pop(event.uid, None)
            self._pending_entities.add(event.uid)
            self._entities_version = max(self._entities_version, event.revision)

    def _all_entities_changed(self) -> None:
        self._pending_all_entities = True
        self._all_entities_epoch += 1

    def _replace_entities(self, document: EntitiesDocument | None) -> None:
        self._all_entities_changed()
        if document is None:
            self._entities, self._entities_raw = {}, None
            self._entities_version = 0
            return
        split = split_entities(document.text)
        if split is None:
            self._entities, self._entities_raw = {}, document
        else:
            self._entities, self._entities_raw = split, None
        self._entities_version = document.revision
        self._entities_meta = (document.updated_at_ms, document.updated_by)

    async def _build_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self._rebuild()
            if self._ended and not self._dirty.is_set():
                return

    async def _rebuild(self) -> None:
        attempt = (self._policy_version, self._entities_version)
        if attempt == self._last_attempt:
            return
        change, taken = self._change()
        try:
            if self._build_in_thread and not self._engine.is_quick(change):
                state = await asyncio.to_thread(self._engine.prepare_change, change)
            else:
                state = self._engine.prepare_change(change)
        except PolicyValidationError as exc:
            # What it was built from stays pending: the next build tries it again.
            self._engine.record_rejection(change, exc)
        else:
            moved_on = state.built_on != self._engine.state.serial
            if self._engine.install(state):
                self._settle(change, taken)
            elif moved_on:
                self._dirty.set()  # built on a state no longer in force: build again
                return
        async with self._seen:
            self._last_attempt = attempt
            self._seen.notify_all()

    def _change(self) -> tuple[StateChange, int]:
        """What may differ from the state in force, and the whole-entity-set epoch it
        covers. Copies what it takes: the build runs in another thread while events
        keep arriving."""
        documents = {name: self._policies.get(name) for name in self._pending_documents}
        whole = self._pending_all_entities or self._engine.state.entities.texts is None
        epoch = self._all_entities_epoch
        if whole:
            change = StateChange(
                self._policy_version,
                self._entities_version,
                documents,
                replace_entities=True,
                entities=self._desired_entities(),
            )
        else:
            entities = {uid: self._entities.get(uid) for uid in self._pending_entities}
            change = StateChange(self._policy_version, self._entities_version, documents, entities)
        return change, epoch

    def _settle(self, change: StateChange, epoch: int) -> None:
        """Forget pending writes the installed state holds (unless written again since)."""
        for name, document in change.documents.items():
            if self._policies.get(name) is document:
                self._pending_documents.discard(name)
        if change.replace_entities:
            if epoch == self._all_entities_epoch:
                self._pending_all_entities = False
                built = change.entities.by_uid if change.entities is not None else None
                self._settle_entities(built or {}, self._pending_entities.copy())
        else:
            self._settle_entities(change.entity_changes, set(change.entity_changes))

    def _settle_entities(
        self, built: Mapping[EntityUid, str | None], candidates: set[EntityUid]
    ) -> None:
        for uid in candidates:
            if self._entities.get(uid) == built.get(uid):
                self._pending_entities.discard(uid)
