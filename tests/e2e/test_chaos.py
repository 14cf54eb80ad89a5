"""Chaos: kill -9 of NATS and of a service under load loses no accepted work.

A publisher (its own principal, in this process) keeps publishing signed audit events over
the secure bus. Meanwhile nats-server is killed with SIGKILL and restarted on the same port,
then the audit service is killed with SIGKILL and restarted. Every event whose publish was
acknowledged by JetStream must end up in the audit log exactly once, and the log verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import grpc
import nats

from symbi.audit.v1 import audit_pb2, audit_pb2_grpc
from symbi_common.bus import BusEndpoint
from symbi_common.bus.permissions import inbox_prefix
from symbi_common.jetstream.server import NatsServerProcess
from symbi_testing import ServiceCluster, eventually


async def audit_count(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        status = await audit_pb2_grpc.AuditServiceStub(channel).GetStatus(
            audit_pb2.GetStatusRequest(), timeout=5
        )
        return int(status.size)


async def test_no_acknowledged_audit_event_is_lost_to_kill_9(
    nats_server: NatsServerProcess, services: ServiceCluster, tmp_path: Path
) -> None:
    audit = await services.start_serving("audit", instance="a")
    credentials = services.authority.issue("svc-chaos-publisher", "service")
    nc = await nats.connect(
        nats_server.url,
        nkeys_seed_str=credentials.nkey_seed,
        inbox_prefix=inbox_prefix("svc-chaos-publisher"),
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
    )
    endpoint = await BusEndpoint.open(nc, nc.jetstream(), credentials)
    keys = asyncio.create_task(endpoint.run())
    acknowledged: list[str] = []
    stop = asyncio.Event()

    async def publish_forever() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            try:
                event = await endpoint.bus.recorder.record("chaos.tick", details={"n": number})
            except Exception:  # NATS is down: not acknowledged, so not owed
                await asyncio.sleep(0.05)
                continue
            acknowledged.append(str(event.event_id))

    publisher = asyncio.create_task(publish_forever())
    try:
        await eventually(lambda: len(acknowledged) >= 100, timeout=60)
        # 1. NATS dies (SIGKILL) under load and comes back on the same port.
        await asyncio.to_thread(nats_server.kill)
        await asyncio.to_thread(nats_server.start)
        before = len(acknowledged)
        await eventually(
            lambda: len(acknowledged) >= before + 100, timeout=60, message="publishing resumed"
        )
        # 2. The audit service dies (SIGKILL) mid-ingest and is restarted on the same data.
        audit.kill()
        audit = await services.start_serving("audit", instance="a")
        before = len(acknowledged)
        await eventually(lambda: len(acknowledged) >= before + 100, timeout=60)
    finally:
        stop.set()
        await publisher
    # Everything acknowledged is in the log, once.
    address = audit.grpc_address
    assert address is not None
    total = len(acknowledged)
    print(f"acknowledged {total} events across a NATS kill and an audit kill")

    async def logged_ticks() -> list[str]:
        found: list[str] = []
        token = ""
        async with grpc.aio.insecure_channel(address) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            while True:
                page = await stub.Query(
                    audit_pb2.QueryRequest(
                        event_type="chaos.tick", page={"page_size": 1000, "page_token": token}
                    ),
                    timeout=30,
                )
                found.extend(entry.event.event_id for entry in page.entries)
                token = page.page.next_page_token
                if not token:
                    return found

    async def all_logged() -> bool:
        found = set(await logged_ticks())
        missing = set(acknowledged) - found
        assert not missing, (
            f"{len(missing)} acknowledged events not (yet) in the log, e.g. {sorted(missing)[:3]}"
        )
        return True

    await eventually(all_logged, timeout=120, interval=1.0)
    ticks = await logged_ticks()
    assert len(ticks) == len(set(ticks)), "an event was logged twice"
    async with grpc.aio.insecure_channel(address) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        verified = await stub.Verify(audit_pb2.VerifyRequest(), timeout=60)
        assert verified.ok, verified.problem
    keys.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await keys
    await nc.close()


async def _at_least(value: object, want: int) -> bool:
    got = await value  # type: ignore[misc]
    assert got >= want, f"{got} of {want}"
    return True
