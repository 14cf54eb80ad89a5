"""``symbi up --tls``'s certificates and how the CLI picks its client TLS (no processes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography import x509

from symbi_cli.connect import service_address
from symbi_cli.local import PlatformState, read_state
from symbi_cli.local_tls import (
    LocalTls,
    adopt_client_environment,
    client_options,
    prepare_local_tls,
    server_environment,
)
from symbi_common.errors import InvalidArgument
from symbi_common.grpc.tls import CA_CERT_FILE, caller_from_certificate

PRINCIPALS = [("svc-policy-local", "service"), ("node-local", "node")]


def test_certificates_are_issued_once_and_name_their_principals(tmp_path: Path) -> None:
    tls = prepare_local_tls(tmp_path, PRINCIPALS)
    directory = tmp_path / "keys" / "tls"
    assert tls.ca_file == directory / CA_CERT_FILE
    assert tls.cert_file == directory / "operator.crt"
    server = x509.load_pem_x509_certificate((directory / "svc-policy-local.crt").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    caller = caller_from_certificate((directory / "svc-policy-local.crt").read_bytes())
    assert caller is not None
    assert caller.uri == "symbi://service/svc-policy-local"
    operator = caller_from_certificate(tls.cert_file.read_bytes())
    assert operator is not None
    assert operator.uri == "symbi://user/operator"

    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    again = prepare_local_tls(tmp_path, [*PRINCIPALS, ("svc-audit-local", "service")])
    assert again == tls
    after = {p.name: p.read_bytes() for p in directory.iterdir()}
    assert {k: after[k] for k in before} == before  # nothing replaced, the CA included
    assert "svc-audit-local.crt" in after


def test_half_a_ca_is_refused_not_replaced(tmp_path: Path) -> None:
    directory = tmp_path / "keys" / "tls"
    directory.mkdir(parents=True)
    (directory / CA_CERT_FILE).write_text("left over")
    with pytest.raises(Exception, match="grpc-ca"):
        prepare_local_tls(tmp_path, PRINCIPALS)
    assert (directory / CA_CERT_FILE).read_text() == "left over"


def test_server_environment_is_all_three_grpc_keys(tmp_path: Path) -> None:
    env = server_environment(tmp_path, "svc-policy-local")
    assert env == {
        "SYMBI_GRPC__TLS_CERT_FILE": str(tmp_path / "keys/tls/svc-policy-local.crt"),
        "SYMBI_GRPC__TLS_KEY_FILE": str(tmp_path / "keys/tls/svc-policy-local.key"),
        "SYMBI_GRPC__TLS_CA_FILE": str(tmp_path / "keys/tls" / CA_CERT_FILE),
    }


LOCAL = LocalTls(Path("/d/ca.crt"), Path("/d/operator.crt"), Path("/d/operator.key"))
OTHER = {
    "SYMBI_GRPC_TLS_CA": "/x/ca.crt",
    "SYMBI_GRPC_TLS_CERT": "/x/alice.crt",
    "SYMBI_GRPC_TLS_KEY": "/x/alice.key",
}


def test_client_options_prefer_explicit_environment_then_the_state() -> None:
    assert client_options(None, {}).tls_ca_file is None
    recorded = client_options(LOCAL, {})
    assert (recorded.tls_ca_file, recorded.tls_cert_file) == (LOCAL.ca_file, LOCAL.cert_file)
    explicit = client_options(LOCAL, OTHER)
    assert explicit.tls_cert_file == Path("/x/alice.crt")
    with pytest.raises(InvalidArgument, match="SYMBI_GRPC_TLS_KEY"):
        client_options(LOCAL, {"SYMBI_GRPC_TLS_CA": "/x/ca.crt"})  # half explicit: refused


def test_adopting_the_recorded_tls_never_overrides_the_environment() -> None:
    environ: dict[str, str] = {}
    assert adopt_client_environment(LOCAL, environ)
    assert environ["SYMBI_GRPC_TLS_CERT"] == "/d/operator.crt"
    explicit = dict(OTHER)
    assert not adopt_client_environment(LOCAL, explicit)
    assert explicit == OTHER
    assert not adopt_client_environment(None, environ := {})
    assert environ == {}


def test_the_state_file_carries_tls_and_commands_adopt_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Empty, not deleted: monkeypatch then restores what was there, not what was adopted.
    for name in (*OTHER, "SYMBI_POLICY_ADDRESS"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("SYMBI_HOME", str(tmp_path))
    state = PlatformState(
        data_dir=str(tmp_path),
        supervisor_pid=1,
        services={"policy": {"grpc": "127.0.0.1:1"}},
        tls=LOCAL.as_state(),
    )
    state.write(tmp_path / "state.json")
    loaded = read_state(tmp_path)
    assert loaded is not None
    assert loaded.local_tls == LOCAL
    assert service_address("policy") == "127.0.0.1:1"
    assert os.environ["SYMBI_GRPC_TLS_CERT"] == "/d/operator.crt"
    # An address given explicitly is not the local platform: nothing adopted.
    for name in OTHER:
        os.environ[name] = ""
    assert service_address("policy", address="10.0.0.1:5") == "10.0.0.1:5"
    assert os.environ["SYMBI_GRPC_TLS_CERT"] == ""
