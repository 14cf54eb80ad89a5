"""Against a real policy service process: registration (C2), denied creates, resume checks."""

from __future__ import annotations

import grpc
import pytest

from symbi.lifecycle.v1 import lifecycle_pb2
from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi_common.errors import NotFound, PermissionDenied
from symbi_common.grpc import error_from_rpc, open_channel
from symbi_testing import eventually

from .conftest import FAST, start_lifecycle

STATE = lifecycle_pb2.AgentState

NO_DOCKER = """
@id("no-docker-agents")
@reason("docker agents are not allowed on this cluster")
forbid(principal, action == Symbi::Action::"create_agent", resource)
when { resource has sandbox_tier && resource.sandbox_tier == "docker" };
"""
FROZEN = """
@id("frozen")
@reason("agent changes are frozen")
forbid(principal, action == Symbi::Action::"modify_agent", resource);
"""

DOCKER_AGENT = """
agent runner() {
    capabilities = ["execute_code"]
    policy p { deny: network("*") }
    with sandbox = "Tier1" { return 1; }
}
"""


class Policy:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = policy_pb2_grpc.PolicyServiceStub(channel)

    async def call(self, method: str, request: object) -> object:
        try:
            return await getattr(self.stub, method)(request, timeout=10)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None


async def test_policy_registration_denial_and_resume(services, open_client, examples) -> None:
    policy_process = await services.start_serving("policy", instance="p")
    client = open_client(await start_lifecycle(services, "a", FAST))
    async with open_channel(policy_process.grpc_address or "") as channel:
        policy = Policy(channel)
        gvisor_source = next(p for p in examples if p.name == "data_processor.symbi").read_text()

        allowed = await client.create(gvisor_source, owner="alice")
        assert allowed.state == STATE.AGENT_STATE_READY, allowed.reason
        stored = await policy.call(
            "GetPolicy", policy_pb2.GetPolicyRequest(id=f"agents/{allowed.id}")
        )
        assert f'Symbi::Agent::"{allowed.id}"' in stored.source
        assert stored.origin == f"dsl:{allowed.id}"
        base = await policy.call("GetPolicy", policy_pb2.GetPolicyRequest(id="lifecycle/base"))
        assert "create_agent" in base.source

        # The agent is an entity with its attributes: a decision about it can use them.
        question = policy_pb2.AuthorizationRequest(
            principal=policy_pb2.EntityRef(type="Agent", id=allowed.id),
            action="use_capability",
            resource=policy_pb2.EntityRef(type="Agent", id=allowed.id),
        )
        decided = await policy.call("Evaluate", policy_pb2.EvaluateRequest(request=question))
        assert not any("unknown principal" in r for r in decided.result.reasons)

        await policy.call(
            "PutPolicy", policy_pb2.PutPolicyRequest(id="ops/no-docker", source=NO_DOCKER)
        )
        denied = await client.create(DOCKER_AGENT, file_name="runner.symbi")
        assert denied.state == STATE.AGENT_STATE_FAILED
        assert "create denied by policy" in denied.reason
        assert "docker agents are not allowed on this cluster" in denied.reason
        assert denied.restart_at_ms == 0
        with pytest.raises(NotFound):
            await policy.call("GetPolicy", policy_pb2.GetPolicyRequest(id=f"agents/{denied.id}"))

        # Resume asks modify_agent.
        await client.call("Suspend", lifecycle_pb2.TransitionRequest(id=allowed.id))
        await policy.call("PutPolicy", policy_pb2.PutPolicyRequest(id="ops/frozen", source=FROZEN))
        with pytest.raises(PermissionDenied, match="agent changes are frozen"):
            await client.call("Resume", lifecycle_pb2.TransitionRequest(id=allowed.id))
        assert (await client.get(allowed.id)).state == STATE.AGENT_STATE_SUSPENDED
        await policy.call("DeletePolicy", policy_pb2.DeletePolicyRequest(id="ops/frozen"))
        resumed = await client.call("Resume", lifecycle_pb2.TransitionRequest(id=allowed.id))
        assert resumed.state == STATE.AGENT_STATE_READY

        # Terminate removes the agent's policy document and entity.
        ended = await client.call("Terminate", lifecycle_pb2.TransitionRequest(id=allowed.id))
        assert ended.state == STATE.AGENT_STATE_TERMINATED
        with pytest.raises(NotFound):
            await policy.call("GetPolicy", policy_pb2.GetPolicyRequest(id=f"agents/{allowed.id}"))
        decided = await policy.call("Evaluate", policy_pb2.EvaluateRequest(request=question))
        assert any("unknown principal" in r for r in decided.result.reasons), decided


async def test_create_waits_out_a_policy_outage(services, open_client, examples) -> None:
    """No policy service at first: the create fails closed and recovers once it is up."""
    client = open_client(
        await start_lifecycle(
            services,
            "a",
            {
                **FAST,
                "SYMBI_LIFECYCLE__POLICY_TIMEOUT_S": "0.5",
                "SYMBI_LIFECYCLE__MAX_RESTARTS": "100",
                "SYMBI_LIFECYCLE__RESTART_BACKOFF_MAX_S": "1",
            },
        )
    )
    source = examples[0].read_text()
    agent = await client.create(source)
    assert agent.state == STATE.AGENT_STATE_FAILED
    assert "policy service unavailable" in agent.reason
    assert agent.restart_at_ms > 0
    await services.start_serving("policy", instance="p")

    async def ready() -> bool:
        return (await client.get(agent.id)).state == STATE.AGENT_STATE_READY

    await eventually(ready, timeout=60)
