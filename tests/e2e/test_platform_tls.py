"""`symbi up --tls`: the whole platform with gRPC mTLS and per-method authorization (ADR 0012,
0013) — the main job as the local operator, plaintext refused, a user who is not an operator
held to reading policies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi_cli.demo import run_demo
from symbi_cli.local import read_state
from symbi_common.grpc import ChannelOptions, open_channel
from symbi_common.grpc.health import check_health
from symbi_common.grpc.tls import TlsAuthority
from symbi_common.launcher import SERVICES
from symbi_testing import symbi_cli

DENY_ALL = '@id("outsider-deny")\nforbid(principal, action, resource);\n'


def outsider(data: Path, directory: Path) -> ChannelOptions:
    """A user certificate from the platform's CA for someone who is not in operators."""
    tls = data / "keys" / "tls"
    cert, key = TlsAuthority.open(tls).issue("outsider", "user").write(directory)
    return ChannelOptions(
        tls_ca_file=tls / "grpc-ca.crt", tls_cert_file=cert, tls_key_file=key, max_attempts=2
    )


async def rpc_error(call: object) -> grpc.aio.AioRpcError:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc
    raise AssertionError("the call succeeded")


def test_the_platform_over_mtls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "symbi"
    started = symbi_cli(
        "up", "--tls", "--detach", "--ephemeral", "--timeout", "90", "--data-dir", str(data)
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "export SYMBI_GRPC_TLS_CA=" in started.stdout
        state = read_state(data)
        assert state is not None
        assert state.local_tls is not None
        assert state.local_tls.operator == "operator"

        # `symbi status` asks every service's health over mTLS, by itself.
        status = symbi_cli("status", "--data-dir", str(data))
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("SERVING") == len(SERVICES), status.stdout

        # Any later command against the data directory calls as the operator: listing (and,
        # below, the demo's PutPolicy) works without exporting anything.
        listed = symbi_cli("policy", "list", home=data)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert "platform/grpc" in listed.stdout

        # The main job, over mTLS as the operator (no SYMBI_GRPC_TLS_* in its environment).
        said: list[str] = []
        asyncio.run(run_demo(state, said.append, environ={}))
        told = "\n".join(said)
        assert "calling over mTLS" in told, told
        assert "→ COMPLETED" in told, told
        assert "log verifies: True" in told, told

        policy_address = state.services["policy"]["grpc"]

        async def refusals() -> None:
            # Plaintext gets no answer at all: the handshake fails.
            assert await check_health(policy_address) == "UNREACHABLE"
            async with grpc.aio.insecure_channel(policy_address) as channel:
                error = await rpc_error(
                    policy_pb2_grpc.PolicyServiceStub(channel).ListPolicies(
                        policy_pb2.ListPoliciesRequest(), timeout=5
                    )
                )
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error
            # A user certificate from the same CA, not in operators: may read, not modify.
            async with open_channel(policy_address, outsider(data, tmp_path)) as channel:
                stub = policy_pb2_grpc.PolicyServiceStub(channel)
                page = await stub.ListPolicies(policy_pb2.ListPoliciesRequest(), timeout=10)
                assert "platform/grpc" in [p.id for p in page.policies]
                error = await rpc_error(
                    stub.PutPolicy(
                        policy_pb2.PutPolicyRequest(id="outsider/deny", source=DENY_ALL),
                        timeout=10,
                    )
                )
                assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error
                assert "modify_policy" in (error.details() or ""), error.details()
                assert 'User::"outsider"' in (error.details() or ""), error.details()

        asyncio.run(refusals())

        # Explicit SYMBI_GRPC_TLS_* win over the recorded operator: the CLI as the outsider.
        monkeypatch.setenv("SYMBI_GRPC_TLS_CA", str(data / "keys" / "tls" / "grpc-ca.crt"))
        monkeypatch.setenv("SYMBI_GRPC_TLS_CERT", str(tmp_path / "outsider.crt"))
        monkeypatch.setenv("SYMBI_GRPC_TLS_KEY", str(tmp_path / "outsider.key"))
        policies = tmp_path / "policies"
        policies.mkdir()
        (policies / "deny.cedar").write_text(DENY_ALL)
        pushed = symbi_cli("policy", "push", str(policies), home=data)
        assert pushed.returncode != 0, pushed.stdout
        assert "modify_policy" in pushed.stdout + pushed.stderr, pushed.stdout + pushed.stderr
    finally:
        stopped = symbi_cli("down", "--data-dir", str(data))
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not (data / "state.json").exists()
