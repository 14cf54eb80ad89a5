"""SecureBus.follow on a real NATS with real principals: the latest message per subject first,
then new ones; tampered and unknown-sender envelopes refused, counted and audited while the
follow goes on; the per-sender rate limit applies; a slow handler does not grow the buffer;
a consumer deleted on the server is re-created."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest_asyncio
from nats.aio.client import Client
from prometheus_client import REGISTRY

from symbi.bus.v1 import events_pb2
from symbi_common.auditing import AuditEvent, from_proto
from symbi_common.bus import (
    BusEndpoint,
    ClusterAuthority,
    ConsumerSpec,
    FollowOutcome,
    FollowSpec,
    Received,
)
from symbi_common.config import BusSection, NatsSection
from symbi_common.crypto import EnvelopeSealer, PrincipalKeys
from symbi_common.jetstream import Provisioner
from symbi_common.jetstream.server import NatsServerProcess
from symbi_testing import eventually

STREAM = "SYMBI_HEARTBEATS"
SUBJECTS = ("symbi.node.heartbeat.*",)


def subject(name: str) -> str:
    return f"symbi.node.heartbeat.{name}"


@dataclass
class World:
    nc: Client
    authority: ClusterAuthority
    receiver: BusEndpoint
    sender: BusEndpoint
    loops: list[asyncio.Task[None]]

    async def endpoint(self, principal: str, config: BusSection | None = None) -> BusEndpoint:
        endpoint = await BusEndpoint.open(
            self.nc,
            self.nc.jetstream(),
            self.authority.issue(principal, "service"),
            config=config,
            manage_topics=(),
        )
        self.loops.append(asyncio.create_task(endpoint.run()))
        await eventually(lambda: endpoint.bus.groups.latest("platform") is not None, timeout=15)
        return endpoint

    async def send(self, name: str, payload: bytes) -> None:
        await self.sender.bus.publish("platform", payload, subject=subject(name))


@pytest_asyncio.fixture
async def world(nats_server: NatsServerProcess, tmp_path: Path) -> AsyncIterator[World]:
    authority = ClusterAuthority.open(tmp_path / "keys")
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await Provisioner(js, NatsSection()).provision()
    receiver = await BusEndpoint.open(nc, js, authority.issue("svc-receiver", "service"))
    loops = [asyncio.create_task(receiver.run())]
    await eventually(lambda: receiver.bus.groups.latest("platform") is not None, timeout=15)
    w = World(nc, authority, receiver, receiver, loops)
    w.sender = await w.endpoint("svc-sender")
    await eventually(lambda: receiver.bus.keyring.current("svc-sender") is not None)
    try:
        yield w
    finally:
        for loop in w.loops:
            loop.cancel()
        await asyncio.gather(*w.loops, return_exceptions=True)
        await nc.close()


@dataclass
class Following:
    task: asyncio.Task[None]
    handled: list[bytes]
    outcomes: list[FollowOutcome]


async def follow(endpoint: BusEndpoint, spec: FollowSpec, **kwargs: object) -> Following:
    handled: list[bytes] = []
    outcomes: list[FollowOutcome] = []

    async def handler(message: Received) -> None:
        handled.append(message.payload)

    task = asyncio.create_task(
        endpoint.bus.follow(spec, handler, on_outcome=outcomes.append, **kwargs)  # type: ignore[arg-type]
    )
    return Following(task, handled, outcomes)


async def stop(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("symbi_bus_rejected_total", {"reason": reason}) or 0.0


def consumed(consumer: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "symbi_bus_consumed_total", {"consumer": consumer, "outcome": outcome}
    )
    return value or 0.0


async def test_latest_per_subject_first_then_new_ones(world: World) -> None:
    await world.send("a", b"a1")
    await world.send("a", b"a2")
    await world.send("b", b"b1")
    f = await follow(world.receiver, FollowSpec(STREAM, SUBJECTS, "follow-latest"))
    try:
        await eventually(lambda: len(f.handled) >= 2, timeout=10)
        assert f.handled == [b"a2", b"b1"]
        await world.send("b", b"b2")
        await world.send("a", b"a3")
        await eventually(lambda: len(f.handled) >= 4, timeout=10)
        assert f.handled == [b"a2", b"b1", b"b2", b"a3"]
        assert f.outcomes == ["ok"] * 4
        assert consumed("follow-latest", "ok") == 4
    finally:
        await stop(f.task)


async def test_several_filter_subjects(world: World) -> None:
    await world.send("a", b"a1")
    await world.send("b", b"b1")
    await world.send("c", b"c1")
    spec = FollowSpec(STREAM, (subject("a"), subject("c")), "follow-filters")
    f = await follow(world.receiver, spec)
    try:
        await eventually(lambda: len(f.handled) >= 2, timeout=10)
        await world.send("b", b"b2")
        await world.send("c", b"c2")
        await eventually(lambda: b"c2" in f.handled, timeout=10)
        assert f.handled == [b"a1", b"c1", b"c2"]
    finally:
        await stop(f.task)


async def test_tampered_and_unknown_sender_refused_and_audited_while_following(
    world: World,
) -> None:
    bus = world.receiver.bus
    audits: list[AuditEvent] = []

    async def audit_reader(message: Received) -> None:
        audits.append(from_proto(message.parse(events_pb2.AuditEvent)))

    reader = asyncio.create_task(
        bus.consume(
            ConsumerSpec.subscription("SYMBI_AUDIT", ("symbi.audit.>",), "follow-audit"),
            audit_reader,
        )
    )
    label = "follow-refusals"
    f = await follow(world.receiver, FollowSpec(STREAM, SUBJECTS, label))
    before = {r: rejected(r) for r in ("bad_signature", "unknown_sender")}
    js = world.nc.jetstream()
    try:
        await world.send("a", b"first")
        await eventually(lambda: f.handled == [b"first"], timeout=10)
        # A genuine envelope with one bit flipped in its signature (the last field).
        data = bytearray(
            world.sender.bus.seal(
                b"tampered", subject=subject("a"), topic="platform"
            ).SerializeToString(deterministic=True)
        )
        data[-1] ^= 0x01
        await js.publish(subject("a"), bytes(data))
        # A principal the cluster never certified, sealing with the group key (a leaked key).
        ghost = PrincipalKeys.generate("node-ghost")
        forged = EnvelopeSealer(ghost, bus.keyring, world.sender.bus.groups).seal_bytes(
            b"forged", subject=subject("b"), topic="platform"
        )
        await js.publish(subject("b"), forged)
        # ... and the follow goes on.
        await world.send("c", b"after")
        await eventually(lambda: f.handled == [b"first", b"after"], timeout=10)
        assert f.outcomes == ["ok", "rejected", "rejected", "ok"]
        assert rejected("bad_signature") == before["bad_signature"] + 1
        assert rejected("unknown_sender") == before["unknown_sender"] + 1
        assert consumed(label, "rejected") == 2

        def audited() -> dict[str, AuditEvent]:
            return {
                a.details["reason"]: a
                for a in audits
                if a.event_type == "bus.reject" and a.details["consumer"] == label
            }

        await eventually(
            lambda: audited().keys() >= {"bad_signature", "unknown_sender"},
            timeout=10,
            message=f"audit events {[dict(a.details) for a in audits]}",
        )
        assert audited()["unknown_sender"].details["claimed_sender"] == "node-ghost"
        assert audited()["bad_signature"].actor == "svc-receiver"
        assert not f.task.done()
    finally:
        await stop(f.task, reader)


async def test_rate_limit_applies(world: World) -> None:
    tight = await world.endpoint("svc-tight", BusSection(rate_per_sender=1.0, rate_burst=2.0))
    await eventually(lambda: tight.bus.keyring.current("svc-sender") is not None)
    before = rejected("rate_limited")
    label = "follow-rate"
    f = await follow(tight, FollowSpec(STREAM, SUBJECTS, label))
    try:
        # Distinct subjects: all five are "the latest" of theirs, whenever the consumer starts.
        for n in range(5):
            await world.send(f"r{n}", f"r{n}".encode())
        await eventually(lambda: len(f.outcomes) >= 5, timeout=10)
        assert f.handled == [b"r0", b"r1"]  # the burst of two
        assert f.outcomes == ["ok", "ok", "rejected", "rejected", "rejected"]
        assert rejected("rate_limited") == before + 3
        assert consumed(label, "rejected") == 3

        # The bucket refills at 1/s of the sender's own clock; the follow is still there.
        async def admitted_again() -> bool:
            await world.send("later", b"later")
            return b"later" in f.handled

        assert await eventually(admitted_again, timeout=10, interval=0.5)
    finally:
        await stop(f.task)


async def test_a_slow_handler_does_not_grow_the_buffer(world: World) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    handled: list[bytes] = []

    async def slow(message: Received) -> None:
        entered.set()
        await release.wait()
        handled.append(message.payload)

    spec = FollowSpec(STREAM, SUBJECTS, "follow-slow", max_pending=4)
    task = asyncio.create_task(world.receiver.bus.follow(spec, slow))
    try:
        await world.send("s0", b"s0")
        await eventually(entered.is_set, timeout=10)
        # The follow's subscription: the only one of the connection with this bound.
        (sub,) = [s for s in world.nc._subs.values() if s._pending_msgs_limit == 4]
        for n in range(1, 41):
            await world.send(f"s{n}", f"s{n}".encode())
        # Every one reached the client; at most 4 wait for the handler, the rest were dropped.
        await eventually(lambda: sub.delivered >= 41, timeout=10)
        assert sub.pending_msgs <= 4
        release.set()
        await eventually(lambda: len(handled) >= 1 + sub.pending_msgs, timeout=10)
        assert 1 < len(handled) <= 1 + 4

        # Still following.
        async def new_ones_arrive() -> bool:
            await world.send("u", b"new")
            return b"new" in handled

        assert await eventually(new_ones_arrive, timeout=10, interval=0.5)
    finally:
        await stop(task)


async def test_a_consumer_deleted_on_the_server_is_recreated(world: World) -> None:
    js = world.nc.jetstream()
    f = await follow(
        world.receiver, FollowSpec(STREAM, SUBJECTS, "follow-gone", idle_heartbeat_s=0.5)
    )
    try:
        await world.send("a", b"before")
        await eventually(lambda: b"before" in f.handled, timeout=10)
        infos = await js.consumers_info(STREAM)
        assert infos
        for info in infos:
            await js.delete_consumer(STREAM, info.name)

        # No idle heartbeats from the server any more: nats-py re-creates the consumer from
        # the next stream sequence (within about two idle-heartbeat intervals).
        async def recovered() -> bool:
            await world.send("a", b"after")
            return b"after" in f.handled

        assert await eventually(recovered, timeout=20, interval=0.5)
        assert f.handled[0] == b"before"
    finally:
        await stop(f.task)
