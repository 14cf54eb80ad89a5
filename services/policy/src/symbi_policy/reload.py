"""Hot reload: keep an engine in step with its policy source.

The reloader follows ``PolicySource.watch()`` and keeps the desired state (every document
and every entity as the source has them). A builder builds a new engine state from the
desired state off to the side (in a worker thread, so decisions keep flowing) and installs
it with one swap. Changes that arrive while a build runs are coalesced into the next build,
so a burst of writes (10,000 agents registering) costs a few builds, not one per write.
A state that fails validation is recorded as rejected and the state in force stays; the
next change builds again from the desired state, so fixing the bad document recovers.
"""

from __future__ import annotations

import asyncio
import logging

from symbi_policy.engine import PolicyEngine
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
        return [self._policies[name] for name in sorted(self._policies)]

    def desired(self) -> SourceSnapshot:
        """The desired state as one snapshot."""
        if self._entities_raw is not None:
            entities: EntitiesDocument | None = self._entities_raw
        elif self._entities or self._entities_version:
            updated_at, updated_by = self._entities_meta
            entities = EntitiesDocument(
                join_entities(self._entities),
                self._entities_version,
                updated_at,
                updated_by,
                by_uid=dict(self._entities),  # a copy: the build runs in another thread
            )
        else:
            entities = None
        return snapshot_from(self._policies, entities, self._policy_version)

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
            self._policies = {d.name: d for d in event.policies}
            self._policy_version = event.policy_version
            self._replace_entities(event.entities)
        elif isinstance(event, PolicyPut):
            self._policies[event.document.name] = event.document
            self._policy_version = max(self._policy_version, event.document.revision)
        elif isinstance(event, PolicyDeleted):
            self._policies.pop(event.name, None)
            self._policy_version = max(self._policy_version, event.revision)
        elif isinstance(event, EntitiesPut):
            self._replace_entities(event.document)
        elif isinstance(event, EntityPut | EntityDeleted):
            # A source that writes per entity starts from an empty set when its whole
            # document could not be split (InMemoryPolicySource does): so do we.
            self._entities_raw = None
            if isinstance(event, EntityPut):
                self._entities[event.uid] = event.text
            else:
                self._entities.pop(event.uid, None)
            self._entities_version = max(self._entities_version, event.revision)

    def _replace_entities(self, document: EntitiesDocument | None) -> None:
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
        snapshot = self.desired()
        attempt = (snapshot.policy_version, snapshot.entities_version)
        if attempt == self._last_attempt:
            return
        try:
            if self._build_in_thread:
                state = await asyncio.to_thread(self._engine.prepare, snapshot)
            else:
                state = self._engine.prepare(snapshot)
        except PolicyValidationError as exc:
            self._engine.record_rejection(snapshot, exc)
        else:
            self._engine.install(state)
        async with self._seen:
            self._last_attempt = attempt
            self._seen.notify_all()
