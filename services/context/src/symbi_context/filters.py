"""Payload filters: one small expression language shared by every vector-store backend.

Callers build filters from these frozen types, or parse them from JSON-like data with
:func:`parse_filter` (the shape the gRPC and bus edges receive). Backends translate the same
tree into their own filter objects, so a filter means the same thing on the embedded engine
and on a Qdrant server. Field names are checked against the collection's declared payload
fields by the store (:func:`check_filter_fields`): an unknown field is an error rather than
a query that silently matches nothing.

JSON shape (a subset of Qdrant's)::

    {"must": [C, ...], "should": [C, ...], "must_not": [C, ...]}
    C = {"key": "tags", "match": "x"}            equality (string or integer)
      | {"key": "tags", "any": ["x", "y"]}       any of
      | {"key": "created_at", "range": {"gte": 1.0, "lt": 2.0}}
      | {"has_id": ["<uuid>", ...]}
      | a nested filter {"must": ..., ...}
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from symbi_common.errors import InvalidArgument

__all__ = [
    "Condition",
    "Filter",
    "HasId",
    "Match",
    "MatchAny",
    "Range",
    "all_of",
    "check_filter_fields",
    "parse_filter",
]

MatchValue: TypeAlias = str | int

_MAX_CONDITIONS = 64
_MAX_DEPTH = 4
_MAX_ANY = 256


@dataclass(frozen=True, slots=True)
class Match:
    """The payload field equals ``value`` (for list fields: contains it)."""

    key: str
    value: MatchValue


@dataclass(frozen=True, slots=True)
class MatchAny:
    """The payload field equals one of ``values`` (for list fields: shares one)."""

    key: str
    values: tuple[str, ...] | tuple[int, ...]

    def as_list(self) -> list[str] | list[int]:
        """The values as a list of one element type (what backends take)."""
        if all(isinstance(v, str) for v in self.values):
            return [str(v) for v in self.values]
        return [int(v) for v in self.values]


@dataclass(frozen=True, slots=True)
class Range:
    """A numeric payload field lies in the given bounds (unset bounds are open)."""

    key: str
    gte: float | None = None
    gt: float | None = None
    lte: float | None = None
    lt: float | None = None


@dataclass(frozen=True, slots=True)
class HasId:
    """The point's id is one of ``ids``."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Filter:
    """All of ``must``, at least one of ``should`` (when any), none of ``must_not``."""

    must: tuple[Condition, ...] = ()
    should: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()

    def is_empty(self) -> bool:
        """True when the filter has no condition at all."""
        return not (self.must or self.should or self.must_not)


Condition: TypeAlias = Match | MatchAny | Range | HasId | Filter


def all_of(*parts: Filter | Condition | None) -> Filter:
    """Combine filters and conditions into one filter that requires every part."""
    must: list[Condition] = []
    for part in parts:
        if part is None:
            continue
        if isinstance(part, Filter):
            if part.is_empty():
                continue
            if not part.should and not part.must_not:
                must.extend(part.must)
                continue
        must.append(part)
    return Filter(must=tuple(must))


def _walk(condition: Condition) -> Iterator[Match | MatchAny | Range | HasId]:
    if isinstance(condition, Filter):
        for part in (*condition.must, *condition.should, *condition.must_not):
            yield from _walk(part)
    else:
        yield condition


def check_filter_fields(
    flt: Filter, *, collection: str, fields: Mapping[str, str], numeric: frozenset[str]
) -> None:
    """Reject conditions on fields the collection does not declare, or of the wrong kind.

    ``fields`` maps declared field names to their kind; ``numeric`` names the kinds that
    take ranges.
    """
    for cond in _walk(flt):
        if isinstance(cond, HasId):
            continue
        kind = fields.get(cond.key)
        if kind is None:
            raise InvalidArgument(
                f"filter names unknown field {cond.key!r} of collection {collection!r}; "
                f"filterable fields: {', '.join(sorted(fields))}",
                reason="UNKNOWN_FILTER_FIELD",
                details={"field": cond.key, "collection": collection},
            )
        if isinstance(cond, Range) and kind not in numeric:
            raise InvalidArgument(
                f"filter uses a range on field {cond.key!r}, which is a {kind} field; "
                "ranges apply to numeric fields only",
                reason="MALFORMED_FILTER",
                details={"field": cond.key},
            )
        if isinstance(cond, Match | MatchAny) and kind in numeric and kind != "integer":
            raise InvalidArgument(
                f"filter matches exact values on field {cond.key!r}, which is a {kind} "
                "field; use a range",
                reason="MALFORMED_FILTER",
                details={"field": cond.key},
            )


