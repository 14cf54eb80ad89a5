"""A local access policy by clearance: the default until the policy service is wired in.

An agent may read shared data classified at or below its clearance; secret data only when
its clearance is secret. Owners always read their own data (the domain never asks about
that). Sharing at a level needs a clearance at or above that level, so nobody can publish
above what they may read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .ports import AccessDecision, AccessLevel, AccessRequest

__all__ = ["ClearancePolicy"]


@dataclass(frozen=True, slots=True)
class ClearancePolicy:
    """:class:`~symbi_context.ports.PolicyPort` deciding by per-agent clearance."""

    clearances: Mapping[str, AccessLevel] = field(default_factory=dict)
    default: AccessLevel = AccessLevel.PUBLIC

    async def decide(self, requests: Sequence[AccessRequest]) -> list[AccessDecision]:
        """Allow when the principal's clearance covers the data's level."""
        out = []
        for req in requests:
            clearance = self.clearances.get(req.principal, self.default)
            if req.action not in ("read_context", "share_context"):
                out.append(AccessDecision(False, f"action {req.action!r} is not decided here"))
            elif clearance.rank >= req.access_level.rank:
                out.append(AccessDecision(True))
            else:
                out.append(
                    AccessDecision(
                        False,
                        f"{req.principal} has clearance {clearance.value}, "
                        f"the data is {req.access_level.value}",
                    )
                )
        return out
