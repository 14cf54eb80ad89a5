"""NKey authentication and role permissions, enforced by the NATS server itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from symbi_common.bus import ClusterAuthority
from symbi_common.bus.credentials import nkey_public
from symbi_common.bus.permissions import NatsUser, authorization_block, inbox_prefix
from symbi_common.jetstream.server import NatsServerConfig, NatsServerProcess
from symbi_testing import eventually


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[NatsServerProcess, dict[str, str]]]:
    authority = ClusterAuthority.open(tmp_path / "keys")
    seeds = {}
    users = []
    for principal, role in (("svc-a", "service"), ("node-1", "node"), ("agent-1", "agent")):
        credentials = authority.issue(principal, role)
        assert credentials.nkey_seed is not None
        seeds[principal] = credentials.nkey_seed
        users.append(NatsUser(principal, role, nkey_public(credentials.nkey_seed)))
    server = NatsServerProcess(
        NatsServerConfig(store_dir=tmp_path / "nats", extra=authorization_block(users))
    )
    server.start()
    try:
        yield server, seeds
    finally:
        server.stop()


async def connect_as(
    server: NatsServerProcess, principal: str, seed: str, errors: list[str]
) -> Client:
    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    return await nats.connect(
        server.url,
        nkeys_seed_str=seed,
        inbox_prefix=inbox_prefix(principal),
        error_cb=on_error,
        allow_reconnect=False,
    )


async def test_agent_cannot_publish_tasks_or_read_audit(
    secured: tuple[NatsServerProcess, dict[str, str]],
) -> None:
    server, seeds = secured
    errors: list[str] = []
    agent = await connect_as(server, "agent-1", seeds["agent-1"], errors)
    try:
        await agent.publish("symbi.task.node-1", b"run this")
        await agent.flush()
        await eventually(lambda: any("symbi.task.node-1" in e for e in errors), timeout=5)
        assert any("permissions violation" in e.lower() for e in errors)

        await agent.subscribe("symbi.audit.>")
        await agent.flush()
        await eventually(lambda: any("symbi.audit.>" in e for e in errors), timeout=5)

        # What the role allows goes through without complaint: the service receives it.
        service = await connect_as(server, "svc-a", seeds["svc-a"], errors)
        try:
            inbox = await service.subscribe("symbi.direct.svc-a")
            await service.flush()
            before = len(errors)
            await agent.publish("symbi.direct.svc-a", b"hi")
            assert (await inbox.next_msg(timeout=5)).data == b"hi"
            assert not any("symbi.direct.svc-a" in e for e in errors[before:])
        finally:
            await service.close()
    finally:
        await agent.close()


async def test_node_may_only_heartbeat_as_itself(
    secured: tuple[NatsServerProcess, dict[str, str]],
) -> None:
    server, seeds = secured
    errors: list[str] = []
    node = await connect_as(server, "node-1", seeds["node-1"], errors)
    try:
        await node.publish("symbi.node.heartbeat.node-2", b"spoof")
        await node.flush()
        await eventually(lambda: any("symbi.node.heartbeat.node-2" in e for e in errors), timeout=5)
        await node.subscribe("symbi.direct.svc-a")  # another principal's direct messages
        await node.flush()
        await eventually(lambda: any("symbi.direct.svc-a" in e for e in errors), timeout=5)
    finally:
        await node.close()


async def test_service_may_read_audit(secured: tuple[NatsServerProcess, dict[str, str]]) -> None:
    server, seeds = secured
    errors: list[str] = []
    service = await connect_as(server, "svc-a", seeds["svc-a"], errors)
    try:
        sub = await service.subscribe("symbi.audit.>")
        await service.publish("symbi.audit.test", b"ok")
        message = await sub.next_msg(timeout=5)
        assert message.data == b"ok"
        assert errors == []
    finally:
        await service.close()


async def test_connection_without_credentials_is_refused(
    secured: tuple[NatsServerProcess, dict[str, str]],
) -> None:
    server, _ = secured
    with pytest.raises(Exception, match=r"(?i)authorization|no servers"):
        await nats.connect(
            server.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2
        )


async def test_only_nodes_publish_task_output(
    secured: tuple[NatsServerProcess, dict[str, str]],
) -> None:
    server, seeds = secured
    errors: list[str] = []
    service = await connect_as(server, "svc-a", seeds["svc-a"], errors)
    node = await connect_as(server, "node-1", seeds["node-1"], errors)
    agent = await connect_as(server, "agent-1", seeds["agent-1"], errors)
    try:
        sub = await service.subscribe("symbi.task.output.*")
        await service.flush()
        await node.publish("symbi.task.output.t1", b"stdout bytes")
        message = await sub.next_msg(timeout=5)  # the node's output reaches services
        assert (message.subject, message.data) == ("symbi.task.output.t1", b"stdout bytes")

        await agent.publish("symbi.task.output.t1", b"forged output")
        await agent.flush()
        await eventually(lambda: any("symbi.task.output.t1" in e for e in errors), timeout=5)
        assert any("permissions violation" in e.lower() for e in errors)
        assert all("node-1" not in e for e in errors)
    finally:
        for client in (agent, node, service):
            await client.close()
