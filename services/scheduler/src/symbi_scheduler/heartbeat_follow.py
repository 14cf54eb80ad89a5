"""Following node heartbeats: one :meth:`SecureBus.follow` of the HEARTBEATS stream.

Why not ``SecureBus.consume``: it pulls, and at heartbeat rates (100 nodes × 1/s, evenly
spread) every pull comes back with one message, whatever its batch size — so each heartbeat
cost a pull request, an acknowledgement (two socket writes) and the timers of ``fetch``:
about 0.8 ms of CPU per heartbeat, 8.3–9.7% of a core for the idle scheduler process at 100
nodes (bench/scheduler.py (d)). Heartbeats need none of what a durable, acknowledged pull
gives: a heartbeat that is missed is superseded by the node's next one, and only the latest
per node matters.

So each process follows ``symbi.node.heartbeat.*`` with the bus's ordered push consumer
(``bus.follow``: first the latest heartbeat of every node, then every new one as it is
stored; no pull, no acknowledgement; re-created from the next stream sequence on a gap or
after two silent idle-heartbeat intervals, e.g. a NATS restart). The bus opens and checks
every envelope exactly as ``consume`` does and counts, reports and audits refusals.

What is the scheduler's: the handler (``NodeEvents.on_heartbeat``: only a node may heartbeat
for itself, heartbeats older than the node timeout are ignored) and the metric
``symbi_scheduler_heartbeat_envelopes_total{outcome}``.
"""

from __future__ import annotations

from prometheus_client import Counter

from symbi_common.bus import FollowOutcome, FollowSpec, Handler, SecureBus

__all__ = ["HEARTBEAT_SUBJECTS", "HeartbeatFollower"]

HEARTBEAT_SUBJECTS = "symbi.node.heartbeat.*"

FOLLOWED = Counter(
    "symbi_scheduler_heartbeat_envelopes_total",
    "Heartbeat envelopes followed, by outcome (ok, rejected, refused, key_pending, error).",
    ["outcome"],
)
# Bound once: a label lookup per heartbeat is measurable at 100 heartbeats/s.
_BY_OUTCOME = {
    outcome: FOLLOWED.labels(outcome)
    for outcome in ("ok", "rejected", "refused", "key_pending", "error")
}


def _count(outcome: FollowOutcome) -> None:
    _BY_OUTCOME[outcome].inc()


class HeartbeatFollower:
    """Follows heartbeats on ``stream`` through ``bus.follow``; see the module."""

    def __init__(
        self,
        bus: SecureBus,
        stream: str,
        handler: Handler,
        *,
        label: str = "scheduler-heartbeats",
        pending_limit: int = 4096,
        idle_heartbeat_s: float = 1.0,
    ) -> None:
        self._bus = bus
        self._handler = handler
        self.spec = FollowSpec(
            stream,
            (HEARTBEAT_SUBJECTS,),
            label,
            idle_heartbeat_s=idle_heartbeat_s,
            max_pending=pending_limit,
        )

    async def run(self) -> None:
        """Follow until cancelled (spawn it)."""
        await self._bus.follow(self.spec, self._handler, on_outcome=_count)
