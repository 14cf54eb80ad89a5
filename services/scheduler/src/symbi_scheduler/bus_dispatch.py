"""``TaskDispatcher`` over the secure bus (contract C3).

A dispatch is a ``TaskAssignment`` sent to the node's principal on ``symbi.task.<node>`` (the
TASKS work queue, encrypted to that node). Its envelope id — also JetStream's
``Nats-Msg-Id`` — is derived from the dispatch id, so re-sending a dispatch after a failover
is dropped as a duplicate by JetStream and by the node. A stop is a ``TaskStop`` on
``symbi.task.control.<node>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from prometheus_client import Counter

from symbi_common.bus import SecureBus
from symbi_common.jetstream.spec import Subjects

from .convert import assignment_from_order, stop_from_order
from .nats_errors import nats_call
from .outbox import Outbox
from .ports import Clock, DispatchOrder, StopOrder

__all__ = ["BusDispatcher", "dispatch_message_id"]

ORDERS = Counter("symbi_scheduler_orders_total", "Orders sent to nodes, by kind.", ["kind"])


def dispatch_message_id(dispatch_id: str) -> str:
    """The envelope id of a dispatch (at most 64 characters, as envelopes require)."""
    return "dispatch-" + hashlib.sha256(dispatch_id.encode()).hexdigest()[:48]


class BusDispatcher:
    """Sends dispatch and stop orders to worker nodes — through ``outbox`` when given (the
    call returns once the order is queued), else directly."""

    def __init__(
        self, bus: SecureBus, clock: Clock, *, stop_grace_ms: int, outbox: Outbox | None = None
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._grace_ms = stop_grace_ms
        self._outbox = outbox

    async def dispatch(self, order: DispatchOrder) -> None:
        assignment = assignment_from_order(order, now=self._clock.now())

        async def send() -> None:
            async with nats_call(f"dispatch {order.dispatch_id}"):
                await self._bus.send(
                    order.node_id,
                    assignment,
                    subject=Subjects.task(order.node_id),
                    msg_id=dispatch_message_id(order.dispatch_id),
                )
            ORDERS.labels("dispatch").inc()

        await self._submit(f"dispatch {order.dispatch_id}", send)

    async def stop(self, order: StopOrder) -> None:
        stop = stop_from_order(order, grace_ms=self._grace_ms)

        async def send() -> None:
            async with nats_call(f"stop {order.task_id}"):
                await self._bus.send(
                    order.node_id, stop, subject=Subjects.task_control(order.node_id)
                )
            ORDERS.labels("stop").inc()

        await self._submit(f"stop {order.task_id} on {order.node_id}", send)

    async def _submit(self, what: str, send: Callable[[], Awaitable[None]]) -> None:
        if self._outbox is None:
            await send()
        else:
            await self._outbox.put(what, send)
