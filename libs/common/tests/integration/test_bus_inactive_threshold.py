"""ConsumerSpec.inactive_threshold_s on a real nats-server: a consumer whose follower went away
without deleting it (killed) is deleted by the server after the threshold; one that a
SecureBus.consume is pulling from (1 s pull expiry, no messages) outlives the threshold many
times over and still delivers what comes afterwards."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import NotFoundError

from symbi_common.bus import BusEndpoint, ClusterAuthority, ConsumerSpec, Received
from symbi_common.config import NatsSection
from symbi_common.jetstream import Provisioner
from symbi_common.jetstream.server import NatsServerProcess
from symbi_common.jetstream.spec import Subjects
from symbi_testing import eventually

STREAM = "SYMBI_OUTPUT"
THRESHOLD_S = 1.0


@dataclass
class World:
    server: NatsServerProcess
    authority: ClusterAuthority
    js: JetStreamContext
    sender: BusEndpoint
    closers: list[Client]
    loops: list[asyncio.Task[None]]

    async def endpoint(self, principal: str) -> BusEndpoint:
        """An endpoint on a connection of its own (a follower process)."""
        nc = await nats.connect(self.server.url)
        self.closers.append(nc)
        endpoint = await BusEndpoint.open(
            nc, nc.jetstream(), self.authority.issue(principal, "service"), manage_topics=()
        )
        self.loops.append(asyncio.create_task(endpoint.run()))
        await eventually(lambda: endpoint.bus.groups.latest("platform") is not None, timeout=15)
        return endpoint

    async def exists(self, name: str) -> bool:
        try:
            await self.js.consumer_info(STREAM, name)
        except NotFoundError:
            return False
        return True

    async def gone(self, name: str) -> bool:
        return not await self.exists(name)


@pytest_asyncio.fixture
async def world(nats_server: NatsServerProcess, tmp_path: Path) -> AsyncIterator[World]:
    authority = ClusterAuthority.open(tmp_path / "keys")
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await Provisioner(js, NatsSection()).provision()
    sender = await BusEndpoint.open(nc, js, authority.issue("svc-sender", "service"))
    w = World(nats_server, authority, js, sender, [nc], [asyncio.create_task(sender.run())])
    await eventually(lambda: sender.bus.groups.latest("platform") is not None, timeout=15)
    try:
        yield w
    finally:
        for loop in w.loops:
            loop.cancel()
        await asyncio.gather(*w.loops, return_exceptions=True)
        for client in reversed(w.closers):
            if not client.is_closed:
                await client.close()


def output_spec(task_id: str, threshold: float | None) -> ConsumerSpec:
    return ConsumerSpec(
        STREAM,
        f"output-{uuid.uuid4().hex[:12]}",
        (Subjects.task_output(task_id),),
        deliver_policy=js_api.DeliverPolicy.ALL,
        name="output-follower-test",
        inactive_threshold_s=threshold,
    )


async def start_consuming(
    endpoint: BusEndpoint, spec: ConsumerSpec
) -> tuple[asyncio.Task[None], list[bytes]]:
    received: list[bytes] = []

    async def handle(message: Received) -> None:
        received.append(message.payload)

    task = asyncio.create_task(endpoint.bus.consume(spec, handle))
    return task, received


async def test_abandoned_consumer_deleted_by_the_server(world: World) -> None:
    task_id = f"t-{uuid.uuid4().hex[:8]}"
    follower = await world.endpoint("svc-follower")
    temporary = output_spec(task_id, THRESHOLD_S)
    kept = output_spec(task_id, None)  # the control: no threshold, nothing deletes it
    loops = [(await start_consuming(follower, spec))[0] for spec in (temporary, kept)]
    await eventually(lambda: world.exists(temporary.durable))
    await eventually(lambda: world.exists(kept.durable))
    info = await world.js.consumer_info(STREAM, temporary.durable)
    assert info.config.inactive_threshold == THRESHOLD_S

    # The follower disappears without deleting its consumers (as when it is SIGKILLed).
    for loop in loops:
        loop.cancel()
    await asyncio.gather(*loops, return_exceptions=True)
    await world.closers[-1].close()

    gone_at = time.monotonic()
    await eventually(
        lambda: world.gone(temporary.durable),
        timeout=15,
        message="the abandoned consumer deleted by the server",
    )
    assert time.monotonic() - gone_at >= THRESHOLD_S * 0.5  # not deleted by anything else
    assert await world.exists(kept.durable)


async def test_pulling_consumer_outlives_the_threshold(world: World) -> None:
    task_id = f"t-{uuid.uuid4().hex[:8]}"
    follower = await world.endpoint("svc-follower")
    spec = output_spec(task_id, THRESHOLD_S)
    consumer, received = await start_consuming(follower, spec)
    try:
        await eventually(lambda: world.exists(spec.durable))
        # Nothing to deliver for four thresholds: only the pulls (1 s expiry) keep it active.
        until = time.monotonic() + 4 * THRESHOLD_S
        while time.monotonic() < until:
            assert await world.exists(spec.durable), "deleted while a consume was pulling"
            assert not consumer.done()
            await asyncio.sleep(0.1)
        # ... and the follow is not cut off: what comes afterwards is delivered.
        await world.sender.bus.publish(
            "platform", b"late output", subject=Subjects.task_output(task_id)
        )
        await eventually(lambda: received == [b"late output"], timeout=10)
        assert await world.exists(spec.durable)
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
    # Once the follower stops pulling, the threshold applies again.
    await eventually(lambda: world.gone(spec.durable), timeout=15)
