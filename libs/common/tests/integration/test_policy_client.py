"""The policy client: answers from whoever serves the subject; denies when nobody does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest_asyncio

from symbi.policy.v1 import policy_pb2
from symbi_common.bus import BusEndpoint, ClusterAuthority, Received
from symbi_common.config import NatsSection
from symbi_common.jetstream import Provisioner
from symbi_common.jetstream.server import NatsServerProcess
from symbi_common.policy_client import (
    EVALUATE_SUBJECT,
    EntityRef,
    PolicyClient,
    PolicyDecision,
    PolicyQuestion,
)
from symbi_testing import eventually


@pytest_asyncio.fixture
async def endpoint(nats_server: NatsServerProcess, tmp_path: Path) -> AsyncIterator[BusEndpoint]:
    authority = ClusterAuthority.open(tmp_path / "keys")
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await Provisioner(js, NatsSection()).provision()
    endpoint = await BusEndpoint.open(nc, js, authority.issue("svc-caller", "service"))
    loop = asyncio.create_task(endpoint.run())
    await eventually(lambda: endpoint.bus.groups.latest("platform") is not None, timeout=15)
    yield endpoint
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    await nc.close()


QUESTION = PolicyQuestion(
    EntityRef("Agent", "agent-7"),
    "tool_call",
    EntityRef("Tool", "time/now"),
    {"tool": "now", "server": "time"},
)


async def test_no_policy_service_means_deny(endpoint: BusEndpoint) -> None:
    decision = await PolicyClient(endpoint.bus, timeout_s=0.5).evaluate(QUESTION)
    assert not decision.allowed
    assert decision.fail_closed
    assert "policy service unavailable" in decision.reason_text()


async def test_decision_from_the_service(endpoint: BusEndpoint) -> None:
    seen: list[policy_pb2.EvaluateRequest] = []

    async def serve(message: Received) -> policy_pb2.EvaluateResponse:
        request = message.parse(policy_pb2.EvaluateRequest)
        seen.append(request)
        return policy_pb2.EvaluateResponse(
            result=policy_pb2.DecisionResult(
                decision=policy_pb2.DECISION_ALLOW_WITH_CONDITIONS,
                conditions=["audit_full"],
                policies=["tools"],
                version=3,
            )
        )

    server = asyncio.create_task(endpoint.bus.serve(EVALUATE_SUBJECT, serve, queue="policy"))
    try:

        async def answered() -> PolicyDecision:
            # Until the responder is subscribed the client fails closed ("nobody serves").
            decision = await PolicyClient(endpoint.bus, timeout_s=1).evaluate(QUESTION)
            assert not decision.fail_closed, decision.reasons
            return decision

        decision = await eventually(answered, timeout=10)
        assert decision.allowed
        assert decision.decision == "allow_with_conditions"
        assert decision.conditions == ("audit_full",)
        assert decision.version == 3
        assert seen[-1].request.principal.id == "agent-7"
        assert seen[-1].request.context["tool"] == "now"
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
