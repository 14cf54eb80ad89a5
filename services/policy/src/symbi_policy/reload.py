"""Hot reload: keep an engine in step with its policy source.

The reloader follows ``PolicySource.watch()``, keeps the desired state (every document and
the entity set as the source has them), and after each change builds a new engine state off
to the side (in a worker thread, so decisions keep flowing) and installs it with one swap.
A state that fails validation is recorded as rejected and the state in force stays; the
next change builds again from the desired state, so fixing the bad document recovers.
"""

from __future__ import annotations

import asyncio
import logging

from symbi_policy.engine import PolicyEngine
from symbi_policy.errors import PolicyValidationError
from symbi_policy.source import (
    EntitiesDocument,
    EntitiesPut,
    PolicyDeleted,
    PolicyDocument,
    PolicyPut,
    PolicySource,
    SourceEvent,
    SourceSnapshot,
    snapshot_from,
)

__all__ = ["PolicyReloader"]

logger = logging.getLogger(__name__)


class PolicyReloader:
    """Follows a source and installs each valid change into an engine.

    ``run()`` is the long-lived loop (owned by the service's TaskGroup; cancel it to stop).
    """

    def __init__(
        self, source: PolicySource, engine: PolicyEngine, *, build_in_thread: bool = True
    ) -> None:
        self._source = source
        self._engine = engine
        self._build_in_thread = build_in_thread
        self._policies: dict[str, PolicyDocument] = {}
        self._entities: EntitiesDocument | None = None
        self._policy_version = 0
        self._seen = asyncio.Condition()
        #: (policy version, entities version) of the last snapshot built, valid or not.
        self._last_attempt = (-1, -1)

    async def run(self) -> None:
        """Apply every change the source reports until the source ends or we are cancelled."""
        async for event in self._source.watch():
            self._track(event)
            await self._rebuild()

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

    def _track(self, event: SourceEvent) -> None:
        if isinstance(event, SourceSnapshot):
            self._policies = {d.name: d for d in event.policies}
            self._entities = event.entities
            self._policy_version = event.policy_version
        elif isinstance(event, PolicyPut):
            self._policies[event.document.name] = event.document
            self._policy_version = max(self._policy_version, event.document.revision)
        elif isinstance(event, PolicyDeleted):
            self._policies.pop(event.name, None)
            self._policy_version = max(self._policy_version, event.revision)
        elif isinstance(event, EntitiesPut):
            self._entities = event.document

    async def _rebuild(self) -> None:
        snapshot = snapshot_from(self._policies, self._entities, self._policy_version)
        attempt = (snapshot.policy_version, snapshot.entities_version)
        if attempt == self._last_attempt:
            return
        self._last_attempt = attempt
        try:
            if self._build_in_thread:
                state = await asyncio.to_thread(self._engine.prepare, snapshot)
            else:
                state = self._engine.prepare(snapshot)
        except PolicyValidationError as exc:
            self._engine.record_rejection(snapshot, exc)
            return
        self._engine.install(state)
        async with self._seen:
            self._seen.notify_all()
