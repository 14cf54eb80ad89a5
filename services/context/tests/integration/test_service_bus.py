"""Contract C4 on the bus: nodes vouch for the agent they run; agents act as themselves.

A node principal (role ``node``, a member of the platform topic) asks for an agent's memory
on ``symbi.rpc.context.retrieve``; an agent principal (role ``agent``) asks for its own, and
is refused — and audited — when it claims another agent's id. Without a policy service a
write over the bus cannot be decided and fails closed (UNAVAILABLE, retryable).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from nats.js.api import DeliverPolicy

from symbi.bus.v1 import events_pb2
from symbi.context.v1 import context_pb2 as pb
from symbi_common.auditing import AuditEvent, from_proto
from symbi_common.bus import ConsumerSpec, Received
from symbi_common.errors import PermissionDenied, Unavailable
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

from .service import bus_endpoint, context_stub, memory, start_context

A = "agent-aaaaaaaaaaaa"
B = "agent-bbbbbbbbbbbb"
CONTEXT = "svc-context-a"


async def test_node_vouches_agent_acts_as_itself(services: ServiceCluster) -> None:
    proc = await start_context(services, env={"SYMBI_CONTEXT__SWEEP_INTERVAL_S": "0.2"})
    async with context_stub(proc) as stub:
        for agent in (A, B):
            await stub.StoreContext(
                pb.StoreContextRequest(
                    item=memory(f"the vault code of {agent} is 4711", agent_id=agent)
                ),
                timeout=10,
            )

    async with (
        bus_endpoint(services, "node-t1", "node") as node,
        bus_endpoint(services, B, "agent") as agent,
        bus_endpoint(services, "svc-auditor-t", "service") as auditor,
    ):
        await eventually(
            lambda: all(m.bus.groups.latest("platform") for m in (node, auditor)), timeout=20
        )
        async with context_stub(proc) as stub:
            await stub.StoreContext(
                pb.StoreContextRequest(
                    item=memory("fleeting", agent_id=A, type=pb.MEMORY_TYPE_SHORT_TERM, ttl_s=1)
                ),
                timeout=10,
            )

        # A node vouches for the agent it runs: agent_id is believed.
        reply = await eventually(
            lambda: node.bus.request(
                "symbi.rpc.context.retrieve",
                pb.RetrieveContextRequest(
                    agent_id=A, query="vault code", types=[pb.MEMORY_TYPE_LONG_TERM]
                ),
                topic="platform",
                timeout=5,
            ),
            timeout=20,
        )
        items = reply.parse(pb.RetrieveContextResponse).items
        assert [m.item.agent_id for m in items] == [A]
        assert reply.sender == CONTEXT

        # An agent acts as itself (empty agent_id = the sender), encrypted to the replica.
        await eventually(lambda: agent.bus.keyring.current(CONTEXT) is not None, timeout=20)
        own = await eventually(
            lambda: agent.bus.request(
                f"symbi.rpc.context.{CONTEXT}.retrieve",
                pb.RetrieveContextRequest(query="vault code"),
                recipient=CONTEXT,
                timeout=5,
            ),
            timeout=20,
        )
        assert [m.item.agent_id for m in own.parse(pb.RetrieveContextResponse).items] == [B]
        shared_subject = await agent.bus.request(
            "symbi.rpc.context.retrieve",
            pb.RetrieveContextRequest(agent_id=B, query="vault code"),
            recipient=CONTEXT,
            timeout=5,
        )
        assert shared_subject.parse(pb.RetrieveContextResponse).items[0].item.agent_id == B

        # ... and is refused when it claims another agent's id.
        with pytest.raises(PermissionDenied) as lied:
            await agent.bus.request(
                "symbi.rpc.context.retrieve",
                pb.RetrieveContextRequest(agent_id=A, query="vault code"),
                recipient=CONTEXT,
                timeout=5,
            )
        assert lied.value.reason == "AGENT_ID_MISMATCH"

        # A write over the bus needs write_context; with no policy service it fails closed.
        with pytest.raises(Unavailable) as undecided:
            await node.bus.request(
                "symbi.rpc.context.store",
                pb.StoreContextRequest(item=memory("new fact", agent_id=A)),
                topic="platform",
                timeout=10,
            )
        assert undecided.value.reason == "POLICY_UNAVAILABLE"

        # The refusal is in the audit stream, signed by the context service, and so is the
        # sweep that deleted the expired short-term memory. (Events published before this
        # test's auditor joined the platform topic are sealed to an older group key it does
        # not hold, so the test looks only at later ones.)
        events: dict[str, list[AuditEvent]] = {}

        async def collect(message: Received) -> None:
            event = from_proto(message.parse(events_pb2.AuditEvent))
            events.setdefault(event.event_type, []).append(event)

        spec = ConsumerSpec.subscription(
            "SYMBI_AUDIT",
            tuple(f"symbi.audit.context_{kind}" for kind in ("request_refused", "swept", "stored")),
            "t-context-audit",
            deliver_policy=DeliverPolicy.ALL,
        )
        task = asyncio.create_task(auditor.bus.consume(spec, collect))
        try:
            await eventually(
                lambda: {"context.request_refused", "context.swept"} <= set(events), timeout=20
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        (refusal,) = events["context.request_refused"]
        assert refusal.agent_id == B
        assert refusal.actor == CONTEXT
        details = json.loads(refusal.details_json)
        assert details["claimed_agent_id"] == A
        assert (details["via"], details["caller"], details["caller_role"]) == ("bus", B, "agent")
        assert json.loads(events["context.swept"][0].details_json)["count"] == 1
