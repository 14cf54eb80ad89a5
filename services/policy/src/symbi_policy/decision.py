"""Decisions: Allow, Deny (with reasons), AllowWithConditions (with conditions).

Every decision carries the ids of the policies that determined it and the versions of the
policy set and entity set it was made against, so a caller (and the audit log) can tell
exactly which rules said what.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from symbi_policy.annotations import Condition

__all__ = ["Allow", "AllowWithConditions", "Decision", "Deny", "decision_to_dict"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What every decision has. Use the subclasses; ``allowed`` is the one bit to act on."""

    #: Ids of the determining policies: the satisfied permits of an allow, the satisfied
    #: forbids of a deny (empty for a default deny or a fail-closed deny).
    policies: tuple[str, ...]
    #: Version of the policy set that decided (0: no set installed yet).
    version: int
    #: Version of the base entity set that decided (0: none).
    entities_version: int

    @property
    def allowed(self) -> bool:
        return False

    @property
    def kind(self) -> str:
        """``Allow``, ``Deny`` or ``AllowWithConditions``."""
        return type(self).__name__


@dataclass(frozen=True, slots=True, kw_only=True)
class Allow(Decision):
    """Permitted, with nothing for the caller to enforce."""

    @property
    def allowed(self) -> bool:
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowWithConditions(Decision):
    """Permitted if the caller enforces every condition (from ``@condition`` annotations)."""

    conditions: tuple[Condition, ...]

    @property
    def allowed(self) -> bool:
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class Deny(Decision):
    """Not permitted. ``reasons`` are for people and logs; never empty."""

    reasons: tuple[str, ...]
    #: True when the engine could not decide (error, timeout, audit unavailable) and
    #: denied because it fails closed, rather than because a policy said no.
    fail_closed: bool = False


def decision_to_dict(decision: Decision, *, cached: bool | None = None) -> dict[str, Any]:
    """The JSON shape shared by the CLI and the audit details."""
    reasons = list(decision.reasons) if isinstance(decision, Deny) else []
    conditions = (
        [str(c) for c in decision.conditions] if isinstance(decision, AllowWithConditions) else []
    )
    result: dict[str, Any] = {
        "decision": decision.kind,
        "reasons": reasons,
        "conditions": conditions,
        "policies": list(decision.policies),
        "version": decision.version,
        "entities_version": decision.entities_version,
    }
    if isinstance(decision, Deny) and decision.fail_closed:
        result["fail_closed"] = True
    if cached is not None:
        result["cached"] = cached
    return result
