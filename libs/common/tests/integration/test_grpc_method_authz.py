"""Per-method authorization of gRPC calls by policy (ADR 0013), against real processes with
mTLS: the policy service deciding its own methods in process, and the audit service asking
the policy service over the bus — denied without a grant, allowed with one, UNAVAILABLE
(fail closed) when the policy service is down."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from symbi.audit.v1 import audit_pb2, audit_pb2_grpc
from symbi.context.v1 import context_pb2, context_pb2_grpc
from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi_common.config import GrpcSection
from symbi_common.errors import PermissionDenied, Unavailable
from symbi_common.grpc import ChannelOptions, GrpcServer, error_from_rpc, open_channel
from symbi_common.policy_client import PolicyDecision, PolicyQuestion
from symbi_common.service import binding
from symbi_context.authz import CONTEXT_RULES
from symbi_testing.eventually import eventually
from symbi_testing.services import ServiceCluster
from symbi_testing.tls import TestTls

ALICE_MAY_EDIT = """\
@id("alice-edits-policies")
permit(
    principal == Symbi::User::"alice",
    action in [Symbi::Action::"modify_policy", Symbi::Action::"read_policy"],
    resource == Symbi::PolicyStore::"default"
);
"""

CAROL_MAY_NOT_READ = """\
@id("carol-reads-nothing")
@reason("carol reads no policies")
forbid(
    principal == Symbi::User::"carol",
    action == Symbi::Action::"read_policy",
    resource
);
"""


async def _rpc_error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


async def test_policy_service_methods_by_policy(services: ServiceCluster, tmp_path: Path) -> None:
    tls = TestTls(tmp_path / "tls")
    admin = tls.client("svc-admin", "service")
    process = await services.start_serving("policy", env=tls.server_env("svc-policy-t1"), tls=admin)
    target = process.grpc_address
    assert target is not None
    alice, bob = tls.client("alice", "user"), tls.client("bob", "user")

    async with open_channel(target, alice) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        # No grant: writes and deletes are refused, naming the action and resource.
        for call, action in (
            (
                stub.PutPolicy(policy_pb2.PutPolicyRequest(id="x", source=ALICE_MAY_EDIT)),
                "modify_policy",
            ),
            (
                stub.DeletePolicy(policy_pb2.DeletePolicyRequest(id="platform/grpc")),
                "modify_policy",
            ),
        ):
            error = await _rpc_error(call)
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            symbi = error_from_rpc(error)
            assert isinstance(symbi, PermissionDenied)
            assert action in symbi.message
            assert 'PolicyStore::"default"' in symbi.message
            assert 'User::"alice"' in symbi.message
            assert "no policy permits" in symbi.message  # the policy's reason
            assert symbi.details["action"] == action
        # Every user may read the policy set (the default platform/grpc policy).
        listed = await stub.ListPolicies(policy_pb2.ListPoliciesRequest(), timeout=5)
        assert "platform/grpc" in [p.id for p in listed.policies]
        # Open methods stay open.
        status = await stub.GetStatus(policy_pb2.GetStatusRequest(), timeout=5)
        assert status.version > 0
        valid = await stub.Validate(policy_pb2.ValidateRequest(source=ALICE_MAY_EDIT), timeout=5)
        assert valid.valid

    # A service may (the default platform/grpc policy): it grants alice, and forbids carol
    # to read.
    async with open_channel(target, admin) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        listed = await stub.ListPolicies(policy_pb2.ListPoliciesRequest(), timeout=5)
        assert "platform/grpc" in [p.id for p in listed.policies]
        await stub.PutPolicy(
            policy_pb2.PutPolicyRequest(id="grants/alice", source=ALICE_MAY_EDIT), timeout=10
        )
        await stub.PutPolicy(
            policy_pb2.PutPolicyRequest(id="grants/carol", source=CAROL_MAY_NOT_READ), timeout=10
        )
    async with open_channel(target, tls.client("carol", "user")) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        error = await _rpc_error(stub.ListPolicies(policy_pb2.ListPoliciesRequest(), timeout=5))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "read_policy" in (error.details() or "")
    assert "carol reads no policies" in (error.details() or "")  # the forbid's @reason

    async with open_channel(target, alice) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        await stub.PutPolicy(
            policy_pb2.PutPolicyRequest(
                id="alice/own", source=ALICE_MAY_EDIT.replace("alice-edits-policies", "alice-own")
            ),
            timeout=10,
        )
        listed = await stub.ListPolicies(policy_pb2.ListPoliciesRequest(), timeout=5)
        assert {"alice/own", "grants/alice"} <= {p.id for p in listed.policies}
        await stub.DeletePolicy(policy_pb2.DeletePolicyRequest(id="alice/own"), timeout=10)

    # bob: denied until a service makes him an operator (Role::"operators" in the default
    # policy), then allowed.
    async with open_channel(target, bob) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        error = await _rpc_error(
            stub.DeletePolicy(policy_pb2.DeletePolicyRequest(id="grants/alice"), timeout=5)
        )
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "modify_policy" in (error.details() or "")
    async with open_channel(target, admin) as channel:
        entity = policy_pb2.Entity(uid=policy_pb2.EntityRef(type="User", id="bob"))
        entity.parents.add(type="Role", id="operators")
        await policy_pb2_grpc.PolicyServiceStub(channel).PutEntities(
            policy_pb2.PutEntitiesRequest(entities=[entity]), timeout=10
        )
    async with open_channel(target, bob) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        listed = await stub.ListPolicies(policy_pb2.ListPoliciesRequest(), timeout=5)
        assert "grants/alice" in [p.id for p in listed.policies]
        await stub.DeletePolicy(policy_pb2.DeletePolicyRequest(id="grants/alice"), timeout=10)

    # Worker nodes call no PolicyService method over gRPC, open ones included.
    async with open_channel(target, tls.client("node-a", "node")) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        error = await _rpc_error(stub.GetStatus(policy_pb2.GetStatusRequest(), timeout=5))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "worker nodes" in (error.details() or "")


async def test_audit_methods_asked_over_the_bus(services: ServiceCluster, tmp_path: Path) -> None:
    tls = TestTls(tmp_path / "tls")
    admin = tls.client("svc-admin", "service")
    policy = await services.start_serving("policy", env=tls.server_env("svc-policy-t1"), tls=admin)
    audit = await services.start_serving("audit", env=tls.server_env("svc-audit-t1"), tls=admin)
    assert policy.grpc_address is not None
    assert audit.grpc_address is not None
    alice = tls.client("alice", "user")

    async def archive(options: ChannelOptions) -> audit_pb2.ArchiveResponse:
        async with open_channel(audit.grpc_address or "", options) as channel:
            response: audit_pb2.ArchiveResponse = await audit_pb2_grpc.AuditServiceStub(
                channel
            ).Archive(audit_pb2.ArchiveRequest(), timeout=10)
            return response

    async def query(options: ChannelOptions) -> audit_pb2.QueryResponse:
        async with open_channel(audit.grpc_address or "", options) as channel:
            response: audit_pb2.QueryResponse = await audit_pb2_grpc.AuditServiceStub(
                channel
            ).Query(audit_pb2.QueryRequest(), timeout=10)
            return response

    # Denied without a grant: the audit service asked the policy service over the bus.
    for call, action in ((archive, "administer"), (query, "read_audit")):
        error = await _rpc_error(call(alice))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        symbi = error_from_rpc(error)
        assert action in symbi.message
        assert 'AuditLog::"default"' in symbi.message

    # The policy service audited the denies, with the method in the request's context.
    async def denied_archive_audited() -> bool:
        async with open_channel(audit.grpc_address or "", admin) as channel:
            found = await audit_pb2_grpc.AuditServiceStub(channel).Query(
                audit_pb2.QueryRequest(event_type="policy.decision", text="Archive"),
                timeout=10,
            )
        details = [json.loads(e.event.details_json) for e in found.entries]
        assert any(
            d["action"] == "administer"
            and d["principal"] == 'Symbi::User::"alice"'
            and d["context"]["grpc_method"] == "/symbi.audit.v1.AuditService/Archive"
            and d["decision"] == "deny"
            and any("no policy permits" in r for r in d["reasons"])
            for d in details
        ), details
        return True

    await eventually(denied_archive_audited, timeout=20)

    # A server stream is decided before its first message.
    async with open_channel(audit.grpc_address, alice) as channel:
        stream = audit_pb2_grpc.AuditServiceStub(channel).QueryStream(
            audit_pb2.QueryRequest(), timeout=10
        )
        error = await _rpc_error(stream.read())
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "read_audit" in (error.details() or "")
    # A service may, by the default policy.
    await archive(admin)
    await query(admin)

    grant = """\
