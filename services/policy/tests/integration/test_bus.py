"""The policy service on the secure bus (contract C1): decisions through
symbi_common.policy_client, writes from services only, audit events and PolicyChanged."""

from __future__ import annotations

import asyncio
import json

from nats.js import api as js_api

from symbi.bus.v1 import events_pb2
from symbi.policy.v1 import policy_pb2
from symbi_common.auditing import from_proto
from symbi_common.auditing.event import verify_event_signature
from symbi_common.bus import BusEndpoint, ConsumerSpec, Received
from symbi_common.errors import (
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from symbi_common.jetstream.server import NatsServerProcess
from symbi_common.policy_client import EntityRef, PolicyClient, PolicyDecision, PolicyQuestion
from symbi_policy.events import (
    DELETE_ENTITIES_SUBJECT,
    DELETE_POLICY_SUBJECT,
    PUT_ENTITIES_SUBJECT,
    PUT_POLICY_SUBJECT,
)
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

from .conftest import BASE, ENTITIES, Replica, entity, expect_error, open_endpoint

PUBLISH = PolicyQuestion(EntityRef("Agent", "a"), "publish", EntityRef("Topic", "t"))
SECRET = PolicyQuestion(EntityRef("Agent", "a"), "publish", EntityRef("Topic", "secret"))


async def _load_over_the_bus(caller: BusEndpoint) -> int:
    """Store the base set over the bus; retried by ``eventually`` until the policy replica
    holds the caller's generation of the platform key (it rotated when the caller joined)."""
    request = policy_pb2.PutEntitiesRequest(entities=[entity(e) for e in ENTITIES])
    try:
        await caller.bus.request(PUT_ENTITIES_SUBJECT, request, topic="platform", timeout=2)
    except (DeadlineExceeded, Unavailable) as exc:
        raise AssertionError(f"no answer yet: {exc.message}") from None
    put = policy_pb2.PutPolicyRequest(id="base", source=BASE)
    reply = await caller.bus.request(PUT_POLICY_SUBJECT, put, topic="platform", timeout=5)
    response = reply.parse(policy_pb2.PutPolicyResponse)
    assert response.policy.updated_by == caller.bus.principal_id
    return int(response.policy.version)


async def _allowed(client: PolicyClient) -> PolicyDecision | None:
    decision = await client.evaluate(PUBLISH)
    return decision if decision.allowed else None


async def test_decisions_through_the_policy_client(replica: Replica, caller: BusEndpoint) -> None:
    version = await eventually(lambda: _load_over_the_bus(caller), timeout=15)
    client = PolicyClient(caller.bus, timeout_s=5)
    allowed = await client.evaluate(PUBLISH)
    assert allowed.allowed
    assert allowed.decision == "allow"
    assert allowed.policies == ("trusted-publish",)
    assert allowed.version == version
    denied = await client.evaluate(SECRET)
    assert not denied.allowed
    assert not denied.fail_closed
    assert denied.reasons == ("topic secret is off limits",)
    assert denied.policies == ("no-secret",)
    batch = await client.evaluate_batch([PUBLISH, SECRET, PUBLISH])
    assert [d.allowed for d in batch] == [True, False, True]
    # The bus carries the service's errors, with the problem's position.
    bad = policy_pb2.PutPolicyRequest(id="bad", source="permit(principal, action, resource")
    error = await expect_error(
        caller.bus.request(PUT_POLICY_SUBJECT, bad, topic="platform", timeout=5)
    )
    assert isinstance(error, InvalidArgument)
    assert (error.details["line"], error.details["column"]) == ("1", "35")
    gone = policy_pb2.DeletePolicyRequest(id="nope")
    error = await expect_error(
        caller.bus.request(DELETE_POLICY_SUBJECT, gone, topic="platform", timeout=5)
    )
    assert isinstance(error, NotFound)
    # Deleting an entity over the bus: the agent becomes unknown, so it is denied.
    uids = policy_pb2.DeleteEntitiesRequest(uids=[policy_pb2.EntityRef(type="Agent", id="a")])
    await caller.bus.request(DELETE_ENTITIES_SUBJECT, uids, topic="platform", timeout=5)
    after = await client.evaluate(PUBLISH)
    assert not after.allowed
    assert "unknown principal" in after.reasons[0]
    # With no replica left, the client denies and says why.
    replica.process.kill()
    closed = await PolicyClient(caller.bus, timeout_s=1).evaluate(PUBLISH)
    assert not closed.allowed
    assert closed.fail_closed
    assert "policy service unavailable" in closed.reason_text()


async def test_writes_only_from_services_and_agents_ask_only_about_themselves(
    replica: Replica, caller: BusEndpoint, nats_server: NatsServerProcess, services: ServiceCluster
) -> None:
    await eventually(lambda: _load_over_the_bus(caller), timeout=15)
    node, node_task, node_nc = await open_endpoint(nats_server, services, "node-n1", "node")
    agent, agent_task, agent_nc = await open_endpoint(nats_server, services, "a", "agent")
    try:
        await eventually(lambda: node.bus.groups.latest("platform") is not None, timeout=15)
        # A node may ask for decisions, not write. (Its joining rotated the platform key:
        # until the replica holds the new generation, the client fails closed.)
        client = PolicyClient(node.bus, timeout_s=1)
        decision = await eventually(lambda: _allowed(client), timeout=15)
        assert decision.policies == ("trusted-publish",)
        put = policy_pb2.PutPolicyRequest(id="evil", source=BASE.replace("no-secret", "x"))
        error = await expect_error(
            node.bus.request(PUT_POLICY_SUBJECT, put, topic="platform", timeout=5)
        )
        assert isinstance(error, PermissionDenied)
        assert "services only" in error.message

        # An agent is not on the platform topic: it asks a replica directly, about itself.
        policy_principal = replica.process.env["SYMBI_INSTANCE_ID"]
        recipient = f"svc-policy-{policy_principal}"
        await eventually(lambda: agent.bus.keyring.current(recipient) is not None, timeout=15)
        mine = policy_pb2.EvaluateRequest(request=PUBLISH.to_proto())
        reply = await agent.bus.request(
            "symbi.rpc.policy.evaluate", mine, recipient=recipient, timeout=5
        )
        assert reply.parse(policy_pb2.EvaluateResponse).result.decision == (
            policy_pb2.DECISION_ALLOW
        )
        other = PolicyQuestion(EntityRef("Agent", "b"), "publish", EntityRef("Topic", "t"))
        theirs = policy_pb2.EvaluateRequest(request=other.to_proto())
        error = await expect_error(
            agent.bus.request("symbi.rpc.policy.evaluate", theirs, recipient=recipient, timeout=5)
        )
        assert isinstance(error, PermissionDenied)
    finally:
        for task, nc in ((node_task, node_nc), (agent_task, agent_nc)):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await nc.close()


async def test_denies_and_changes_are_audited_and_announced(
    replica: Replica, caller: BusEndpoint
) -> None:
    audit: list[events_pb2.AuditEvent] = []
    changes: list[events_pb2.PolicyChanged] = []

    async def on_audit(message: Received) -> None:
        audit.append(message.parse(events_pb2.AuditEvent))

    async def on_change(message: Received) -> None:
        changes.append(message.parse(events_pb2.PolicyChanged))

    audit_spec = ConsumerSpec.subscription(
        "SYMBI_AUDIT", ("symbi.audit.>",), "test-audit", deliver_policy=js_api.DeliverPolicy.ALL
    )
    change_spec = ConsumerSpec.subscription(
        "SYMBI_EVENTS",
        ("symbi.policy.changed",),
        "test-changes",
        deliver_policy=js_api.DeliverPolicy.ALL,
    )
    async with asyncio.TaskGroup() as tasks:
        consumers = [
            tasks.create_task(caller.bus.consume(audit_spec, on_audit)),
            tasks.create_task(caller.bus.consume(change_spec, on_change)),
        ]
        version = await eventually(lambda: _load_over_the_bus(caller), timeout=15)
        client = PolicyClient(caller.bus, timeout_s=5)
        assert not (await client.evaluate(SECRET)).allowed
        assert (await client.evaluate(PUBLISH)).allowed  # allows are not audited by default

        def decisions() -> list[dict[str, object]]:
            found = [json.loads(e.details_json) for e in audit if e.event_type == "policy.decision"]
            assert found, [e.event_type for e in audit]
            return found

        found = await eventually(decisions, timeout=10)
        assert len(found) == 1
        deny = found[0]
        assert deny["decision"] == "deny"
        assert deny["action"] == "publish"
        assert deny["resource"] == 'Symbi::Topic::"secret"'
        assert deny["principal"] == 'Symbi::Agent::"a"'
        assert deny["policies"] == ["no-secret"]
        assert deny["reason"] == "topic secret is off limits"
        assert deny["version"] == version
        event = next(e for e in audit if e.event_type == "policy.decision")
        assert event.agent_id == "a"
        assert event.actor == "svc-policy-a"
        certificate = caller.bus.keyring.current("svc-policy-a")
        assert certificate is not None
        assert verify_event_signature(from_proto(event), certificate.proto.ed25519_public_key)

        # Writes: a policy.changed audit event and a PolicyChanged announcement each.
        await eventually(lambda: len(changes) >= 2, timeout=10)
        put = next(c for c in changes if "base" in c.changed_ids)
        assert put.version == version
        assert put.actor == caller.bus.principal_id
        entities = next(c for c in changes if c.changed_ids[0].startswith("entity:"))
        assert 'entity:Symbi::Agent::"a"' in entities.changed_ids
        changed = [json.loads(e.details_json) for e in audit if e.event_type == "policy.changed"]
        assert {"put", "entities_put"} <= {c["change"] for c in changed}
        assert any(c.get("policy_id") == "base" for c in changed)
        for consumer in consumers:
            consumer.cancel()
