"""Batch consumption: a batch is acknowledged only after its handler returns."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats

from symbi_common.bus import BusEndpoint, ClusterAuthority, ConsumerSpec, Received
from symbi_common.config import NatsSection
from symbi_common.errors import Unavailable
from symbi_common.jetstream import Provisioner
from symbi_common.jetstream.server import NatsServerProcess
from symbi_testing import eventually


async def test_failed_batch_is_redelivered_whole_then_acked(
    nats_server: NatsServerProcess, tmp_path: Path
) -> None:
    authority = ClusterAuthority.open(tmp_path / "keys")
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await Provisioner(js, NatsSection()).provision()
    receiver = await BusEndpoint.open(nc, js, authority.issue("svc-r", "service"), manage_topics=())
    sender = await BusEndpoint.open(nc, js, authority.issue("svc-s", "service"), manage_topics=())
    loops = [asyncio.create_task(e.run()) for e in (receiver, sender)]
    await eventually(lambda: sender.bus.keyring.current("svc-r") is not None)
    for i in range(10):
        await sender.bus.send("svc-r", f"m{i}".encode())
    batches: list[list[str]] = []
    durable: list[str] = []

    async def handle(batch: list[Received]) -> None:
        batches.append([m.payload.decode() for m in batch])
        if len(batches) == 1:
            raise Unavailable("disk not ready")  # retryable: nothing is acked
        durable.extend(m.payload.decode() for m in batch)

    consumer = asyncio.create_task(
        receiver.bus.consume_batches(ConsumerSpec.direct("svc-r"), handle, batch=50)
    )
    try:
        await eventually(lambda: sorted(durable) == sorted(f"m{i}" for i in range(10)), timeout=15)
        assert len(batches[0]) == 10
        info = await js.consumer_info("SYMBI_DIRECT", "direct-svc-r")
        assert info.num_ack_pending == 0
        assert info.num_pending == 0
    finally:
        for task in (consumer, *loops):
            task.cancel()
        await asyncio.gather(consumer, *loops, return_exceptions=True)
        await nc.close()