@id("alice-archives")
permit(
    principal == Symbi::User::"alice",
    action == Symbi::Action::"administer",
    resource == Symbi::AuditLog::"default"
);
"""
    async with open_channel(policy.grpc_address, admin) as channel:
        await policy_pb2_grpc.PolicyServiceStub(channel).PutPolicy(
            policy_pb2.PutPolicyRequest(id="grants/alice", source=grant), timeout=10
        )
    await archive(alice)  # in force on the replica before PutPolicy answered
    error = await _rpc_error(query(alice))  # the grant is for administer only
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED

    # The policy service down: decided methods fail closed, open ones still answer.
    policy.stop()
    error = await _rpc_error(archive(alice))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    symbi = error_from_rpc(error)
    assert isinstance(symbi, Unavailable)
    assert "policy service unavailable" in symbi.message
    assert "administer" in symbi.message
    async with open_channel(audit.grpc_address, alice) as channel:
        status = await audit_pb2_grpc.AuditServiceStub(channel).GetStatus(
            audit_pb2.GetStatusRequest(), timeout=10
        )
    assert status is not None


# ---------------------------------------------------------------- streaming, in process


class KnowledgeServicer(context_pb2_grpc.ContextServiceServicer):
    """Ingest (a client stream) counts the chunks it got; nothing else is served."""

    async def Ingest(self, request_iterator: Any, context: Any) -> context_pb2.IngestResponse:
        chunks = [r async for r in request_iterator]
        return context_pb2.IngestResponse(
            documents=[context_pb2.IngestedDocument(document_id=str(len(chunks)))]
        )


class AgentDecider:
    """Allows write_context on Agent/Dataset ids listed; records the questions."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.resources: list[str] = []

    async def evaluate(self, question: PolicyQuestion) -> PolicyDecision:
        self.resources.append(question.resource.id)
        if question.resource.id in self.allowed:
            return PolicyDecision("allow")
        return PolicyDecision("deny", ("no policy permits it (default deny)",))


