"""Entities: the uids requests name, and the entity sets policies read attributes from.

The *base* entity set is one versioned JSON document (Cedar's entities JSON format) kept in
the policy source; a request may add entities of its own (e.g. the MCP gateway passes the
Tool being called). Entity types may be written with or without the ``Symbi::`` namespace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import cedarpy

from symbi_common.cedar import ENTITY_TYPES
from symbi_policy.errors import PolicyProblem, PolicyValidationError
from symbi_policy.schema import qualify_type

__all__ = ["EntityCatalog", "EntityUid", "compile_entities", "normalize_entities"]

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
    uids: frozenset[EntityUid]
    version: int
    #: Each entity's JSON text as the source stored it, when the set was built per entity
    #: (lets the next build add to this one instead of parsing everything again).
    texts: Mapping[EntityUid, str] | None = None

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
) -> EntityCatalog:
    """Parse and check an entities JSON document; PolicyValidationError says which entity.

    With ``by_uid`` (the same entities, one JSON text per uid) and a ``previous`` catalog
    built the same way, a set that only *adds* entities to ``previous`` is built by adding
    them to its handle: O(added + base clone) instead of parsing every entity again (1 s
    at 10,000 entities). Any change or removal parses the whole set.
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
        handle = cedarpy.Entities.from_json_str(json.dumps(entities), schema)
    except ValueError as exc:
        raise PolicyValidationError(
            _entity_problems(document, entities, schema, str(exc))
        ) from None
    uids = frozenset(EntityUid(e["uid"]["type"], e["uid"]["id"]) for e in entities)
    texts = dict(by_uid) if by_uid is not None and frozenset(by_uid) == uids else None
    return EntityCatalog(handle, uids, version, texts)


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
    added = [uid for uid in by_uid if uid not in old]
    if not added:
        return EntityCatalog(previous.handle, previous.uids, version, old)
    try:
        raw = [json.loads(by_uid[uid]) for uid in added]
        entities = normalize_entities(raw)
    except ValueError:
        return None  # let the full parse name the problem
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
    return EntityCatalog(handle, previous.uids | frozenset(added), version, dict(by_uid))


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
