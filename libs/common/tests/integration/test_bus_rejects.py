"""Refused envelopes on a real NATS: counted, audited, never handled; the consumer lives on."""

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
from symbi_common.auditing.event import verify_event_signature
from symbi_common.bus import BusEndpoint, ClusterAuthority, ConsumerSpec, Received
from symbi_common.config import NatsSection
from symbi_common.crypto import EnvelopeSealer, GroupKeyring, Keyring, PrincipalKeys
from symbi_common.jetstream import Provisioner
from symbi_common.jetstream.server import NatsServerProcess
from symbi_testing import eventually


@dataclass
class Pair:
    nc: Client
    receiver: BusEndpoint
    sender: BusEndpoint


@pytest_asyncio.fixture
async def pair(nats_server: NatsServerProcess, tmp_path: Path) -> AsyncIterator[Pair]:
    authority = ClusterAuthority.open(tmp_path / "keys")
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await Provisioner(js, NatsSection()).provision()
    receiver = await BusEndpoint.open(nc, js, authority.issue("svc-receiver", "service"))
    sender = await BusEndpoint.open(
        nc, js, authority.issue("svc-sender", "service"), manage_topics=()
    )
    loops = [asyncio.create_task(e.run()) for e in (receiver, sender)]
    await eventually(lambda: receiver.bus.keyring.current("svc-sender") is not None)
    await eventually(lambda: receiver.bus.groups.latest("platform") is not None, timeout=15)
    try:
        yield Pair(nc, receiver, sender)
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await nc.close()


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("symbi_bus_rejected_total", {"reason": reason}) or 0.0


async def test_forged_garbage_and_replayed_envelopes_are_refused_and_audited(pair: Pair) -> None:
    bus = pair.receiver.bus
    handled: list[str] = []
    audits: list[AuditEvent] = []

    async def handle(message: Received) -> None:
        handled.append(message.payload.decode())

    async def audit_reader(message: Received) -> None:
        event = from_proto(message.parse(events_pb2.AuditEvent))
        # Every audit event is signed by its publisher (here: the receiver that refused).
        assert verify_event_signature(event, bus.keys.ed25519_public)
        audits.append(event)

    consumers = [
        asyncio.create_task(bus.consume(ConsumerSpec.direct("svc-receiver"), handle)),
        asyncio.create_task(
            bus.consume(
                ConsumerSpec.subscription("SYMBI_AUDIT", ("symbi.audit.>",), "audit-reader"),
                audit_reader,
            )
        ),
    ]
    before = {r: rejected(r) for r in ("malformed", "unknown_sender", "replay", "bad_signature")}
    try:
        js = pair.nc.jetstream()
        subject = "symbi.direct.svc-receiver"
        # 1. garbage
        await js.publish(subject, b"\x00garbage\xff")
        # 2. forged: a key our root never certified, claiming to be svc-sender (it knows the
        #    recipient's public certificate, as anyone reading the keyring does)
        mallory = PrincipalKeys.generate("svc-sender")
        ring = Keyring(bus.keyring.root)
        ring.add_certificate(bus.keyring.current("svc-receiver"))  # type: ignore[arg-type]
        forged = EnvelopeSealer(mallory, ring, GroupKeyring()).seal_bytes(
            b"forged", subject=subject, recipient="svc-receiver"
        )
        await js.publish(subject, forged)
        # 3. a genuine message, then the same envelope replayed under a new NATS message id
        genuine = pair.sender.bus.seal(b"genuine", subject=subject, recipient="svc-receiver")
        data = genuine.SerializeToString(deterministic=True)
        await js.publish(subject, data, headers={"Nats-Msg-Id": genuine.id})
        await eventually(lambda: handled == ["genuine"], timeout=10)
        await js.publish(subject, data, headers={"Nats-Msg-Id": genuine.id + "-replay"})
        # 4. a tampered copy of a genuine message
        tampered = pair.sender.bus.seal(b"changed", subject=subject, recipient="svc-receiver")
        tampered.ttl_ms += 1
        await js.publish(subject, tampered.SerializeToString(deterministic=True))
        # ... and the consumer still handles what comes next.
        await pair.sender.bus.send("svc-receiver", b"after")
        await eventually(
            lambda: handled == ["genuine", "after"], timeout=10, message=f"handled {handled}"
        )
        await eventually(lambda: rejected("replay") == before["replay"] + 1, timeout=5)
        for reason in ("malformed", "unknown_sender", "bad_signature"):
            assert rejected(reason) == before[reason] + 1, reason
        await eventually(
            lambda: (
                {a.details["reason"] for a in audits if a.event_type == "bus.reject"}
                >= {"malformed", "unknown_sender", "replay", "bad_signature"}
            ),
            timeout=10,
            message=f"audit events {[dict(a.details) for a in audits]}",
        )
        forged_audit = next(a for a in audits if a.details["reason"] == "unknown_sender")
        assert forged_audit.actor == "svc-receiver"
        assert forged_audit.details["claimed_sender"] == "svc-sender"
    finally:
        for consumer in consumers:
            consumer.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
