"""Entities: the uids requests name, and the entity sets policies read attributes from.

The *base* entity set is one versioned JSON document (Cedar's entities JSON format) kept in
the policy source; a request may add entities of its own (e.g. the MCP gateway passes the
Tool being called). Entity types may be written with or without the ``Symbi::`` namespace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, NamedTuple

import cedarpy

from symbi_common.cedar import ENTITY_TYPES
from symbi_policy.errors import PolicyProblem, PolicyValidationError
from symbi_policy.persistent import PersistentMap
from symbi_policy.schema import qualify_type

__all__ = [
    "EntityCatalog",
    "EntityUid",
    "compile_entities",
    "empty_entities",
    "normalize_entities",
    "update_entities",
]

_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:@/+=-]*")
_KNOWN_TYPES = frozenset(qualify_type(t) for t in ENTITY_TYPES)


class EntityUid(NamedTuple):
    """A Cedar entity uid with a fully qualified type (``Symbi::Agent``, ``agent-7``).

    A named tuple: hashing and comparison run in C, which matters on the decision path.
    """

    type: str
    id: str

    def __str__(self) -> str:
        if _PLAIN_ID.fullmatch(self.id):  # the common case, without json's overhead
            return f'{self.type}::"{self.id}"'
        return f"{self.type}::{json.dumps(self.id)}"

    @classmethod
    def parse(cls, value: object, *, what: str = "entity") -> EntityUid:
        """From ``{"type": ..., "id": ...}`` or the Cedar form ``Agent::"a"``.

        Raises ValueError naming ``what`` and the accepted forms.
        """
        if isinstance(value, EntityUid):
            return value
        if isinstance(value, Mapping):
            type_, id_ = value.get("type"), value.get("id")
            if isinstance(type_, str) and type_ and isinstance(id_, str):
                return cls(qualify_type(type_), id_)
        elif isinstance(value, str):
            type_part, sep, id_part = value.rpartition("::")
            if sep and type_part and len(id_part) >= 2 and id_part[0] == id_part[-1] == '"':
                try:
                    id_ = json.loads(id_part)
                except ValueError:
                    id_ = None
                if isinstance(id_, str):
                    return cls(qualify_type(type_part), id_)
        raise ValueError(
            f"{what} must be {{'type': 'Agent', 'id': 'a'}} or 'Agent::\"a\"', got {value!r}"
        )

    def as_cedar(self) -> dict[str, str]:
        """The form cedarpy takes in requests and entity JSON."""
        return {"type": self.type, "id": self.id}

    @property
    def known_type(self) -> bool:
        """Whether the schema declares this entity type."""
        return self.type in _KNOWN_TYPES


def normalize_entities(raw: object, *, what: str = "entities") -> list[dict[str, Any]]:
    """Cedar entity JSON with every type qualified; raises ValueError on a malformed list."""
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise ValueError(f"{what} must be a JSON list of entities, got {type(raw).__name__}")
    result = []
    for index, entity in enumerate(raw):
        if not isinstance(entity, Mapping):
            raise ValueError(f"{what}[{index}] must be an object with uid, attrs, parents")
        uid = EntityUid.parse(entity.get("uid"), what=f"{what}[{index}].uid")
        parents_raw = entity.get("parents", [])
        if not isinstance(parents_raw, Sequence) or isinstance(parents_raw, str):
            raise ValueError(f"{what}[{index}].parents must be a list of entity uids")
        parents = [
            EntityUid.parse(p, what=f"{what}[{index}].parents[{i}]").as_cedar()
            for i, p in enumerate(parents_raw)
        ]
        attrs = entity.get("attrs", {})
        if not isinstance(attrs, Mapping):
            raise ValueError(f"{what}[{index}].attrs must be an object")
        result.append({"uid": uid.as_cedar(), "attrs": dict(attrs), "parents": parents})
    return result


@dataclass(frozen=True, slots=True)
class EntityCatalog:
    """A parsed, schema-checked entity set and the uids it holds, at one version."""

    handle: cedarpy.Entities
    uids: AbstractSet[EntityUid]
    version: int
    #: Each entity's JSON text as the source stored it, when the set was built per entity
    #: (lets the next build change this one instead of parsing everything again).
    texts: PersistentMap[EntityUid, str] | None = None

    def __contains__(self, uid: object) -> bool:
        return uid in self.uids


def compile_entities(
    text: str,
    schema: cedarpy.Schema,
    *,
    version: int,
    document: str = "entities",
    by_uid: Mapping[EntityUid, str] | None = None,
    previous: EntityCatalog | None = None,
    release_gil: bool = False,
) -> EntityCatalog:
    """Parse and check an entities JSON document; PolicyValidationError says which entity.

    With ``by_uid`` (the same entities, one JSON text per uid) and a ``previous`` catalog
    built the same way, a set that only *adds* entities to ``previous`` is built by adding
    them to its handle: O(added + base clone) instead of parsing every entity again (1 s
    at 10,000 entities). Any change or removal parses the whole set. ``release_gil``: let
    other threads run while Cedar parses (for builds in a worker thread).
    """
    if by_uid is not None and previous is not None and previous.texts is not None:
        grown = _grow(previous, by_uid, schema, version, document)
        if grown is not None:
            return grown
    try:
        raw = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as exc:
        raise PolicyValidationError(
            [PolicyProblem(document, exc.lineno, exc.colno, f"invalid JSON: {exc.msg}")]
        ) from None
    try:
        entities = normalize_entities(raw)
    except ValueError as exc:
        raise PolicyValidationError([PolicyProblem(document, 1, 1, str(exc))]) from None
    try:
        payload = json.dumps(entities)
        if release_gil:
            handle = cedarpy.Entities.from_json_str(payload, schema, release_gil=True)
        else:
            handle = cedarpy.Entities.from_json_str(payload, schema)
    except ValueError as exc:
        raise PolicyValidationError(
            _entity_problems(document, entities, schema, str(exc))
        ) from None
    uids = frozenset(EntityUid(e["uid"]["type"], e["uid"]["id"]) for e in entities)
    if by_uid is not None and len(by_uid) == len(uids) and all(u in by_uid for u in uids):
        texts: PersistentMap[EntityUid, str] = (
            by_uid if isinstance(by_uid, PersistentMap) else PersistentMap(by_uid)
        )
        return EntityCatalog(handle, texts.keys(), version, texts)
    return EntityCatalog(handle, uids, version, None)


def empty_entities(schema: cedarpy.Schema, version: int = 0) -> EntityCatalog:
    """No entities, kept per entity (so that the next build can add to it)."""
    texts: PersistentMap[EntityUid, str] = PersistentMap()
    return EntityCatalog(cedarpy.Entities.from_json_str("[]", schema), texts.keys(), version, texts)


def update_entities(
    previous: EntityCatalog,
    changes: Mapping[EntityUid, str | None],
    schema: cedarpy.Schema,
    *,
    version: int,
    document: str = "entities",
) -> EntityCatalog:
    """``previous`` (built per entity) with each uid's JSON text set, or removed for None.

    Only additions: the new entities are parsed and added to ``previous``'s handle (Cedar
    clones the base, it does not parse it again). A changed or removed entity parses the
    whole set (cedarpy cannot take entities out of a handle), in Cedar without the GIL.
    Raises PolicyValidationError naming the entities that are wrong.
    """
    texts = previous.texts
    if not changes:
        if version == previous.version:
            return previous
        return EntityCatalog(previous.handle, previous.uids, version, texts)
    if texts is None:
        raise ValueError("update_entities needs a catalog built per entity")
    additions: dict[EntityUid, str] = {}
    rewritten = False
    removals: list[EntityUid] = []
    for uid, text in changes.items():
        old = texts.get(uid)
        if text is None:
            if old is not None:
                removals.append(uid)
        elif old is None:
            additions[uid] = text
        elif old != text:
            additions[uid] = text
            rewritten = True
    if not additions and not removals:
        return EntityCatalog(previous.handle, previous.uids, version, texts)
    updated = texts.evolve(additions, removals)
    if not rewritten and not removals:
        grown = _add(previous, additions, updated, schema, version, document)
        if grown is not None:
            return grown
    joined = "[" + ",".join(updated[uid] for uid in sorted(updated)) + "]"
    return compile_entities(
        joined, schema, version=version, document=document, by_uid=updated, release_gil=True
    )


def _grow(
    previous: EntityCatalog,
    by_uid: Mapping[EntityUid, str],
    schema: cedarpy.Schema,
    version: int,
    document: str,
) -> EntityCatalog | None:
    """``previous`` plus the entities ``by_uid`` adds, or None when it is not only additions."""
    old = previous.texts
    assert old is not None
    if len(by_uid) < len(old):
        return None
    for uid, text in old.items():
        if by_uid.get(uid) != text:
            return None  # removed or changed
    added = {uid: by_uid[uid] for uid in by_uid if uid not in old}
    if not added:
        return EntityCatalog(previous.handle, previous.uids, version, old)
    return _add(previous, added, old.evolve(added), schema, version, document)


def _add(
    previous: EntityCatalog,
    added: Mapping[EntityUid, str],
    texts: PersistentMap[EntityUid, str],
    schema: cedarpy.Schema,
    version: int,
    document: str,
) -> EntityCatalog | None:
    """``previous`` plus ``added`` (new uids), or None when an added text is malformed
    (the caller parses the whole set, which names the problem)."""
    try:
        raw = [json.loads(added[uid]) for uid in added]
        entities = normalize_entities(raw)
    except ValueError:
        return None
    if any(
        EntityUid(e["uid"]["type"], e["uid"]["id"]) != uid
        for e, uid in zip(entities, added, strict=True)
    ):
        return None
    try:
        handle = previous.handle.with_added_json_str(json.dumps(entities), schema)
    except ValueError as exc:
        raise PolicyValidationError(
            _entity_problems(document, entities, schema, str(exc))
        ) from None
    return EntityCatalog(handle, texts.keys(), version, texts)


def _entity_problems(
    document: str, entities: list[dict[str, Any]], schema: cedarpy.Schema, whole: str
) -> list[PolicyProblem]:
    # Cedar names the first failure without saying where; check one entity at a time to
    # name each failing entity (only on this error path, so the cost does not matter).
    problems = []
    for index, entity in enumerate(entities):
        try:
            cedarpy.Entities.from_json_str(json.dumps([entity]), schema)
        except ValueError as exc:
            uid = EntityUid(entity["uid"]["type"], entity["uid"]["id"])
            problems.append(PolicyProblem(document, 1, 1, f"entities[{index}] ({uid}): {exc}"))
    return problems or [PolicyProblem(document, 1, 1, whole)]
