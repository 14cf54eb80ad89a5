"""A trace started by a sender continues in the receiver's handler, across the bus."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from symbi_common.bus import BusEndpoint, ClusterAuthority, ConsumerSpec, Received
from symbi_common.config import NatsSection
from symbi_common.jetstream import Provisioner
from symbi_common.jetstream.server import NatsServerProcess
from symbi_testing import eventually


def tracer_provider() -> trace.TracerProvider:
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider()
    trace.set_tracer_provider(provider)
    return provider


async def test_trace_context_crosses_the_bus(
    nats_server: NatsServerProcess, tmp_path: Path
) -> None:
    provider = tracer_provider()
    authority = ClusterAuthority.open(tmp_path / "keys")
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await Provisioner(js, NatsSection()).provision()
    receiver = await BusEndpoint.open(nc, js, authority.issue("svc-r", "service"), manage_topics=())
    sender = await BusEndpoint.open(nc, js, authority.issue("svc-s", "service"), manage_topics=())
    loops = [asyncio.create_task(e.run()) for e in (receiver, sender)]
    seen: list[tuple[int, int]] = []

    async def handle(message: Received) -> None:
        context = trace.get_current_span().get_span_context()
        seen.append((context.trace_id, context.span_id))

    consumer = asyncio.create_task(receiver.bus.consume(ConsumerSpec.direct("svc-r"), handle))
    try:
        await eventually(lambda: sender.bus.keyring.current("svc-r") is not None)
        with provider.get_tracer("test").start_as_current_span("request") as span:
            await sender.bus.send("svc-r", b"traced")
            sent = span.get_span_context()
        await sender.bus.send("svc-r", b"untraced")
        await eventually(lambda: len(seen) == 2, timeout=10)
        assert seen[0][0] == sent.trace_id  # the same trace...
        assert seen[0][1] != sent.span_id  # ...in a consumer span of its own
        assert seen[1][0] == 0  # no trace, no span
    finally:
        for task in (consumer, *loops):
            task.cancel()
        await asyncio.gather(consumer, *loops, return_exceptions=True)
        await nc.close()
