"""Agents call a chosen gateway replica over the bus (contract C4, several replicas).

An agent principal is not a member of the ``platform`` topic: it encrypts each request to one
replica's principal, and only that replica can open it. In the shared queue group another
replica could receive it; each replica therefore also serves its own subjects
``symbi.rpc.mcp.<principal>.invoke`` / ``.list_tools``. Real processes: NATS, the policy
service, two gateway replicas with ``mcp-server-time``; the agent is a real bus principal.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable
from typing import Any

import nats
import pytest

from symbi.bus.v1 import events_pb2
from symbi.mcp_gateway.v1 import mcp_gateway_pb2 as pb
from symbi_common.bus import BusEndpoint, ClusterAuthority
from symbi_common.bus.credentials import nkey_public
from symbi_common.bus.permissions import NatsUser, authorization_block, inbox_prefix
from symbi_common.errors import DeadlineExceeded, Unavailable
from symbi_common.jetstream.server import NatsServerConfig, NatsServerProcess
from symbi_common.launcher import ServiceProcess
from symbi_mcp_gateway import canonical_json
from symbi_mcp_gateway.events import (
    INVOKE,
    INVOKE_SUBJECT,
    LIST_TOOLS,
    replica_principals,
    replica_subject,
)
from symbi_testing.eventually import eventually
from symbi_testing.services import ServiceCluster

from .conftest import BusLog, gateway_env, time_server

CALLS_PER_REPLICA = 20
TOKYO = {"timezone": "Asia/Tokyo"}
REPLICAS = ("a", "b")


def _principal(instance: str) -> str:
    return f"svc-mcp-gateway-{instance}"


def _audited_by(
    bus_log: BusLog, event_type: str, **details: Any
) -> list[tuple[str, dict[str, Any]]]:
    """(signing replica, details) of the audit events of a type whose details match."""
    found = []
    for received in list(bus_log.messages):
        if not received.subject.startswith("symbi.audit."):
            continue
        event = received.parse(events_pb2.AuditEvent)
        data = json.loads(event.details_json or "{}")
        if event.event_type == event_type and all(data.get(k) == v for k, v in details.items()):
            found.append((received.sender, {**data, "_agent_id": event.agent_id}))
    return found


def _clock(agent_id: str = "", arguments: dict[str, str] | None = None) -> pb.InvokeToolRequest:
    return pb.InvokeToolRequest(
        agent_id=agent_id,
        server="time",
        tool="get_current_time",
        arguments_json=json.dumps(arguments or {"timezone": "UTC"}),
    )


async def _start_replicas(services: ServiceCluster) -> dict[str, ServiceProcess]:
    env = gateway_env([time_server()])
    started = await asyncio.gather(
        *(services.start_serving("mcp-gateway", instance=i, env=env) for i in REPLICAS)
    )
    return {_principal(i): process for i, process in zip(REPLICAS, started, strict=True)}


async def _invoke(alice: BusEndpoint, replica: str, timeout: float = 15) -> Any:
    return await alice.bus.request(
        replica_subject(replica, INVOKE), _clock(), recipient=replica, timeout=timeout
    )


async def _until_each_replica_knows(alice: BusEndpoint, replicas: Iterable[str]) -> None:
    """Until alice and each replica have each other's certificates (keyrings follow KV)."""
    for replica in replicas:

        async def answered(replica: str = replica) -> Any:
            try:
                return await _invoke(alice, replica, timeout=3)
            except (Unavailable, DeadlineExceeded) as exc:
                raise AssertionError(exc.message) from None

        await eventually(answered, timeout=20, message=f"{replica} answers alice")


async def test_an_agent_reaches_each_replica_on_its_own_subject_every_time(
    services: ServiceCluster,
    policy_service: ServiceProcess,
    principals: Any,
    bus_log: BusLog,
) -> None:
    replicas = await _start_replicas(services)
    alice: BusEndpoint = await principals("agent-alice", "agent")

    # The agent finds the replicas in the keyring.
    assert replica_principals(alice.bus.keyring) == sorted(replicas)

    await _until_each_replica_knows(alice, replicas)

    answered: dict[str, int] = dict.fromkeys(replicas, 0)
    for replica in replicas:
        for _ in range(CALLS_PER_REPLICA):
            reply = await _invoke(alice, replica)
            assert reply.sender == replica  # answered by the replica it was sealed for
            result = reply.parse(pb.InvokeToolResponse)
            assert not result.is_error
            assert result.structured_content["timezone"] == "UTC"
            listing = await alice.bus.request(
                replica_subject(replica, LIST_TOOLS),
                pb.ListToolsRequest(),
                recipient=replica,
                timeout=15,
            )
            assert listing.sender == replica
            names = sorted(t.name for t in listing.parse(pb.ListToolsResponse).tools)
            assert names == ["convert_time", "get_current_time"]
            answered[replica] += 1
    assert answered == dict.fromkeys(replicas, CALLS_PER_REPLICA)

    # Every call was audited by the replica that served it, for alice, as a bus call.
    def audited() -> dict[str, int]:
        calls = _audited_by(bus_log, "mcp.tool_call", via="bus", outcome="ok", caller="agent-alice")
        per_replica = {name: sum(1 for by, _ in calls if by == name) for name in replicas}
        assert all(n >= CALLS_PER_REPLICA for n in per_replica.values()), per_replica
        assert {call["_agent_id"] for _, call in calls} == {"agent-alice"}
        return per_replica

    await eventually(audited, timeout=15, message="every call audited")

    # Nodes and services keep the shared queue-group subject (topic platform, any replica).
    node: BusEndpoint = await principals("node-test", "node")
    reply = await node.bus.request(
        INVOKE_SUBJECT, _clock("agent-alice"), topic="platform", timeout=15
    )
    assert reply.sender in replicas
    # ... and may address one replica too.
    for replica in replicas:
        reply = await node.bus.request(
            replica_subject(replica, INVOKE), _clock("agent-alice"), topic="platform", timeout=15
        )
        assert reply.sender == replica


