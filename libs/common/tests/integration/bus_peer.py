"""A bus principal in its own process, for the two-process tests.

    python bus_peer.py NATS_URL KEYS_DIR PRINCIPAL MODE [ARGS…]

Modes: ``direct`` (print direct messages), ``subscribe SUBJECT DURABLE``, ``serve SUBJECT``
(answer ``echo:<payload>``), ``work STREAM SUBJECT GROUP`` (take work-queue messages).
Prints ``READY`` once consuming, then ``GOT <sender> <payload>`` per message.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import nats

from symbi_common.bus import BusEndpoint, ConsumerSpec, Received, load_credentials
from symbi_common.bus.permissions import inbox_prefix


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(url: str, keys_dir: str, principal: str, mode: str, *args: str) -> None:
    credentials = load_credentials(Path(keys_dir), principal)
    nc = await nats.connect(
        url, nkeys_seed_str=credentials.nkey_seed, inbox_prefix=inbox_prefix(principal)
    )
    endpoint = await BusEndpoint.open(nc, nc.jetstream(), credentials, manage_topics=())
    bus = endpoint.bus
    keys_task = asyncio.create_task(endpoint.run())

    async def show(message: Received) -> None:
        say(f"GOT {message.sender} {message.payload.decode()}")

    if mode == "direct":
        spec = ConsumerSpec.direct(principal)
    elif mode == "subscribe":
        spec = ConsumerSpec.subscription("SYMBI_EVENTS", (args[0],), args[1])
    elif mode == "work":
        spec = ConsumerSpec.work_queue(args[0], args[1], args[2])
    elif mode == "serve":

        async def echo(message: Received) -> bytes:
            say(f"GOT {message.sender} {message.payload.decode()}")
            return b"echo:" + message.payload

        serving = asyncio.create_task(bus.serve(args[0], echo, queue="peers"))
        await nc.flush()
        say("READY")
        await asyncio.gather(serving, keys_task)
        return
    else:
        raise SystemExit(f"unknown mode {mode}")
    await bus.ensure_consumer(spec)
    say("READY")
    await asyncio.gather(bus.consume(spec, show, batch=16), keys_task)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
