"""Scores that order results: long-term importance and the final ranking."""

from __future__ import annotations

import math

from .options import ImportanceWeights, RankingWeights

__all__ = ["ImportanceModel", "Ranker"]


class ImportanceModel:
    """Importance in [0, 1] of a long-term memory.

    - recency of use: ``2^(−age/half_life)`` since it was last retrieved (or stored);
    - frequency of use: ``1 − e^(−count/scale)``, saturating with use;
    - explicit: the importance given when stored, moved by feedback (each +1 / −1 of
      feedback shifts it by ``feedback_step``), clamped to [0, 1].
    """

    def __init__(self, weights: ImportanceWeights) -> None:
        self._w = weights
        self._total = weights.recency + weights.frequency + weights.explicit

    def explicit(self, base: float, feedback: float) -> float:
        """The explicit component: stored importance moved by feedback."""
        return min(1.0, max(0.0, base + self._w.feedback_step * feedback))

    def score(
        self,
        *,
        base: float,
        access_count: int,
        last_used_at: float,
        feedback: float,
        now: float,
    ) -> float:
        """Importance now."""
        age = max(0.0, now - last_used_at)
        recency = math.pow(2.0, -age / self._w.half_life_s)
        frequency = 1.0 - math.exp(-max(0, access_count) / self._w.frequency_scale)
        explicit = self.explicit(base, feedback)
        w = self._w
        return (w.recency * recency + w.frequency * frequency + w.explicit * explicit) / self._total


class Ranker:
    """Final score = weighted relevance, recency and importance (weights normalised)."""

    def __init__(self, weights: RankingWeights) -> None:
        self._w = weights
        self._total = weights.relevance + weights.recency + weights.importance

    def score(self, *, relevance: float, timestamp: float, importance: float, now: float) -> float:
        """The ranking score in [0, 1] for relevance and importance in [0, 1]."""
        w = self._w
        recency = math.pow(2.0, -max(0.0, now - timestamp) / w.recency_half_life_s)
        return (
            w.relevance * relevance + w.recency * recency + w.importance * importance
        ) / self._total
