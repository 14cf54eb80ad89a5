"""Choosing a node for a task among those that fit (see ``PlacementStrategy``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from .nodes import Node
from .options import PlacementOptions, PlacementStrategy
from .resources import Vector
from .task import TaskSpec

__all__ = ["Placer"]


def _headroom(node: Node, request: Vector) -> float:
    """Sum over accounted dimensions of the fraction left free after placing ``request``."""
    cap = node.capacity.vector
    free = node.free
    score = 0.0
    for i in range(4):
        if cap[i] > 0:
            score += (free[i] - request[i]) / cap[i]
    return score


class Placer:
    """Picks a node for a task; stateless apart from its options."""

    __slots__ = ("_options",)

    def __init__(self, options: PlacementOptions) -> None:
        self._options = options

    def strategy_for(self, spec: TaskSpec) -> PlacementStrategy:
        return self._options.strategy_for(spec.priority)

    def choose(
        self,
        spec: TaskSpec,
        nodes: Sequence[Node],
        exclude: Collection[str] = (),
    ) -> Node | None:
        """The node ``spec`` should go to now, or None if none of ``nodes`` has room.

        ``nodes`` must already match the task's tier and labels (``NodeRegistry.matching``),
        in registration order; ``exclude`` names nodes not to use.
        """
        request = spec.resources.vector
        r0, r1, r2, r3 = request
        strategy = self._options.strategy_for(spec.priority)
        if strategy is PlacementStrategy.FIRST_FIT:
            for node in nodes:
                free = node.free
                if (
                    node.free_slots > 0
                    and free[0] >= r0
                    and free[1] >= r1
                    and free[2] >= r2
                    and free[3] >= r3
                    and node.node_id not in exclude
                ):
                    return node
            return None
        sign = 1.0 if strategy is PlacementStrategy.BEST_FIT else -1.0
        best: Node | None = None
        best_score = 0.0
        for node in nodes:
            free = node.free
            if (
                node.free_slots <= 0
                or free[0] < r0
                or free[1] < r1
                or free[2] < r2
                or free[3] < r3
                or node.node_id in exclude
            ):
                continue
            score = sign * _headroom(node, request)
            if best is None or score < best_score:
                best, best_score = node, score
            elif score == best_score and _tie_key(node) < _tie_key(best):
                best = node
        return best


def _tie_key(node: Node) -> tuple[float, int, int]:
    """Least loaded first (dominant share, then fewest tasks), then registration order."""
    return (node.load(), len(node.tasks), node.order)
