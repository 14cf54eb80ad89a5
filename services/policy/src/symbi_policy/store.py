"""Validated writes to the policy source: what PutPolicy, GetPolicy, ListPolicies,
DeletePolicy and Validate call.

Nothing reaches the source without passing the same checks the engine applies when it
builds a set (parse, schema, annotations, ids unique across documents), so a bad write is
refused with positions up front instead of being rejected later by every replica.
"""

from __future__ import annotations

from symbi_policy.compiler import CompiledDocument, PolicyCompiler
from symbi_policy.entities import compile_entities
from symbi_policy.errors import PolicyProblem, PolicyValidationError
from symbi_policy.source import EntitiesDocument, PolicyDocument, PolicySource

__all__ = ["PolicyStore"]


class PolicyStore:
    """Policy documents and the entity set, validated on the way in."""

    def __init__(self, source: PolicySource, compiler: PolicyCompiler | None = None) -> None:
        self._source = source
        self._compiler = compiler or PolicyCompiler()

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

    async def _check_unique_ids(self, compiled: CompiledDocument) -> None:
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
