"""Following heartbeats with an ordered push consumer, on a real NATS server with real bus
principals: the latest heartbeat of every node first, then new ones; forged envelopes and
heartbeats for another node refused (and the follower keeps going); a consumer that vanishes
on the server is re-created."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from prometheus_client import REGISTRY

from symbi.bus.v1 import events_pb2
from symbi_common.bus import BusEndpoint, ClusterAuthority
from symbi_common.bus.permissions import inbox_prefix
from symbi_common.config import NatsSection
from symbi_common.jetstream import Provisioner
from symbi_common.jetstream.server import NatsServerProcess
from symbi_common.jetstream.spec import Subjects
from symbi_scheduler import SchedulerCore, SchedulerOptions, SystemClock
from symbi_scheduler.convert import NodeDefaults
from symbi_scheduler.events import NodeEvents
from symbi_scheduler.heartbeat_follow import HeartbeatFollower
from symbi_scheduler.memory import (
    InMemoryJournal,
    RecordingDispatcher,
    RecordingLifecycle,
    StaticPolicy,
)
from symbi_testing import eventually

STREAM = "SYMBI_HEARTBEATS"


@dataclass
class World:
    server: NatsServerProcess
    authority: ClusterAuthority
    scheduler: BusEndpoint
    nodes: dict[str, BusEndpoint] = field(default_factory=dict)
    connections: list[NatsClient] = field(default_factory=list)
    loops: list[asyncio.Task[None]] = field(default_factory=list)

    async def connect(self, principal: str) -> NatsClient:
        nc = await nats.connect(
            self.server.url, name=principal, inbox_prefix=inbox_prefix(principal).encode()
        )
        self.connections.append(nc)
        return nc

    async def node(self, node_id: str) -> BusEndpoint:
        nc = await self.connect(node_id)
        endpoint = await BusEndpoint.open(
            nc, nc.jetstream(), self.authority.issue(node_id, "node"), manage_topics=()
        )
        self.loops.append(asyncio.create_task(endpoint.run()))
        await eventually(lambda: endpoint.bus.groups.latest("platform") is not None, timeout=15)
        self.nodes[node_id] = endpoint
        return endpoint

    async def beat(self, node_id: str, *, claims: str | None = None, memory_mb: int = 4096) -> int:
        """Publish one heartbeat of ``node_id`` (claiming to be ``claims``); its timestamp."""
        stamp = round(time.time() * 1000)
        hb = events_pb2.NodeHeartbeat(
            node_id=claims or node_id,
            timestamp_ms=stamp,
            memory_total_mb=memory_mb,
            cpu_total_millicores=4000,
            tiers=[1],
            heartbeat_interval_ms=1000,
        )
        await self.nodes[node_id].bus.publish("platform", hb, subject=Subjects.heartbeat(node_id))
        return stamp


@pytest_asyncio.fixture
async def world(nats_server: NatsServerProcess, tmp_path: Path) -> AsyncIterator[World]:
    authority = ClusterAuthority.open(tmp_path / "keys")
    nc = await nats.connect(nats_server.url, inbox_prefix=inbox_prefix("svc-scheduler-t").encode())
    js = nc.jetstream()
    await Provisioner(js, NatsSection()).provision()
    scheduler = await BusEndpoint.open(nc, js, authority.issue("svc-scheduler-t", "service"))
    w = World(nats_server, authority, scheduler, connections=[nc])
    w.loops.append(asyncio.create_task(scheduler.run()))
    await eventually(lambda: scheduler.bus.groups.latest("platform") is not None, timeout=15)
    yield w
    for loop in w.loops:
        loop.cancel()
    await asyncio.gather(*w.loops, return_exceptions=True)
    for conn in reversed(w.connections):
        await conn.close()


def core() -> SchedulerCore:
    return SchedulerCore(
        journal=InMemoryJournal(),
        dispatcher=RecordingDispatcher(),
        policy=StaticPolicy(),
        lifecycle=RecordingLifecycle(),
        clock=SystemClock(),
        options=SchedulerOptions(),
    )


def node_events(c: SchedulerCore) -> NodeEvents:
    return NodeEvents(
        c,
        lambda: None,
        node_defaults=NodeDefaults(max_tasks=8, disk_io_mbps=100, network_io_mbps=100),
        node_timeout_s=30.0,
    )


def followed(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "symbi_scheduler_heartbeat_envelopes_total", {"outcome": outcome}
    )
    return value or 0.0


async def test_latest_heartbeat_first_then_new_ones(world: World) -> None:
    await world.node("node-a")
    await world.node("node-b")
    await world.beat("node-a", memory_mb=1000)
    await world.beat("node-a", memory_mb=2000)  # only this one is "the latest" of node-a
    seen: list[tuple[str, int, str]] = []

    async def handler(received):  # type: ignore[no-untyped-def]
        hb = received.parse(events_pb2.NodeHeartbeat)
        seen.append((hb.node_id, hb.memory_total_mb, received.sender_role))

    follower = HeartbeatFollower(world.scheduler.bus, STREAM, handler)
    task = asyncio.create_task(follower.run())
    try:
        await eventually(lambda: len(seen) >= 1, timeout=10)
        assert seen[0] == ("node-a", 2000, "node")
        await world.beat("node-b", memory_mb=3000)
        await world.beat("node-a", memory_mb=4000)
        await eventually(lambda: len(seen) >= 3, timeout=10)
        assert seen == [
            ("node-a", 2000, "node"),
            ("node-b", 3000, "node"),
            ("node-a", 4000, "node"),
        ]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_forged_and_foreign_heartbeats_are_refused_and_following_goes_on(
    world: World,
) -> None:
    await world.node("node-a")
    await world.node("node-b")
    c = core()
    events = node_events(c)
    follower = HeartbeatFollower(world.scheduler.bus, STREAM, events.on_heartbeat)
    rejected, refused = followed("rejected"), followed("refused")
    task = asyncio.create_task(follower.run())
    try:
        await world.beat("node-a")
        await eventually(lambda: [n.node_id for n in c.nodes()] == ["node-a"], timeout=10)
        # Not an envelope at all, straight onto the stream.
        await world.scheduler.bus.js.publish(Subjects.heartbeat("node-x"), b"not an envelope")
        # node-b heartbeating for node-a: a valid envelope the handler refuses.
        await world.beat("node-b", claims="node-a", memory_mb=64)
        await eventually(lambda: followed("rejected") >= rejected + 1, timeout=10)
        await eventually(lambda: followed("refused") >= refused + 1, timeout=10)
        # Still following; node-a's capacity is not node-b's claim.
        await world.beat("node-b")
        await eventually(lambda: len(c.nodes()) == 2, timeout=10)
        node_a = next(n for n in c.nodes() if n.node_id == "node-a")
        assert node_a.capacity.memory_mb == 4096
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_consumer_deleted_on_the_server_is_recreated(world: World) -> None:
    await world.node("node-a")
    js = world.scheduler.bus.js
    stamps: list[int] = []

    async def handler(received):  # type: ignore[no-untyped-def]
        stamps.append(received.parse(events_pb2.NodeHeartbeat).timestamp_ms)

    follower = HeartbeatFollower(world.scheduler.bus, STREAM, handler, idle_heartbeat_s=0.5)
    task = asyncio.create_task(follower.run())
    try:
        first = await world.beat("node-a")
        await eventually(lambda: first in stamps, timeout=10)
        for info in await js.consumers_info(STREAM):
            await js.delete_consumer(STREAM, info.name)

        # No idle heartbeats from the server any more: nats-py re-creates the consumer from
        # the next stream sequence (within about two idle-heartbeat intervals).
        async def recovered() -> bool:
            await world.beat("node-a")
            return any(stamp > first for stamp in stamps)

        assert await eventually(recovered, timeout=20, interval=0.5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