async def test_client_stream_decided_on_its_first_message(tmp_path: Path) -> None:
    tls = TestTls(tmp_path / "tls")
    env = tls.server_env("svc-context-a")
    section = GrpcSection(
        port=0,
        tls_cert_file=Path(env["SYMBI_GRPC__TLS_CERT_FILE"]),
        tls_key_file=Path(env["SYMBI_GRPC__TLS_KEY_FILE"]),
        tls_ca_file=Path(env["SYMBI_GRPC__TLS_CA_FILE"]),
    )
    server = GrpcServer(
        section,
        [
            binding(
                context_pb2,
                "ContextService",
                context_pb2_grpc.add_ContextServiceServicer_to_server,
                KnowledgeServicer(),
                rules=CONTEXT_RULES,
            )
        ],
    )
    decider = AgentDecider({"knowledge/agent-ok"})
    server.authorizer.use(decider)
    await server.start()
    await server.set_serving(True)
    try:
        async with open_channel(f"127.0.0.1:{server.port}", tls.client("alice", "user")) as ch:
            stub = context_pb2_grpc.ContextServiceStub(ch)

            async def chunks(agent: str) -> AsyncIterator[context_pb2.IngestRequest]:
                for i in range(3):
                    yield context_pb2.IngestRequest(
                        agent_id=agent, chunk=b"x", end_of_document=i == 2
                    )

            response = await stub.Ingest(chunks("agent-ok"), timeout=5)
            # Every message reached the servicer, the peeked first one included.
            assert response.documents[0].document_id == "3"
            error = await _rpc_error(stub.Ingest(chunks("agent-no"), timeout=5))
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert 'Dataset::"knowledge/agent-no"' in (error.details() or "")
            assert "write_context" in (error.details() or "")
    finally:
        await server.stop(0)
    assert decider.resources == ["knowledge/agent-ok", "knowledge/agent-no"]
