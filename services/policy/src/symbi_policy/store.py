"""Validated writes to the policy source: what PutPolicy, GetPolicy, ListPolicies,
DeletePolicy and Validate call.

Nothing reaches the source without passing the same checks the engine applies when it
builds a set (parse, schema, annotations, ids unique across documents), so a bad write is
refused with positions up front instead of being rejected later by every replica.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from symbi_common.errors import InvalidArgument
from symbi_policy.compiler import CompiledDocument, PolicyCompiler
from symbi_policy.entities import EntityUid, compile_entities, normalize_entities
from symbi_policy.errors import PolicyProblem, PolicyValidationError
from symbi_policy.source import EntitiesDocument, PolicyDocument, PolicySource

#: Where a policy id is in use: the document that holds it, or None.
IdOwner = Callable[[str], str | None]

__all__ = ["PolicyStore"]


class PolicyStore:
    """Policy documents and the entity set, validated on the way in."""

    def __init__(
        self,
        source: PolicySource,
        compiler: PolicyCompiler | None = None,
        *,
        id_owner: IdOwner | None = None,
    ) -> None:
        """``id_owner`` answers "which document holds this @id" from an in-memory view (the
        service passes the policy set in force); without it every put lists and compiles
        every stored document, which is O(documents) per write."""
        self._source = source
        self._compiler = compiler or PolicyCompiler()
        self._id_owner = id_owner

    @property
    def source(self) -> PolicySource:
        return self._source

    def validate(self, text: str, *, name: str = "input") -> CompiledDocument:
        """Check ``text`` without storing it; PolicyValidationError lists the problems."""
        return self._compiler.compile(name, text)

    async def put(
        self,
        name: str,
        text: str,
        *,
        expected_revision: int | None = None,
        updated_by: str = "",
        origin: str = "cedar",
    ) -> PolicyDocument:
        """Validate and store document ``name``; returns it with its new revision.

        Raises PolicyValidationError (bad text, or an ``@id`` another document uses) or
        Aborted (``expected_revision`` does not match).
        """
        compiled = self._compiler.compile(name, text)
        await self._check_unique_ids(compiled)
        return await self._source.put_policy(
            name, text, expected_revision=expected_revision, updated_by=updated_by, origin=origin
        )

    async def get(self, name: str) -> PolicyDocument:
        """Document ``name``; NotFound if there is none."""
        return await self._source.get_policy(name)

    async def list(self) -> list[PolicyDocument]:
        """Every document, by name."""
        return await self._source.list_policies()

    async def delete(self, name: str, *, expected_revision: int | None = None) -> int:
        """Delete document ``name``; returns the revision (the new policy-set version)."""
        return await self._source.delete_policy(name, expected_revision=expected_revision)

    async def put_entities(
        self, text: str, *, expected_revision: int | None = None, updated_by: str = ""
    ) -> EntitiesDocument:
        """Validate (JSON, schema) and store the base entity set."""
        compile_entities(text, self._compiler.schema, version=0)
        return await self._source.put_entities(
            text, expected_revision=expected_revision, updated_by=updated_by
        )

    async def get_entities(self) -> EntitiesDocument | None:
        return await self._source.get_entities()

    async def upsert_entities(
        self, entities: Sequence[Mapping[str, Any]], *, updated_by: str = ""
    ) -> int:
        """Validate (shape, schema) and add or replace each entity; returns the new entities
        version. InvalidArgument names the first entity that is wrong."""
        try:
            normalized = normalize_entities(entities)
        except ValueError as exc:
            raise InvalidArgument(str(exc), reason="ENTITY_INVALID") from None
        seen: set[EntityUid] = set()
        for index, entity in enumerate(normalized):
            uid = EntityUid(entity["uid"]["type"], entity["uid"]["id"])
            if not uid.id:
                raise InvalidArgument(
                    f"entities[{index}]: the entity id of {uid.type} must not be empty",
                    reason="ENTITY_INVALID",
                )
            if uid in seen:
                raise InvalidArgument(
                    f"entities[{index}]: {uid} appears twice in one request",
                    reason="ENTITY_INVALID",
                )
            seen.add(uid)
        compile_entities(json.dumps(normalized), self._compiler.schema, version=0)
        return await self._source.upsert_entities(normalized, updated_by=updated_by)

    async def delete_entities(self, uids: Sequence[EntityUid]) -> int:
        """Remove these entities (absent ones are skipped); returns the entities version."""
        return await self._source.delete_entities(uids)

    async def _check_unique_ids(self, compiled: CompiledDocument) -> None:
        if self._id_owner is not None:
            self._check_ids_against(compiled, self._id_owner)
            return
        mine = {p.id: p for p in compiled.policies}
        problems = []
        for other in await self._source.list_policies():
            if other.name == compiled.name:
                continue
            try:
                other_compiled = self._compiler.compile(other.name, other.text)
            except PolicyValidationError:
                continue  # a stored document that no longer compiles claims no ids
            for policy in other_compiled.policies:
                clash = mine.get(policy.id)
                if clash is not None:
                    problems.append(
                        PolicyProblem(
                            compiled.name,
                            clash.line,
                            clash.column,
                            f"policy id {clash.id!r} is already used in document "
                            f"{other.name!r}: @id must be unique across the policy set",
                            clash.id,
                        )
                    )
        if problems:
            raise PolicyValidationError(problems)

    @staticmethod
    def _check_ids_against(compiled: CompiledDocument, owner_of: IdOwner) -> None:
        problems = []
        for policy in compiled.policies:
            owner = owner_of(policy.id)
            if owner is not None and owner != compiled.name:
                problems.append(
                    PolicyProblem(
                        compiled.name,
                        policy.line,
                        policy.column,
                        f"policy id {policy.id!r} is already used in document {owner!r}: "
                        "@id must be unique across the policy set",
                        policy.id,
                    )
                )
        if problems:
            raise PolicyValidationError(problems)