# ---------------------------------------------------------------- parsing


def _bad(message: str, path: str) -> InvalidArgument:
    return InvalidArgument(
        f"malformed filter at {path}: {message}",
        reason="MALFORMED_FILTER",
        details={"path": path},
    )


def parse_filter(data: Any) -> Filter:
    """Parse the JSON shape described in this module's docstring into a :class:`Filter`.

    Raises :class:`InvalidArgument` naming the offending path for any other shape.
    """
    counter = [0]
    return _parse_filter(data, "$", 0, counter)


def _parse_filter(data: Any, path: str, depth: int, counter: list[int]) -> Filter:
    if not isinstance(data, Mapping):
        raise _bad(f"expected an object, got {type(data).__name__}", path)
    if depth > _MAX_DEPTH:
        raise _bad(f"filters nest at most {_MAX_DEPTH} levels", path)
    unknown = set(data) - {"must", "should", "must_not"}
    if unknown:
        raise _bad(f"unknown key(s) {sorted(unknown)}; allowed: must, should, must_not", path)
    parts: dict[str, tuple[Condition, ...]] = {}
    for clause in ("must", "should", "must_not"):
        items = data.get(clause, [])
        if not isinstance(items, Sequence) or isinstance(items, str | bytes):
            raise _bad("expected a list of conditions", f"{path}.{clause}")
        parts[clause] = tuple(
            _parse_condition(item, f"{path}.{clause}[{i}]", depth, counter)
            for i, item in enumerate(items)
        )
    return Filter(must=parts["must"], should=parts["should"], must_not=parts["must_not"])


def _parse_condition(data: Any, path: str, depth: int, counter: list[int]) -> Condition:
    counter[0] += 1
    if counter[0] > _MAX_CONDITIONS:
        raise _bad(f"a filter holds at most {_MAX_CONDITIONS} conditions", path)
    if not isinstance(data, Mapping):
        raise _bad(f"expected an object, got {type(data).__name__}", path)
    if "has_id" in data:
        if set(data) != {"has_id"}:
            raise _bad("has_id stands alone in its condition", path)
        ids = data["has_id"]
        if not isinstance(ids, Sequence) or isinstance(ids, str) or not ids:
            raise _bad("has_id takes a non-empty list of ids", path)
        if not all(isinstance(i, str) and i for i in ids) or len(ids) > _MAX_ANY:
            raise _bad(f"has_id takes at most {_MAX_ANY} non-empty string ids", path)
        return HasId(tuple(ids))
    if "key" not in data:
        return _parse_filter(data, path, depth + 1, counter)
    key = data["key"]
    if not isinstance(key, str) or not key:
        raise _bad("key must be a non-empty string", path)
    ops = set(data) - {"key"}
    if len(ops) != 1 or not ops <= {"match", "any", "range"}:
        raise _bad("a field condition has exactly one of: match, any, range", path)
    (op,) = ops
    value = data[op]
    if op == "match":
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise _bad("match takes a string or an integer", path)
        return Match(key, value)
    if op == "any":
        return MatchAny(key, _parse_any(value, path))
    return _parse_range(key, value, path)


def _parse_any(value: Any, path: str) -> tuple[str, ...] | tuple[int, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise _bad("any takes a non-empty list", path)
    if len(value) > _MAX_ANY:
        raise _bad(f"any takes at most {_MAX_ANY} values", path)
    if all(isinstance(v, str) for v in value):
        return tuple(str(v) for v in value)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(int(v) for v in value)
    raise _bad("any takes a list of strings or a list of integers", path)


def _parse_range(key: str, value: Any, path: str) -> Range:
    if not isinstance(value, Mapping) or not value:
        raise _bad("range takes an object with gte, gt, lte or lt", path)
    unknown = set(value) - {"gte", "gt", "lte", "lt"}
    if unknown:
        raise _bad(f"unknown range bound(s) {sorted(unknown)}; allowed: gte, gt, lte, lt", path)
    bounds: dict[str, float] = {}
    for name, bound in value.items():
        if (
            isinstance(bound, bool)
            or not isinstance(bound, int | float)
            or not math.isfinite(bound)
        ):
            raise _bad(f"range bound {name} must be a finite number", path)
        bounds[name] = float(bound)
    return Range(key, **bounds)
