"""Sandbox tiers, resource limits and the values that describe them (sizes, durations)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = [
    "ResourceBounds",
    "ResourceLimits",
    "SandboxTier",
    "parse_cpu_millicores",
    "parse_duration_ms",
    "parse_memory_mb",
    "tier_from_name",
]


class SandboxTier(enum.Enum):
    """Where an agent runs: Tier1 is Docker (runc), Tier2 is gVisor (runsc through Docker)."""

    DOCKER = "docker"
    GVISOR = "gvisor"

    @property
    def tier_name(self) -> str:
        """The DSL's name for the tier (``Tier1``, ``Tier2``)."""
        return "Tier1" if self is SandboxTier.DOCKER else "Tier2"


_TIER_NAMES = {
    "tier1": SandboxTier.DOCKER,
    "docker": SandboxTier.DOCKER,
    "runc": SandboxTier.DOCKER,
    "tier2": SandboxTier.GVISOR,
    "gvisor": SandboxTier.GVISOR,
    "runsc": SandboxTier.GVISOR,
}
_REFUSED_TIERS = {
    "tier3": "Tier3 (Firecracker) is not available in Symbi",
    "firecracker": "Firecracker (Tier3) is not available in Symbi",
    "e2b": "E2B remote sandboxes are not available in Symbi",
    "none": "agents always run in a sandbox",
    "host": "agents always run in a sandbox",
    "native": "agents always run in a sandbox",
}
TIER_HELP = "use Tier1 (docker) or Tier2 (gvisor)"


def tier_from_name(name: str) -> SandboxTier:
    """The tier a DSL value names; ValueError with a message saying what is allowed."""
    key = name.strip().lower()
    if key in _TIER_NAMES:
        return _TIER_NAMES[key]
    if key in _REFUSED_TIERS:
        raise ValueError(f"sandbox {name!r} refused: {_REFUSED_TIERS[key]}; {TIER_HELP}")
    raise ValueError(f"unknown sandbox tier {name!r}; {TIER_HELP}")


@dataclass(frozen=True, slots=True)
class ResourceLimits:
    """What an agent may use while it runs."""

    memory_mb: int
    cpu_millicores: int
    timeout_ms: int

    @property
    def cpu_cores(self) -> float:
        return self.cpu_millicores / 1000

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1000


@dataclass(frozen=True, slots=True)
class ResourceBounds:
    """The ranges limits must fall in, and the defaults for limits a definition omits."""

    min_memory_mb: int = 16
    max_memory_mb: int = 65536
    min_cpu_millicores: int = 10
    max_cpu_millicores: int = 64000
    min_timeout_ms: int = 100
    max_timeout_ms: int = 24 * 3600 * 1000
    default: ResourceLimits = ResourceLimits(memory_mb=512, cpu_millicores=1000, timeout_ms=300_000)


_DURATION_MS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 7 * 86_400_000,
    "months": 30 * 86_400_000,
    "y": 365 * 86_400_000,
}
_DURATION_WORDS = {
    "millisecond": "ms",
    "milliseconds": "ms",
    "msec": "ms",
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "min": "m",
    "mins": "m",
    "minute": "m",
    "minutes": "m",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "day": "d",
    "days": "d",
    "week": "w",
    "weeks": "w",
    "month": "months",
    "y": "y",
    "year": "y",
    "years": "y",
}
_QUANTITY = re.compile(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*")
_MEMORY_MB = {
    "": 1.0,
    "b": 1 / (1024 * 1024),
    "k": 1 / 1024,
    "kb": 1 / 1024,
    "kib": 1 / 1024,
    "ki": 1 / 1024,
    "m": 1.0,
    "mb": 1.0,
    "mib": 1.0,
    "mi": 1.0,
    "g": 1024.0,
    "gb": 1024.0,
    "gib": 1024.0,
    "gi": 1024.0,
    "t": 1024.0 * 1024,
    "tb": 1024.0 * 1024,
    "tib": 1024.0 * 1024,
    "ti": 1024.0 * 1024,
}


def parse_duration_ms(amount: float, unit: str) -> int:
    """Milliseconds for ``amount`` ``unit`` (units: ms s m h d w months y and long names)."""
    key = _DURATION_WORDS.get(unit.lower(), unit.lower())
    if key not in _DURATION_MS:
        raise ValueError(f"unknown duration unit {unit!r}; use ms, s, m, h, d, w, months or y")
    return round(amount * _DURATION_MS[key])


def parse_duration_text(text: str, default_unit: str = "ms") -> int:
    """Milliseconds for a duration written as text: ``"30s"``, ``"5 minutes"``, ``"3000"``."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f'cannot read {text!r} as a duration; write e.g. "30s" or "5m"')
    return parse_duration_ms(float(match.group(1).replace("_", "")), match.group(2) or default_unit)


def parse_memory_mb(text: str) -> int:
    """MiB for a size written as text: ``"512MB"``, ``"1GiB"``, ``"2g"`` (no unit: MiB)."""
    match = _QUANTITY.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _MEMORY_MB:
        raise ValueError(f'cannot read {text!r} as a memory size; write e.g. "512MB" or "2GB"')
    return round(float(match.group(1).replace("_", "")) * _MEMORY_MB[unit])


def parse_cpu_millicores(text: str) -> int:
    """Millicores for a CPU amount written as text: ``"500m"`` or ``"1.5"`` (cores)."""
    match = _QUANTITY.fullmatch(text)
    if match is None or match.group(2).lower() not in ("", "m", "cores", "core"):
        raise ValueError(f'cannot read {text!r} as CPU; write cores ("1.5") or millicores ("500m")')
    value = float(match.group(1).replace("_", ""))
    return round(value if match.group(2).lower() == "m" else value * 1000)
