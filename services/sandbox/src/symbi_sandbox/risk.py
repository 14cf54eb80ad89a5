"""Risk assessment of a task: five factors → a score in [0, 100] → an isolation tier.

Factors and their weights (the weights sum to 100, so the score reads as a percentage):

=================  ======  ===============================================================
factor             weight  level
=================  ======  ===============================================================
data sensitivity   30      public 0 · internal ⅓ · confidential ⅔ · restricted 1
code trust         30      verified (signed, first party) 0 · reviewed ½ · untrusted 1
network            15      none 0 · egress granted 1
filesystem         10      none 0 · read-only inputs ½ · writes outputs 1
external APIs      15      number of external tools/APIs the task may call, 5 or more = 1
=================  ======  ===============================================================

A score at or above ``gvisor_threshold`` (default 40) picks gVisor. Untrusted code alone
(30) stays on runc only if nothing else about the task is risky; untrusted code that touches
confidential data (30 + 20) goes to gVisor. The assessment can only raise the tier chosen for
a task (see :func:`symbi_sandbox.tiers.choose_tier`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from symbi_common.errors import InvalidArgument
from symbi_sandbox.tiers import Tier

__all__ = [
    "CodeTrust",
    "DataSensitivity",
    "FilesystemAccess",
    "RiskAssessment",
    "RiskAssessor",
    "RiskProfile",
]


class DataSensitivity(enum.IntEnum):
    """How sensitive the data the task sees is."""

    PUBLIC = 0
    INTERNAL = 1
    CONFIDENTIAL = 2
    RESTRICTED = 3


class CodeTrust(enum.IntEnum):
    """How far the code that runs is trusted."""

    VERIFIED = 0
    REVIEWED = 1
    UNTRUSTED = 2


class FilesystemAccess(enum.IntEnum):
    """What the task does with files beyond its private ``/tmp``."""

    NONE = 0
    READ = 1
    WRITE = 2


@dataclass(frozen=True)
class RiskProfile:
    """What is known about a task's risk. Defaults describe an unknown task pessimistically."""

    data_sensitivity: DataSensitivity = DataSensitivity.INTERNAL
    code_trust: CodeTrust = CodeTrust.UNTRUSTED
    network: bool = False
    filesystem: FilesystemAccess = FilesystemAccess.NONE
    external_apis: int = 0

    def __post_init__(self) -> None:
        if self.external_apis < 0:
            raise InvalidArgument(
                f"risk.external_apis must be ≥ 0, got {self.external_apis}",
                details={"field": "risk.external_apis"},
            )


@dataclass(frozen=True)
class RiskAssessment:
    """A score in [0, 100], its parts per factor, and the tier it maps to."""

    score: float
    tier: Tier
    factors: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))


_WEIGHTS = {
    "data_sensitivity": 30.0,
    "code_trust": 30.0,
    "network": 15.0,
    "filesystem": 10.0,
    "external_apis": 15.0,
}
_SATURATING_APIS = 5


@dataclass(frozen=True)
class RiskAssessor:
    """Maps a :class:`RiskProfile` to a :class:`RiskAssessment` (pure, deterministic)."""

    gvisor_threshold: float = 40.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.gvisor_threshold <= 100.0:
            raise InvalidArgument(
                f"gvisor_threshold must be within [0, 100], got {self.gvisor_threshold}",
                details={"field": "gvisor_threshold"},
            )

    def assess(self, profile: RiskProfile) -> RiskAssessment:
        """Scores ``profile``; the factor contributions add up to ``score``."""
        levels = {
            "data_sensitivity": profile.data_sensitivity / DataSensitivity.RESTRICTED,
            "code_trust": profile.code_trust / CodeTrust.UNTRUSTED,
            "network": 1.0 if profile.network else 0.0,
            "filesystem": profile.filesystem / FilesystemAccess.WRITE,
            "external_apis": min(profile.external_apis, _SATURATING_APIS) / _SATURATING_APIS,
        }
        factors = {name: round(_WEIGHTS[name] * level, 3) for name, level in levels.items()}
        score = round(sum(factors.values()), 3)
        tier = Tier.GVISOR if score >= self.gvisor_threshold else Tier.DOCKER
        return RiskAssessment(score=score, tier=tier, factors=MappingProxyType(factors))
