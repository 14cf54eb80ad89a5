"""``require_approval`` through the real gateway process and the real policy service: the
refused call leaves an approval; an operator decides it over gRPC or with the CLI; an
approved call runs once; a denial holds; approvals expire."""

from __future__ import annotations

import json
from typing import Any

from symbi.mcp_gateway.v1 import mcp_gateway_pb2 as pb
from symbi.policy.v1 import policy_pb2
from symbi_common.bus import BusEndpoint
from symbi_common.errors import FailedPrecondition, PermissionDenied
from symbi_common.launcher import ServiceProcess
from symbi_testing.eventually import eventually
from symbi_testing.services import ServiceCluster

from .conftest import BusLog, gateway_env, gateway_stub, policy_request, rpc_error, time_server
from .test_service_process import CONVERT, _cli, _sha256, _start_gateway

AGENT = "agent-dave"
GUARDED = (
    '@condition("require_approval") permit(principal == Symbi::Agent::"agent-dave", '
    'action == Symbi::Action::"tool_call", resource == Symbi::Tool::"time/convert_time");'
)


async def _guard(operator: BusEndpoint) -> None:
    entities = policy_pb2.PutEntitiesRequest()
    entities.entities.add().uid.CopyFrom(policy_pb2.EntityRef(type="Agent", id=AGENT))
    await policy_request(operator, "put_entities", entities, policy_pb2.PutEntitiesResponse)
    await policy_request(
        operator,
        "put_policy",
        policy_pb2.PutPolicyRequest(id="dave-converts-with-approval", source=GUARDED),
        policy_pb2.PutPolicyResponse,
    )


def _convert(arguments: dict[str, Any] = CONVERT) -> pb.InvokeToolRequest:
    return pb.InvokeToolRequest(
        agent_id=AGENT, server="time", tool="convert_time", arguments_json=json.dumps(arguments)
    )


async def _refused(stub: Any, request: pb.InvokeToolRequest) -> str:
    error = await rpc_error(stub.InvokeTool(request))
    assert isinstance(error, FailedPrecondition), error
    assert error.reason == "APPROVAL_REQUIRED"
    approval_id = error.details["approval_id"]
    assert approval_id in error.message
    return approval_id


async def test_approved_once_other_arguments_not_covered_denial_holds(
    services: ServiceCluster,
    policy_service: ServiceProcess,
    operator: BusEndpoint,
    bus_log: BusLog,
) -> None:
    await _guard(operator)
    gateway = await _start_gateway(services, gateway_env([time_server()]))
    async with gateway_stub(gateway) as stub:
        first = await _refused(stub, _convert())
        assert await _refused(stub, _convert()) == first  # still the same pending approval
        listed = (await stub.ListApprovals(pb.ListApprovalsRequest())).approvals
        assert [(a.approval_id, a.state, a.agent_id, a.tool) for a in listed] == [
            (first, "pending", AGENT, "convert_time")
        ]
        assert listed[0].arguments_sha256 == _sha256(CONVERT)
        assert [p.split("#")[0] for p in listed[0].policies] == ["dave-converts-with-approval"]
        alerts = await eventually(
            lambda: [a for a in bus_log.alerts() if a.kind == "approval_required"], timeout=10
        )
        assert alerts[0].details["approval_id"] == first

        # Deciding names the tool (authorization is administer on it): a wrong one is refused.
        wrong = await rpc_error(
            stub.DecideApproval(
                pb.DecideApprovalRequest(
                    approval_id=first, approve=True, server="time", tool="get_current_time"
                )
            )
        )
        assert wrong.reason == "APPROVAL_NOT_FOUND"
        decided = await stub.DecideApproval(
            pb.DecideApprovalRequest(
                approval_id=first, approve=True, server="time", tool="convert_time", actor="ops"
            )
        )
        assert decided.state == "approved"
        assert decided.decided_by.endswith("(ops)")

        # The same call runs once...
        response = await stub.InvokeTool(_convert())
        assert not response.is_error
        assert response.arguments_hash == _sha256(CONVERT)
        # ... and then needs a new approval.
        second = await _refused(stub, _convert())
        assert second != first
        # Other arguments were never covered.
        other_args = {**CONVERT, "target_timezone": "Asia/Tokyo"}
        other = await _refused(stub, _convert(other_args))
        assert other not in (first, second)

    # The operator's CLI: list, deny one, approve the other.
    shown = await _cli(gateway, "approvals")
    assert shown.returncode == 0, shown.stderr
    assert second in shown.stdout
    assert other in shown.stdout
    denied = await _cli(gateway, "deny-call", second, "--actor", "carol")
    assert denied.returncode == 0, denied.stderr
    assert "denied" in denied.stdout
    approved = await _cli(gateway, "approve-call", other)
    assert approved.returncode == 0, approved.stderr
    again = await _cli(gateway, "approve-call", second)
    assert again.returncode == 1  # decided already
    missing = await _cli(gateway, "approve-call", "apr-" + "0" * 32 + "-00000000")
    assert missing.returncode == 1

    async with gateway_stub(gateway) as stub:
        refused = await rpc_error(stub.InvokeTool(_convert()))
        assert isinstance(refused, PermissionDenied)
        assert refused.reason == "APPROVAL_DENIED"
        assert second in refused.message
        assert not (await stub.InvokeTool(_convert(other_args))).is_error

    # Every step is audited, with who decided.
    ok = await eventually(
        lambda: (
            len(found := bus_log.audit_events("mcp.tool_call", tool="convert_time", outcome="ok"))
            == 2
            and found
        ),
        timeout=10,
    )
    assert {event["approval_id"] for event in ok} == {first, other}
    await eventually(lambda: len(bus_log.audit_events("mcp.approval.consumed")) == 2, timeout=10)
    await eventually(lambda: bus_log.audit_events("mcp.approval.denied"), timeout=10)
    requested = bus_log.audit_events("mcp.approval.requested")
    assert {event["approval_id"] for event in requested} == {first, second, other}
    approvals = bus_log.audit_events("mcp.approval.approved")
    assert {event["approval_id"] for event in approvals} == {first, other}
    assert all(event["_actor"] for event in approvals)
    (denial,) = bus_log.audit_events("mcp.approval.denied")
    assert denial["approval_id"] == second
    assert denial["_actor"].endswith("(carol)")


async def test_an_approval_expires(
    services: ServiceCluster, policy_service: ServiceProcess, operator: BusEndpoint
) -> None:
    await _guard(operator)
    gateway = await _start_gateway(
        services, gateway_env([time_server()], SYMBI_MCP__APPROVAL_TTL_S="1")
    )
    async with gateway_stub(gateway) as stub:
        approval_id = await _refused(stub, _convert())

        async def lapsed() -> bool:
            listed = await stub.ListApprovals(pb.ListApprovalsRequest())
            return not listed.approvals

        await eventually(lapsed, timeout=10, message="the approval expired")
        closed = await stub.ListApprovals(pb.ListApprovalsRequest(include_closed=True))
        assert [(a.approval_id, a.expired) for a in closed.approvals] == [(approval_id, True)]
        late = await rpc_error(
            stub.DecideApproval(
                pb.DecideApprovalRequest(
                    approval_id=approval_id, approve=True, server="time", tool="convert_time"
                )
            )
        )
        assert isinstance(late, FailedPrecondition)
        assert late.reason == "APPROVAL_EXPIRED"
        assert await _refused(stub, _convert()) != approval_id
