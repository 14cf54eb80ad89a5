"""``LifecycleNotifier`` as ``TaskStatus`` events (contracts C2 and C3).

Lifecycle follows ``symbi.task.status.<task>``: nodes publish STARTED and final states; the
scheduler publishes what only it knows — STOPPED "preempted" (the agent is Suspended),
STOPPED "cancelled" (back to Ready), LOST with the reason when a run vanished with its node
(the task is requeued; lifecycle keeps the agent's state until the next status), and FAILED
with the reason when it gives up (policy denial, no acknowledgement, nowhere to run).
"""

from __future__ import annotations

from prometheus_client import Counter

from symbi_common.bus import SecureBus
from symbi_common.jetstream.spec import Subjects

from .convert import status_for_transition
from .nats_errors import nats_call
from .outbox import Outbox
from .ports import AgentTransition, Clock

__all__ = ["StatusNotifier"]

PUBLISHED = Counter(
    "symbi_scheduler_status_published_total",
    "Task statuses the scheduler published for lifecycle, by transition.",
    ["transition"],
)


class StatusNotifier:
    """Publishes the scheduler's transitions on the platform topic (through ``outbox`` when
    given)."""

    def __init__(
        self,
        bus: SecureBus,
        clock: Clock,
        *,
        topic: str = "platform",
        outbox: Outbox | None = None,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._topic = topic
        self._outbox = outbox

    async def notify(self, transition: AgentTransition) -> None:
        status = status_for_transition(transition, now=self._clock.now())
        if status is None:
            return

        async def send() -> None:
            async with nats_call(f"status of {transition.task_id}"):
                await self._bus.publish(
                    self._topic, status, subject=Subjects.task_status(transition.task_id)
                )
            PUBLISHED.labels(transition.kind.value).inc()

        if self._outbox is None:
            await send()
        else:
            await self._outbox.put(f"{transition.kind.value} status of {transition.task_id}", send)
