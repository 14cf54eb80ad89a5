"""Reading a task's output from the bus (``symbi sandbox output``, and any service).

:func:`follow_task_output` replays ``symbi.task.output.<task>`` from the ``OUTPUT`` stream
(kept an hour) through a consumer of its own, deleted afterwards: messages are verified and
decrypted by the bus (platform topic), and only those a node signed for itself are yielded.
Without ``follow`` it stops at what was stored when it began; with it, at the ``final`` marker
of the task's latest attempt once it has caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from nats.js import api as js_api
from nats.js.errors import NotFoundError

from symbi.bus.v1 import events_pb2
from symbi_common.bus import ConsumerSpec, Received, SecureBus
from symbi_common.errors import PermissionDenied
from symbi_common.jetstream.spec import Subjects

__all__ = ["follow_task_output"]


async def follow_task_output(
    bus: SecureBus,
    task_id: str,
    *,
    follow: bool,
    prefix: str = "SYMBI",
    idle_timeout_s: float = 10.0,
) -> AsyncIterator[events_pb2.TaskOutput]:
    """The task's output messages in order (see the module docstring). Without ``follow``,
    also stops when nothing arrives for ``idle_timeout_s`` (a message the bus refused)."""
    stream = f"{prefix}_OUTPUT"
    subject = Subjects.task_output(task_id)
    try:
        last = int((await asyncio.wait_for(bus.js.get_last_msg(stream, subject), 10.0)).seq or 0)
    except NotFoundError:
        last = 0
    if last == 0 and not follow:
        return
    queue: asyncio.Queue[tuple[int, events_pb2.TaskOutput]] = asyncio.Queue(maxsize=64)

    async def handle(received: Received) -> None:
        message = received.parse(events_pb2.TaskOutput)
        if received.sender_role != "node" or received.sender != message.node_id:
            raise PermissionDenied(
                f"task output for node {message.node_id!r} signed by {received.sender} "
                f"({received.sender_role})",
                reason="NOT_THE_NODE",
            )
        await queue.put((received.stream_seq, message))

    spec = ConsumerSpec(
        stream,
        f"output-{uuid.uuid4().hex[:12]}",
        (subject,),
        deliver_policy=js_api.DeliverPolicy.ALL,
        name="output-follower",
        # A follower killed before it deletes its consumer leaves nothing behind for long:
        # the server removes a consumer nobody has pulled from for a minute.
        inactive_threshold_s=60.0,
    )
    consumer = asyncio.create_task(bus.consume(spec, handle), name=f"output-{task_id}")
    try:
        latest_attempt = 0
        while True:
            getter = asyncio.ensure_future(queue.get())
            try:
                await asyncio.wait(
                    {getter, consumer},
                    timeout=None if follow else idle_timeout_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                if not getter.done():
                    getter.cancel()
            if consumer.done():
                consumer.result()  # the consumer ended: raise its error
                return
            if not getter.done() or getter.cancelled():
                return  # idle: nothing more is coming
            seq, message = getter.result()
            latest_attempt = max(latest_attempt, message.attempt)
            yield message
            caught_up = seq >= last
            if not follow and caught_up:
                return
            if message.final and caught_up and message.attempt >= latest_attempt:
                return
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bus.js.delete_consumer(stream, spec.durable), 5.0)
