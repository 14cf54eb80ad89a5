"""Authorization requests: who (principal) wants to do what (action) to what (resource)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from symbi_common.cedar import ACTIONS, NAMESPACE
from symbi_common.errors import InvalidArgument
from symbi_policy.entities import EntityUid, normalize_entities

__all__ = ["AuthzRequest", "parse_action"]

_SCALARS = (str, int, bool, float)


def _context_key(context: Mapping[str, Any]) -> object:
    if not context:
        return ()
    items = context.items()
    if all(type(v) in _SCALARS for _, v in items):
        # Flat contexts (the usual case) key as a sorted tuple: no JSON encoding needed.
        # The type is part of the key because 1 == True in Python but not in Cedar.
        return tuple(sorted((k, type(v), v) for k, v in items))
    return json.dumps(context, sort_keys=True, separators=(",", ":"))


_ACTION_TYPE = f"{NAMESPACE}::Action"


def parse_action(value: str) -> str:
    """``publish``, ``Action::"publish"`` or ``Symbi::Action::"publish"`` → ``publish``.

    The action is not checked against the schema here: an unknown action is a Deny with a
    reason (made by the engine), not a malformed request.
    """
    if "::" not in value:
        return value
    uid = EntityUid.parse(value, what="action")
    if uid.type != _ACTION_TYPE:
        raise InvalidArgument(
            f"action must be an action id such as 'publish' or 'Action::\"publish\"', got {value!r}"
        )
    return uid.id


@dataclass(frozen=True, slots=True)
class AuthzRequest:
    """One question for the engine.

    ``context`` must be JSON-like (str, int, bool, lists, dicts) and fit the schema's
    ``RequestContext``; ``entities`` (optional) add to the base entity set for this request
    only, in Cedar's entity JSON form. Neither is copied: do not mutate them after building
    the request.
    """

    principal: EntityUid
    action: str
    resource: EntityUid
    context: Mapping[str, Any] = field(default_factory=dict)
    entities: Sequence[Mapping[str, Any]] = ()

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> AuthzRequest:
        """From the JSON form ``{"principal", "action", "resource", "context"?, "entities"?}``.

        Raises InvalidArgument naming the field that is wrong.
        """
        if not isinstance(raw, Mapping):
            raise InvalidArgument(f"a request must be a JSON object, got {type(raw).__name__}")
        unknown = set(raw) - {"principal", "action", "resource", "context", "entities"}
        if unknown:
            raise InvalidArgument(
                f"unknown request field(s) {sorted(unknown)}; allowed: principal, action, "
                "resource, context, entities"
            )
        try:
            principal = EntityUid.parse(raw.get("principal"), what="principal")
            resource = EntityUid.parse(raw.get("resource"), what="resource")
            action_raw = raw.get("action")
            if not isinstance(action_raw, str) or not action_raw:
                raise ValueError(f"action must be a non-empty string, got {action_raw!r}")
            raw_entities = raw.get("entities")
            entities = normalize_entities(
                [] if raw_entities is None else raw_entities, what="entities"
            )
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        context = raw.get("context")
        if context is None:
            context = {}
        if not isinstance(context, Mapping):
            raise InvalidArgument(f"context must be a JSON object, got {type(context).__name__}")
        return cls(principal, parse_action(action_raw), resource, dict(context), tuple(entities))

    def cache_key(self) -> tuple[object, ...]:
        """A hashable identity of the request (context and entities as canonical JSON)."""
        return (
            self.principal,
            self.action,
            self.resource,
            _context_key(self.context),
            self.entities_key(),
        )

    def entities_key(self) -> str:
        """The request's own entities as canonical JSON ("" when it has none)."""
        if not self.entities:
            return ""
        return json.dumps(list(self.entities), sort_keys=True, separators=(",", ":"))

    @property
    def known_action(self) -> bool:
        """Whether the schema declares this action."""
        return self.action in ACTIONS

    def describe(self) -> str:
        """``Symbi::Agent::"a" → publish → Symbi::Topic::"t"``, for reasons and logs."""
        return f"{self.principal} → {self.action} → {self.resource}"