async def test_a_request_sealed_for_one_replica_sent_to_another_is_refused_not_answered(
    services: ServiceCluster,
    policy_service: ServiceProcess,
    principals: Any,
    bus_log: BusLog,
) -> None:
    replicas = await _start_replicas(services)
    a, b = sorted(replicas)
    alice: BusEndpoint = await principals("agent-alice", "agent")
    await _until_each_replica_knows(alice, replicas)

    # Sealed for a, sent to b's subject: b cannot open it. It does not answer (no error that
    # could pass for the gateway's verdict); the caller's deadline passes.
    misrouted = replica_subject(b, INVOKE)
    with pytest.raises(DeadlineExceeded, match=misrouted):
        await alice.bus.request(misrouted, _clock(arguments=TOKYO), recipient=a, timeout=1.5)
    with pytest.raises(DeadlineExceeded):
        await alice.bus.request(
            replica_subject(b, LIST_TOOLS), pb.ListToolsRequest(), recipient=a, timeout=1.5
        )

    # b refused it on the bus, audited under its own name, and never made the call.
    refusals = await eventually(
        lambda: _audited_by(bus_log, "bus.reject", subject=misrouted),
        timeout=10,
        message="b audits the refusal",
    )
    assert {by for by, _ in refusals} == {b}
    assert refusals[0][1]["claimed_sender"] == "agent-alice"
    # Neither replica made the call (its arguments appear in no call's audit event).
    misrouted_args = "sha256:" + hashlib.sha256(canonical_json(TOKYO).encode()).hexdigest()
    assert not _audited_by(bus_log, "mcp.tool_call", arguments_sha256=misrouted_args)

    # Both processes live on and answer what is theirs.
    assert all(process.returncode is None for process in replicas.values())
    for replica in replicas:
        assert (await _invoke(alice, replica)).sender == replica

    # A replica that is not running answers at once: nobody serves its subject.
    with pytest.raises(Unavailable) as nobody:
        await alice.bus.request(
            replica_subject(_principal("gone"), INVOKE), _clock(), recipient=a, timeout=5
        )
    assert nobody.value.reason == "NO_RESPONDERS"


# ---- the NATS server's permissions for role agent


@pytest.fixture
def secured_nats(tmp_path: Any) -> Any:
    """A NATS server that enforces the platform's role permissions (as ``symbi up`` writes)."""
    authority = ClusterAuthority.open(tmp_path / "keys")
    seeds = {}
    users = []
    for principal, role in ((_principal("a"), "service"), ("agent-alice", "agent")):
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


async def test_role_agent_may_request_a_replica_subject_and_read_the_reply(
    secured_nats: Any,
) -> None:
    server, seeds = secured_nats
    replica = _principal("a")
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    gateway = await nats.connect(
        server.url,
        nkeys_seed_str=seeds[replica],
        inbox_prefix=inbox_prefix(replica),
        allow_reconnect=False,
    )
    agent = await nats.connect(
        server.url,
        nkeys_seed_str=seeds["agent-alice"],
        inbox_prefix=inbox_prefix("agent-alice"),
        error_cb=on_error,
        allow_reconnect=False,
    )
    try:
        for method in (INVOKE, LIST_TOOLS):

            async def answer(msg: Any) -> None:
                await msg.respond(b"ok:" + msg.data)

            sub = await gateway.subscribe(
                replica_subject(replica, method), queue=replica, cb=answer
            )
            await gateway.flush()
            reply = await agent.request(replica_subject(replica, method), b"hi", timeout=5)
            assert reply.data == b"ok:hi"
            await sub.unsubscribe()
        assert not [e for e in errors if "permissions violation" in e.lower()], errors
    finally:
        await agent.close()
        await gateway.close()
