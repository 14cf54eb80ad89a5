"""Preemption: which running tasks to stop so an urgent task fits, and a budget against
thrashing.

Minimality
----------
For an urgent task of priority P that fits nowhere, every eligible node (right tier, labels,
big enough when empty) is considered with its *candidates*: running tasks of a priority
strictly lower than P that are preemptible and were not preempted in the last ``cooldown_s``.
A node's *deficit* is what the task needs beyond the node's free capacity, per dimension, plus
a task slot. The plan stops a set of candidates on one node whose requests cover the deficit,
chosen by, in order:

1. fewest tasks stopped;
2. fewest High tasks stopped, then fewest Normal (prefer the least important victims);
3. least work lost (sum of the victims' running time);
4. the least-loaded node, then registration order.

The search is exact (it enumerates sets in increasing size, starting from a per-dimension
lower bound, and stops at the first size that covers the deficit on any node) within
``search_budget`` visited sets per decision; past that it completes greedily, and the plan
says ``exact=False``.

Budget
------
At most ``max_victims`` tasks for one urgent task, at most ``max_per_window`` in a sliding
``window_s``, and never a task preempted less than ``cooldown_s`` ago. When the budget does
not allow a plan, the urgent task waits and holds back capacity on the nodes where it could
run (see ``SchedulerCore``), so it still goes first as soon as room appears.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .nodes import Node
from .options import PreemptionOptions
from .priority import Priority
from .resources import Vector
from .task import TaskSpec

__all__ = ["PreemptionBudget", "PreemptionPlan", "PreemptionPlanner", "Victim"]


@dataclass(frozen=True, slots=True)
class Victim:
    """A running task as the planner sees it."""

    task_id: str
    priority: Priority
    request: Vector
    started_at: float
    last_preempted_at: float | None = None
    preemptible: bool = True


@dataclass(frozen=True, slots=True)
class PreemptionPlan:
    """Stop ``victims`` (all on ``node_id``), then start the urgent task there."""

    node_id: str
    victims: tuple[Victim, ...]
    lost_work_s: float
    exact: bool

    @property
    def victim_ids(self) -> tuple[str, ...]:
        return tuple(v.task_id for v in self.victims)


class PreemptionBudget:
    """Sliding-window count of preemptions (wall-clock seconds)."""

    __slots__ = ("_options", "_times")

    def __init__(self, options: PreemptionOptions) -> None:
        self._options = options
        self._times: deque[float] = deque()

    def _trim(self, now: float) -> None:
        horizon = now - self._options.window_s
        times = self._times
        while times and times[0] <= horizon:
            times.popleft()

    def remaining(self, now: float) -> int:
        """How many tasks may still be preempted in the current window."""
        self._trim(now)
        return max(0, self._options.max_per_window - len(self._times))

    def used(self, now: float) -> int:
        self._trim(now)
        return len(self._times)

    def record(self, now: float, count: int) -> None:
        """Count ``count`` preemptions made at ``now``."""
        self._times.extend(itertools.repeat(now, count))

    def restore(self, times: Iterable[float]) -> None:
        """Rebuild from the preemption times of journaled tasks (after a restart)."""
        self._times = deque(sorted(times))

    def next_refill(self) -> float | None:
        """When the oldest counted preemption leaves the window."""
        return self._times[0] + self._options.window_s if self._times else None


_Cost = tuple[int, int, int, float]  # (count, high, normal, lost work)


def _cost(victims: Sequence[Victim], now: float) -> _Cost:
    high = normal = 0
    lost = 0.0
    for v in victims:
        if v.priority is Priority.HIGH:
            high += 1
        elif v.priority is Priority.NORMAL:
            normal += 1
        lost += max(0.0, now - v.started_at)
    return (len(victims), high, normal, lost)


def _covers(victims: Sequence[Victim], deficit: Vector) -> bool:
    for i in range(4):
        need = deficit[i]
        if need > 0 and sum(v.request[i] for v in victims) < need:
            return False
    return True


class PreemptionPlanner:
    """Chooses the minimal set of running tasks to stop (see the module docstring)."""

    __slots__ = ("_options",)

    def __init__(self, options: PreemptionOptions) -> None:
        self._options = options

    @property
    def options(self) -> PreemptionOptions:
        return self._options

    def may_preempt(self, priority: Priority) -> bool:
        """True if a task of ``priority`` is allowed to preempt at all."""
        return self._options.enabled and priority in self._options.preemptors

    def candidates(self, urgent: Priority, running: Iterable[Victim], now: float) -> list[Victim]:
        """The tasks of ``running`` an urgent task of priority ``urgent`` may stop."""
        cooldown = self._options.cooldown_s
        return [
            v
            for v in running
            if v.priority > urgent
            and v.preemptible
            and (v.last_preempted_at is None or now - v.last_preempted_at >= cooldown)
        ]

    def plan(
        self,
        spec: TaskSpec,
        nodes: Sequence[Node],
        running_on: Callable[[Node], Iterable[Victim]],
        *,
        now: float,
        budget: int,
    ) -> PreemptionPlan | None:
        """A plan placing ``spec`` on one of ``nodes`` by stopping at most ``budget`` tasks.

        ``nodes`` are the eligible nodes (tier, labels, size); ``running_on(node)`` lists the
        running tasks charged to a node. None when no allowed set makes room.
        """
        if not self.may_preempt(spec.priority):
            return None
        limit = min(self._options.max_victims, budget)
        if limit <= 0:
            return None
        request = spec.resources.vector
        # (lower bound on count, node, deficit, slots needed, candidates)
        work: list[tuple[int, Node, Vector, int, list[Victim]]] = []
        r0, r1, r2, r3 = request
        lower = int(spec.priority) + 1
        for node in nodes:
            free = node.free
            d0, d1, d2, d3 = r0 - free[0], r1 - free[1], r2 - free[2], r3 - free[3]
            slots = 1 - node.free_slots if node.free_slots < 1 else 0
            if slots == 0 and d0 <= 0 and d1 <= 0 and d2 <= 0 and d3 <= 0:
                continue  # it fits; the placer excluded it on purpose
            held = node.held_from[lower]
            if held[4] < slots or held[0] < d0 or held[1] < d1 or held[2] < d2 or held[3] < d3:
                continue  # even stopping all lower-priority work there would not make room
            deficit: Vector = (max(0, d0), max(0, d1), max(0, d2), max(0, d3))
            cands = self.candidates(spec.priority, running_on(node), now)
            bound = _lower_bound(cands, deficit, slots)
            if bound is not None and bound <= limit:
                work.append((bound, node, deficit, slots, cands))
        if not work:
            return None
        work.sort(key=lambda w: (w[0], w[1].load(), w[1].order))

        visits = self._options.search_budget
        exact = True
        best: tuple[_Cost, float, int, Node, tuple[Victim, ...]] | None = None
        for bound, node, deficit, slots, cands in work:
            if best is not None and bound > best[0][0]:
                break  # sorted by bound: no later node can beat the best count
            max_k = limit if best is None else best[0][0]
            found: tuple[_Cost, tuple[Victim, ...]] | None = None
            for k in range(max(bound, slots, 1), max_k + 1):
                for combo in itertools.combinations(cands, k):
                    visits -= 1
                    if visits < 0:
                        break
                    if _covers(combo, deficit):
                        cost = _cost(combo, now)
                        if found is None or cost < found[0]:
                            found = (cost, combo)
                if visits < 0 or found is not None:
                    break
            if visits < 0 and found is None:
                exact = False
                greedy = _greedy(cands, deficit, slots, now, limit)
                if greedy is not None:
                    found = (_cost(greedy, now), greedy)
            if found is not None:
                key = (found[0], node.load(), node.order, node, found[1])
                if best is None or key[:3] < best[:3]:
                    best = key
            if visits < 0:
                exact = False
        if best is None:
            return None
        cost, _, _, node, victims = best
        return PreemptionPlan(
            node_id=node.node_id, victims=victims, lost_work_s=cost[3], exact=exact
        )


def _lower_bound(cands: Sequence[Victim], deficit: Vector, slots: int) -> int | None:
    """Fewest candidates that could cover ``deficit`` counting each dimension on its own;
    None if even all of them cannot."""
    bound = slots
    for i in range(4):
        need = deficit[i]
        if need <= 0:
            continue
        got = 0
        for count, value in enumerate(sorted((v.request[i] for v in cands), reverse=True), 1):
            got += value
            if got >= need:
                bound = max(bound, count)
                break
        else:
            return None
    if bound > len(cands):
        return None
    return max(bound, 1)


def _greedy(
    cands: Sequence[Victim], deficit: Vector, slots: int, now: float, limit: int
) -> tuple[Victim, ...] | None:
    """Least important, least-worked tasks first until the deficit is covered, then drop any
    that turned out unnecessary."""
    order = sorted(cands, key=lambda v: (-int(v.priority), now - v.started_at))
    chosen: list[Victim] = []
    for v in order:
        chosen.append(v)
        if len(chosen) >= slots and _covers(chosen, deficit):
            break
    else:
        return None
    for v in sorted(chosen, key=lambda v: (int(v.priority), v.started_at)):
        rest = [c for c in chosen if c is not v]
        if len(rest) >= slots and rest and _covers(rest, deficit):
            chosen = rest
    return tuple(chosen) if len(chosen) <= limit else None
