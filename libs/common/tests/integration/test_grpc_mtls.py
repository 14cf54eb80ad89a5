"""mTLS on the gRPC server: certificates from the cluster's gRPC CA, the caller's principal,
and which roles may call. In process (the servicer sees the caller) and against a real
policy service process started with TLS from its environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from symbi.common.v1 import common_pb2
from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi_common.config import GrpcSection
from symbi_common.errors import PermissionDenied
from symbi_common.grpc import ChannelOptions, GrpcServer, caller, error_from_rpc, open_channel
from symbi_common.grpc.health import check_health
from symbi_common.service import binding
from symbi_testing.services import ServiceCluster
from symbi_testing.tls import TestTls


class EchoCaller(policy_pb2_grpc.PolicyServiceServicer):
    """Validate answers with the caller the server saw."""

    async def Validate(self, request: Any, context: Any) -> policy_pb2.ValidateResponse:
        who = caller()
        return policy_pb2.ValidateResponse(
            valid=True,
            errors=[common_pb2.FieldViolation(field="caller", description=who.uri if who else "")],
        )


@pytest.fixture
def tls(tmp_path: Path) -> TestTls:
    return TestTls(tmp_path / "tls")


@pytest_asyncio.fixture
async def server(tls: TestTls) -> AsyncIterator[str]:
    env = tls.server_env("svc-policy-a")
    section = GrpcSection(
        port=0,
        tls_cert_file=Path(env["SYMBI_GRPC__TLS_CERT_FILE"]),
        tls_key_file=Path(env["SYMBI_GRPC__TLS_KEY_FILE"]),
        tls_ca_file=Path(env["SYMBI_GRPC__TLS_CA_FILE"]),
    )
    assert section.mtls
    srv = GrpcServer(
        section,
        [
            binding(
                policy_pb2,
                "PolicyService",
                policy_pb2_grpc.add_PolicyServiceServicer_to_server,
                EchoCaller(),
            )
        ],
    )
    await srv.start()
    await srv.set_serving(True)
    yield f"127.0.0.1:{srv.port}"
    await srv.stop(0)


async def validate(target: str, options: ChannelOptions) -> policy_pb2.ValidateResponse:
    async with open_channel(target, options) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        response: policy_pb2.ValidateResponse = await stub.Validate(
            policy_pb2.ValidateRequest(source="x"), timeout=5
        )
        return response


async def test_the_servicer_sees_the_callers_principal(server: str, tls: TestTls) -> None:
    for principal, role in (("alice", "user"), ("svc-lifecycle-0", "service"), ("node-a", "node")):
        response = await validate(server, tls.client(principal, role))
        assert response.errors[0].description == f"symbi://{role}/{principal}"


@pytest.mark.parametrize("role", ["agent", "issuer"])
async def test_roles_outside_the_control_plane_are_refused(
    server: str, tls: TestTls, role: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await validate(server, tls.client("someone", role))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    error = error_from_rpc(info.value)
    assert isinstance(error, PermissionDenied)
    assert f"role {role!r}" in error.message
    assert "/symbi.policy.v1.PolicyService/Validate" in error.message
    assert error.details["role"] == role


async def test_a_certificate_without_a_principal_is_refused(server: str, tls: TestTls) -> None:
    # A certificate of the right CA whose SAN names no symbi:// principal gets no rights.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    ca = tls.authority.certificate
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "anonymous")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ca.not_valid_before_utc)
        .not_valid_after(ca.not_valid_after_utc)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("anonymous")]), False)
        .sign(tls.authority._key, hashes.SHA256())
    )
    (tls.directory / "anon.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tls.directory / "anon.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    options = ChannelOptions(
        tls_ca_file=tls.ca_file,
        tls_cert_file=tls.directory / "anon.crt",
        tls_key_file=tls.directory / "anon.key",
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await validate(server, options)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "names no symbi:// principal" in (info.value.details() or "")
    # Health stays open to any authenticated caller.
    assert await check_health(server, tls=options) == "SERVING"


async def test_process_with_mtls(services: ServiceCluster, tmp_path: Path) -> None:
    """The policy service as a process with TLS from its environment."""
    tls = TestTls(tmp_path / "tls")
    service_cert = tls.client("svc-lifecycle-t", "service")
    process = await services.start_serving(
        "policy", env=tls.server_env("svc-policy-t1"), tls=service_cert
    )
    target = process.grpc_address
    assert target is not None
    assert target.startswith("127.0.0.1:")

    # A service lists policies (the default platform/grpc policy lets services call every
    # method; users need a grant, see test_grpc_method_authz.py).
    async with open_channel(target, service_cert) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        listed = await stub.ListPolicies(policy_pb2.ListPoliciesRequest(), timeout=5)
        assert listed.version >= 0

    # An agent's certificate is refused, naming its role and the method.
    async with open_channel(target, tls.client("agent-bob", "agent")) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ListPolicies(policy_pb2.ListPoliciesRequest(), timeout=5)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "role 'agent'" in (info.value.details() or "")
    assert "ListPolicies" in (info.value.details() or "")

    # No client certificate: the handshake fails (the server requires one).
    no_cert = ChannelOptions(tls_ca_file=tls.ca_file, max_attempts=2)
    # A certificate from another CA: the handshake fails too.
    other = TestTls(tmp_path / "other").client("alice", "user")
    other_ca = ChannelOptions(
        tls_ca_file=tls.ca_file,
        tls_cert_file=other.tls_cert_file,
        tls_key_file=other.tls_key_file,
        max_attempts=2,
    )
    # Plaintext to a TLS port gets nowhere either.
    for options in (no_cert, other_ca, ChannelOptions(max_attempts=2)):
        async with open_channel(target, options) as channel:
            stub = policy_pb2_grpc.PolicyServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.ListPolicies(policy_pb2.ListPoliciesRequest(), timeout=3)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, options

    # Health: a service certificate asks; without a client certificate there is no answer.
    assert await check_health(target, tls=service_cert) == "SERVING"
    assert await check_health(target, tls=no_cert) == "UNREACHABLE"
    async with open_channel(target, service_cert) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="symbi.policy.v1.PolicyService"), timeout=5
        )
    assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_probe_asks_health_over_mtls(services: ServiceCluster, tmp_path: Path) -> None:
    """``python -m symbi_common.grpc.probe``: the chart's exec probe, with the service's own
    certificate and settings (Kubernetes' gRPC probe cannot do TLS)."""
    tls = TestTls(tmp_path / "tls")
    server_env = tls.server_env("svc-policy-t1")
    process = await services.start_serving(
        "policy", env=server_env, tls=tls.client("svc-probe", "service")
    )
    assert process.grpc_address is not None
    port = process.grpc_address.rsplit(":", 1)[1]

    def probe(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYMBI_")}
        env.update({"SYMBI_CONFIG_PATH": "", "SYMBI_GRPC__PORT": port, **extra})
        return subprocess.run(
            [sys.executable, "-m", "symbi_common.grpc.probe"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    ok = probe(server_env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "SERVING"
    plaintext = probe({})
    assert plaintext.returncode == 1
    assert plaintext.stdout.strip() == "UNREACHABLE"
    partial = probe({"SYMBI_GRPC__TLS_CERT_FILE": server_env["SYMBI_GRPC__TLS_CERT_FILE"]})
    assert partial.returncode == 2
    assert "grpc.tls_key_file" in partial.stderr
