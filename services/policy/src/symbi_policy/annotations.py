"""The annotation vocabulary Symbi reads from Cedar policies.

=====================  ==================  ================================================
annotation             on                  meaning
=====================  ==================  ================================================
``@id("name")``        permit, forbid      the policy's stable id, unique across the whole
                                           set; shown in decisions and audit events.
                                           Without it the id is ``<document>#<index>``.
``@reason("text")``    forbid (permit:     the deny reason a caller sees when this forbid
                       ignored)            determines a Deny.
``@condition("c,…")``  permit only         conditions the caller must enforce when this
                                           permit is satisfied; a comma-separated list of:
                                           ``audit_full`` (audit this allow in full even if
                                           allows are not audited), ``require_approval``
                                           (a human approves first), ``rate_limit:N/U``
                                           (at most N per U, U one of s m h d).
``@description("…")``  any                 free text for people; the engine ignores it.
=====================  ==================  ================================================

Any other annotation is allowed and ignored (the DSL compiler may tag its output). An
unknown condition is an error, not a no-op: a misspelt ``require_aproval`` silently dropped
would turn a guarded action into an unguarded one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "CONDITION_NAMES",
    "ID_PATTERN",
    "Condition",
    "RateLimit",
    "parse_conditions",
    "validate_policy_id",
]

#: Conditions a ``@condition`` annotation may name.
CONDITION_NAMES: frozenset[str] = frozenset({"audit_full", "require_approval", "rate_limit"})

#: What an ``@id`` may look like: no `#`, which is reserved for generated ids.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}")

_RATE = re.compile(r"([1-9][0-9]{0,8})/([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``rate_limit:N/U`` parsed: at most ``count`` per ``period_seconds``."""

    count: int
    period_seconds: int


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition of an AllowWithConditions decision; ``str()`` gives the annotation form."""

    name: str
    argument: str | None = None

    def __str__(self) -> str:
        return self.name if self.argument is None else f"{self.name}:{self.argument}"

    @property
    def rate_limit(self) -> RateLimit | None:
        """The parsed limit when this is a ``rate_limit`` condition, else None."""
        if self.name != "rate_limit" or self.argument is None:
            return None
        match = _RATE.fullmatch(self.argument)
        if match is None:  # parse_conditions only builds valid ones
            return None
        return RateLimit(int(match.group(1)), _UNIT_SECONDS[match.group(2)])


def parse_conditions(value: str) -> tuple[tuple[Condition, ...], str | None]:
    """Conditions in an ``@condition`` value, or an error message naming what is wrong."""
    conditions: list[Condition] = []
    for raw in value.split(","):
        term = raw.strip()
        if not term:
            return (), f"empty condition in @condition({value!r})"
        name, sep, argument = term.partition(":")
        if name not in CONDITION_NAMES:
            allowed = ", ".join(sorted(CONDITION_NAMES))
            return (), f"unknown condition {name!r} in @condition; allowed: {allowed}"
        if name == "rate_limit":
            if not sep or _RATE.fullmatch(argument) is None:
                return (), (
                    f"bad rate limit {term!r}: write rate_limit:N/U with N a positive integer "
                    "and U one of s, m, h, d (e.g. rate_limit:10/m)"
                )
            condition = Condition(name, argument)
        elif sep:
            return (), f"condition {name!r} takes no argument, got {term!r}"
        else:
            condition = Condition(name)
        if condition not in conditions:
            conditions.append(condition)
    return tuple(conditions), None


def validate_policy_id(value: str) -> str | None:
    """An error message if ``value`` is not a valid ``@id``, else None."""
    if ID_PATTERN.fullmatch(value) is None:
        return (
            f"invalid @id {value!r}: use 1-128 characters from letters, digits and _ . : / -, "
            "starting with a letter or digit"
        )
    return None
