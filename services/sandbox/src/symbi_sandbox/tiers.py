"""Isolation tiers and the choice of one for a task.

Tier 1 runs the container with Docker's default runtime (runc); tier 2 runs it under gVisor
(``runsc`` registered as a Docker runtime), which interposes a user-space kernel. A higher tier
is stricter. The choice may raise the tier (risk, policy minimum) but never lowers it below
what was asked or required, and a tier this node does not offer is refused, not substituted.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from symbi_common.errors import FailedPrecondition, InvalidArgument

__all__ = ["Tier", "TierChoice", "choose_tier"]


class Tier(enum.IntEnum):
    """An isolation tier; the values are those of ``symbi.common.v1.SandboxTier``."""

    DOCKER = 1
    GVISOR = 2

    @property
    def label(self) -> str:
        """The configuration spelling (``docker`` / ``gvisor``)."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int | Tier) -> Tier:
        """Reads ``docker``/``runc``/``1`` or ``gvisor``/``runsc``/``2`` (case-insensitive)."""
        if isinstance(value, Tier):
            return value
        if isinstance(value, int):
            try:
                return cls(value)
            except ValueError:
                pass
        else:
            found = _SPELLINGS.get(value.strip().lower())
            if found is not None:
                return found
        raise InvalidArgument(
            f"unknown sandbox tier {value!r}; allowed: docker (runc, 1), gvisor (runsc, 2)",
            reason="UNKNOWN_TIER",
            details={"field": "tier", "value": str(value)},
        )


_SPELLINGS: dict[str, Tier] = {
    "docker": Tier.DOCKER,
    "runc": Tier.DOCKER,
    "1": Tier.DOCKER,
    "tier1": Tier.DOCKER,
    "gvisor": Tier.GVISOR,
    "runsc": Tier.GVISOR,
    "2": Tier.GVISOR,
    "tier2": Tier.GVISOR,
}


@dataclass(frozen=True)
class TierChoice:
    """The chosen tier and a sentence saying why (kept in the execution record)."""

    tier: Tier
    reason: str


def choose_tier(
    *,
    requested: Tier | None,
    default: Tier,
    available: Iterable[Tier],
    assessed: Tier | None = None,
    policy_minimum: Tier | None = None,
) -> TierChoice:
    """Picks the tier for a task.

    ``requested`` (the task's explicit tier) or, when absent, the risk-``assessed`` tier or
    else the node's ``default`` is the starting point. It is raised to the ``policy_minimum``
    and to the ``assessed`` tier when either is higher. A result this node does not offer
    raises :class:`FailedPrecondition`: a task is never run at a weaker tier than chosen.
    """
    offered = frozenset(available)
    if requested is not None:
        tier, why = requested, f"requested {requested.label}"
    elif assessed is not None:
        tier, why = assessed, f"risk assessment chose {assessed.label}"
    else:
        tier, why = default, f"node default {default.label}"
    if assessed is not None and assessed > tier:
        tier, why = assessed, f"{why}, raised to {assessed.label} by the risk assessment"
    if policy_minimum is not None and policy_minimum > tier:
        tier, why = policy_minimum, f"{why}, raised to {policy_minimum.label} by policy minimum"
    if tier not in offered:
        have = ", ".join(t.label for t in sorted(offered)) or "none"
        raise FailedPrecondition(
            f"sandbox tier {tier.label} is required ({why}) but this node offers: {have}; "
            "refusing rather than running the task at a weaker tier",
            reason="TIER_UNAVAILABLE",
            details={"tier": tier.label, "available": have},
        )
    return TierChoice(tier, why)
