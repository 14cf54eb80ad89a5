"""Where policy documents and the base entity set live: the PolicySource port.

The service's adapter (:mod:`symbi_policy.kv_source`) keeps them in a JetStream KV bucket,
one key per document and one per entity; revisions are the bucket's sequence numbers, so
every replica that has applied the same changes reports the same versions.
:class:`InMemoryPolicySource` implements the port in process for tests, the CLI and
single-process use.

Versions: a document's ``revision`` is the source revision of its last write. The
*policy-set version* is the revision of the last policy put or delete; the *entities
version* is the revision of the last entity write (a whole-set put, or one entity's upsert
or delete). Both only grow.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from symbi_common.errors import Aborted, NotFound
from symbi_policy.entities import EntityUid

__all__ = [
    "ENTITIES_KEY",
    "EntitiesDocument",
    "EntitiesPut",
    "EntityDeleted",
    "EntityPut",
    "InMemoryPolicySource",
    "PolicyDeleted",
    "PolicyDocument",
    "PolicyPut",
    "PolicySource",
    "SourceEvent",
    "SourceSnapshot",
]

#: The name the base entity set is kept under, beside the policy documents.
ENTITIES_KEY = "_entities"


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """A named Cedar document as stored: text plus who wrote it, when, at what revision."""

    name: str
    text: str
    revision: int
    updated_at_ms: int = 0
    updated_by: str = ""
    #: ``cedar`` for hand-written policies, ``dsl:<agent id>`` for compiled DSL blocks.
    origin: str = "cedar"


@dataclass(frozen=True, slots=True)
class EntitiesDocument:
    """The base entity set (Cedar entities JSON) at one revision."""

    text: str
    revision: int
    updated_at_ms: int = 0
    updated_by: str = ""
    #: The same entities one JSON text per uid, when the holder has them that way (the
    #: reloader does): lets the engine build by adding to the previous set.
    by_uid: Mapping[EntityUid, str] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SourceSnapshot:
    """Everything in the source at one point: what an engine state is built from."""

    policies: tuple[PolicyDocument, ...]
    entities: EntitiesDocument | None
    #: Revision of the last policy put or delete (0: none yet).
    policy_version: int

    @property
    def entities_version(self) -> int:
        return self.entities.revision if self.entities is not None else 0


@dataclass(frozen=True, slots=True)
class PolicyPut:
    document: PolicyDocument


@dataclass(frozen=True, slots=True)
class PolicyDeleted:
    name: str
    revision: int


@dataclass(frozen=True, slots=True)
class EntitiesPut:
    """The whole base entity set was replaced."""

    document: EntitiesDocument


@dataclass(frozen=True, slots=True)
class EntityPut:
    """One entity was added or replaced; ``text`` is its Cedar entity JSON as stored."""

    uid: EntityUid
    text: str
    revision: int


@dataclass(frozen=True, slots=True)
class EntityDeleted:
    uid: EntityUid
    revision: int


#: What ``watch`` yields: a full snapshot first (and again whenever the watcher fell
#: behind and must resynchronise), then one event per change.
SourceEvent = SourceSnapshot | PolicyPut | PolicyDeleted | EntitiesPut | EntityPut | EntityDeleted


class PolicySource(Protocol):
    """Versioned storage of policy documents and the base entity set.

    Writes take ``expected_revision`` for compare-and-set: None writes unconditionally, 0
    requires that the document does not exist, N requires that its revision is N; a
    mismatch raises ``Aborted``. Reads of missing documents raise ``NotFound``. Every call
    that leaves the process has a deadline inside the adapter.
    """

    async def put_policy(
        self,
        name: str,
        text: str,
        *,
        expected_revision: int | None = None,
        updated_by: str = "",
        origin: str = "cedar",
    ) -> PolicyDocument: ...

    async def get_policy(self, name: str) -> PolicyDocument: ...

    async def list_policies(self) -> list[PolicyDocument]: ...

    async def delete_policy(self, name: str, *, expected_revision: int | None = None) -> int:
        """Delete ``name``; returns the revision of the deletion."""
        ...

    async def put_entities(
        self, text: str, *, expected_revision: int | None = None, updated_by: str = ""
    ) -> EntitiesDocument: ...

    async def get_entities(self) -> EntitiesDocument | None: ...

    async def upsert_entities(
        self, entities: Sequence[Mapping[str, Any]], *, updated_by: str = ""
    ) -> int:
        """Add or replace each entity (normalized Cedar JSON) by uid; returns the revision of
        the last write (the new entities version). Not atomic across entities."""
        ...

    async def delete_entities(self, uids: Sequence[EntityUid]) -> int:
        """Remove each entity (absent ones are skipped); returns the entities version after."""
        ...

    async def snapshot(self) -> SourceSnapshot: ...

    def watch(self) -> AsyncIterator[SourceEvent]:
        """Changes as they happen, starting with a snapshot; ends when the source closes."""
        ...


class InMemoryPolicySource:
    """The PolicySource port in process memory, with a bounded change log for watchers."""

    def __init__(self, *, log_size: int = 1024) -> None:
        self._policies: dict[str, PolicyDocument] = {}
        self._entities: EntitiesDocument | None = None
        self._entities_by_uid: dict[EntityUid, str] | None = None
        self._revision = 0
        self._policy_version = 0
        self._log: deque[tuple[int, SourceEvent]] = deque(maxlen=log_size)
        self._changed = asyncio.Condition()
        self._closed = False

    @property
    def revision(self) -> int:
        """The revision of the last write."""
        return self._revision

    async def put_policy(
        self,
        name: str,
        text: str,
        *,
        expected_revision: int | None = None,
        updated_by: str = "",
        origin: str = "cedar",
    ) -> PolicyDocument:
        self._check_revision(name, self._policies.get(name), expected_revision)
        self._revision += 1
        self._policy_version = self._revision
        document = PolicyDocument(name, text, self._revision, _now_ms(), updated_by, origin)
        self._policies[name] = document
        await self._append(PolicyPut(document))
        return document

    async def get_policy(self, name: str) -> PolicyDocument:
        document = self._policies.get(name)
        if document is None:
            raise NotFound(f"no policy document named {name!r}", reason="POLICY_NOT_FOUND")
        return document

    async def list_policies(self) -> list[PolicyDocument]:
        return sorted(self._policies.values(), key=lambda d: d.name)

    async def delete_policy(self, name: str, *, expected_revision: int | None = None) -> int:
        current = self._policies.get(name)
        if current is None:
            raise NotFound(f"no policy document named {name!r}", reason="POLICY_NOT_FOUND")
        self._check_revision(name, current, expected_revision)
        self._revision += 1
        self._policy_version = self._revision
        del self._policies[name]
        await self._append(PolicyDeleted(name, self._revision))
        return self._revision

    async def put_entities(
        self, text: str, *, expected_revision: int | None = None, updated_by: str = ""
    ) -> EntitiesDocument:
        self._check_revision(ENTITIES_KEY, self._entities, expected_revision)
        self._revision += 1
        document = EntitiesDocument(text, self._revision, _now_ms(), updated_by)
        self._entities = document
        self._entities_by_uid = None
        await self._append(EntitiesPut(document))
        return document

    async def get_entities(self) -> EntitiesDocument | None:
        return self._entities

    async def upsert_entities(
        self, entities: Sequence[Mapping[str, Any]], *, updated_by: str = ""
    ) -> int:
        by_uid = self._split_entities()
        for entity in entities:
            uid = EntityUid.parse(entity["uid"])
            text = json.dumps(entity, sort_keys=True, separators=(",", ":"))
            self._revision += 1
            by_uid[uid] = text
            self._set_entities(by_uid, updated_by)
            await self._append(EntityPut(uid, text, self._revision))
        return self._entities.revision if self._entities is not None else 0

    async def delete_entities(self, uids: Sequence[EntityUid]) -> int:
        by_uid = self._split_entities()
        for uid in uids:
            if by_uid.pop(uid, None) is None:
                continue
            self._revision += 1
            self._set_entities(by_uid, "")
            await self._append(EntityDeleted(uid, self._revision))
        return self._entities.revision if self._entities is not None else 0

    async def snapshot(self) -> SourceSnapshot:
        return self._snapshot()

    async def watch(self) -> AsyncIterator[SourceEvent]:
        seen = self._revision
        yield self._snapshot()
        while True:
            async with self._changed:
                await self._changed.wait_for(functools.partial(self._has_news, seen))
            if self._revision <= seen:  # closed with nothing new
                return
            oldest = self._log[0][0] if self._log else self._revision + 1
            if oldest > seen + 1:
                # The watcher fell behind the bounded log: resynchronise from a snapshot.
                seen = self._revision
                yield self._snapshot()
                continue
            for revision, event in list(self._log):
                if revision > seen:
                    seen = revision
                    yield event

    async def aclose(self) -> None:
        """End every watch; writes after this still work but nobody is told."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _split_entities(self) -> dict[EntityUid, str]:
        if self._entities_by_uid is None:
            text = self._entities.text if self._entities is not None else ""
            self._entities_by_uid = split_entities(text) or {}
        return self._entities_by_uid

    def _set_entities(self, by_uid: dict[EntityUid, str], updated_by: str) -> None:
        self._entities = EntitiesDocument(
            join_entities(by_uid), self._revision, _now_ms(), updated_by
        )

    def _has_news(self, seen: int) -> bool:
        return self._closed or self._revision > seen

    def _snapshot(self) -> SourceSnapshot:
        policies = tuple(sorted(self._policies.values(), key=lambda d: d.name))
        return SourceSnapshot(policies, self._entities, self._policy_version)

    async def _append(self, event: SourceEvent) -> None:
        async with self._changed:
            self._log.append((self._revision, event))
            self._changed.notify_all()

    @staticmethod
    def _check_revision(
        name: str, current: PolicyDocument | EntitiesDocument | None, expected: int | None
    ) -> None:
        if expected is None:
            return
        actual = current.revision if current is not None else 0
        if actual != expected:
            raise Aborted(
                f"{name!r} is at revision {actual}, not the expected {expected}: re-read and retry",
                reason="REVISION_MISMATCH",
                details={"name": name, "expected": str(expected), "actual": str(actual)},
            )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def split_entities(text: str) -> dict[EntityUid, str] | None:
    """An entities JSON document as one canonical JSON text per uid; None when ``text`` is
    not a list of objects with valid uids (it cannot be split; the caller keeps it whole)."""
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        return None
    if not isinstance(raw, list):
        return None
    result: dict[EntityUid, str] = {}
    for entity in raw:
        if not isinstance(entity, dict):
            return None
        try:
            uid = EntityUid.parse(entity.get("uid"))
        except ValueError:
            return None
        result[uid] = json.dumps(entity, sort_keys=True, separators=(",", ":"))
    return result


def join_entities(by_uid: Mapping[EntityUid, str]) -> str:
    """The inverse of :func:`split_entities`: one JSON list, in uid order."""
    return "[" + ",".join(by_uid[uid] for uid in sorted(by_uid)) + "]"


def snapshot_from(
    policies: Mapping[str, PolicyDocument], entities: EntitiesDocument | None, policy_version: int
) -> SourceSnapshot:
    """A snapshot from a mutable view (used by the reloader to track the desired state)."""
    return SourceSnapshot(
        tuple(policies[name] for name in sorted(policies)), entities, policy_version
    )
