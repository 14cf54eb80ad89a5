"""``symbi keys tls-ca`` and ``tls-issue``: the gRPC CA and certificates naming principals; and
``symbi policy list`` reaching a policy process that requires client certificates."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from symbi_cli.commands.keys import app
from symbi_cli.connect import channel_options
from symbi_common.errors import InvalidArgument
from symbi_common.grpc.tls import caller_from_certificate
from symbi_testing import symbi_cli
from symbi_testing.services import ServiceCluster
from symbi_testing.tls import TestTls

runner = CliRunner()


def keys(*args: str, home: Path) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--data-dir", str(home)])
    return result.exit_code, result.output


def says(text: str, output: str) -> bool:
    """``text`` in ``output``, whatever lines Rich wrapped it into."""
    return "".join(text.split()) in "".join(output.split())


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_ca_is_created_once_and_never_replaced(tmp_path: Path) -> None:
    code, output = keys("tls-ca", home=tmp_path)
    assert code == 0, output
    tls = tmp_path / "keys" / "tls"
    ca_cert, ca_key = tls / "grpc-ca.crt", tls / "grpc-ca.key"
    before = (ca_cert.read_bytes(), ca_key.read_bytes())
    assert stat.S_IMODE(ca_key.stat().st_mode) == 0o600
    ca = load(ca_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == "secp256r1"

    code, output = keys("tls-ca", home=tmp_path)  # idempotent: the same CA
    assert code == 0, output
    assert says("exists", output)
    assert (ca_cert.read_bytes(), ca_key.read_bytes()) == before

    ca_cert.unlink()  # half a CA is refused, not completed
    code, output = keys("tls-ca", home=tmp_path)
    assert code == 1
    assert says("grpc-ca.key exists", output)


def test_issue_needs_the_ca(tmp_path: Path) -> None:
    code, output = keys("tls-issue", "alice", "--role", "user", home=tmp_path)
    assert code == 1
    assert says("symbi keys tls-ca", output)


def test_issued_certificates_name_the_principal_and_the_server(tmp_path: Path) -> None:
    assert keys("tls-ca", home=tmp_path)[0] == 0
    tls = tmp_path / "keys" / "tls"
    code, output = keys("tls-issue", "alice", "--role", "user", "--days", "30", home=tmp_path)
    assert code == 0, output
    user = load(tls / "alice.crt")
    assert stat.S_IMODE((tls / "alice.key").stat().st_mode) == 0o600
    san = user.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["symbi://user/alice"]
    assert san.get_values_for_type(x509.DNSName) == []
    assert (user.not_valid_after_utc - user.not_valid_before_utc).days in (30, 31)
    ca = load(tls / "grpc-ca.crt")
    user.verify_directly_issued_by(ca)  # raises if the CA did not sign it

    code, output = keys(
        "tls-issue",
        "svc-policy-0",
        "--role",
        "service",
        "--dns",
        "symbi-policy",
        "--dns",
        "symbi-policy.agents.svc",
        "--ip",
        "127.0.0.1",
        home=tmp_path,
    )
    assert code == 0, output
    server = load(tls / "svc-policy-0.crt")
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "symbi://service/svc-policy-0"
    ]
    assert san.get_values_for_type(x509.DNSName) == ["symbi-policy", "symbi-policy.agents.svc"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    caller = caller_from_certificate((tls / "svc-policy-0.crt").read_bytes())
    assert caller is not None
    assert (caller.role, caller.principal_id) == ("service", "svc-policy-0")


def test_issue_refuses_to_overwrite_and_bad_input(tmp_path: Path) -> None:
    assert keys("tls-ca", home=tmp_path)[0] == 0
    out = tmp_path / "elsewhere"
    assert keys("tls-issue", "alice", "--out", str(out), home=tmp_path)[0] == 0
    before = (out / "alice.crt").read_bytes()
    code, output = keys("tls-issue", "alice", "--out", str(out), home=tmp_path)
    assert code == 1
    assert says("alice.crt exists", output)
    assert (out / "alice.crt").read_bytes() == before
    # The bus keys in keys/ are never touched: TLS files live in keys/tls or --out.
    assert not (tmp_path / "keys" / "alice.key").exists()

    code, output = keys("tls-issue", "bob", "--role", "wizard", home=tmp_path)
    assert code == 1
    assert says("unknown role 'wizard'", output)
    code, output = keys("tls-issue", "bob", "--ip", "not-an-ip", home=tmp_path)
    assert code == 1
    assert says("'not-an-ip' is not an IP address", output)
    code, output = keys("tls-issue", "bad id", home=tmp_path)
    assert code == 1
    assert says("principal id 'bad id'", output)


def test_client_tls_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SYMBI_GRPC_TLS_CA", "SYMBI_GRPC_TLS_CERT", "SYMBI_GRPC_TLS_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert not channel_options().tls
    monkeypatch.setenv("SYMBI_GRPC_TLS_CA", "/tls/ca.crt")
    monkeypatch.setenv("SYMBI_GRPC_TLS_CERT", "/tls/alice.crt")
    with pytest.raises(InvalidArgument, match="set SYMBI_GRPC_TLS_KEY too"):
        channel_options()
    monkeypatch.setenv("SYMBI_GRPC_TLS_KEY", "/tls/alice.key")
    options = channel_options()
    assert options.tls_ca_file == Path("/tls/ca.crt")
    assert options.tls_key_file == Path("/tls/alice.key")
    flags = channel_options(tls_ca=Path("a"), tls_cert=Path("b"), tls_key=Path("c"))
    assert flags.tls_cert_file == Path("b")


async def test_symbi_commands_reach_a_tls_service(
    services: ServiceCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls = TestTls(tmp_path / "tls")
    process = await services.start_serving(
        "policy", env=tls.server_env("svc-policy-t1"), tls=tls.client("svc-probe", "service")
    )
    assert process.grpc_address is not None
    address = ["--address", process.grpc_address]

    plain = symbi_cli("policy", "list", *address, timeout=60)
    assert plain.returncode != 0  # no client certificate: no answer

    user = tls.client("alice", "user")
    monkeypatch.setenv("SYMBI_GRPC_TLS_CA", str(user.tls_ca_file))
    monkeypatch.setenv("SYMBI_GRPC_TLS_CERT", str(user.tls_cert_file))
    monkeypatch.setenv("SYMBI_GRPC_TLS_KEY", str(user.tls_key_file))
    listed = symbi_cli("policy", "list", *address, timeout=60)
    assert listed.returncode == 0, listed.stderr

    agent = tls.client("agent-bob", "agent")
    monkeypatch.setenv("SYMBI_GRPC_TLS_CERT", str(agent.tls_cert_file))
    monkeypatch.setenv("SYMBI_GRPC_TLS_KEY", str(agent.tls_key_file))
    refused = symbi_cli("policy", "list", *address, timeout=60)
    assert refused.returncode != 0
    assert says("role 'agent'", refused.stderr)
