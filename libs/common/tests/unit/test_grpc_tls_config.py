"""``[grpc]``: TLS keys come all together or not at all, and a listener off loopback needs TLS
(or an explicit, dev-only ``allow_insecure``)."""

from __future__ import annotations

import pytest

from symbi_common.config import ServiceSettings, exit_on_config_error, load_settings
from symbi_common.errors import ConfigError
from symbi_common.grpc.tls import Caller

TLS = {
    "SYMBI_GRPC__TLS_CERT_FILE": "/etc/symbi/tls/tls.crt",
    "SYMBI_GRPC__TLS_KEY_FILE": "/etc/symbi/tls/tls.key",
    "SYMBI_GRPC__TLS_CA_FILE": "/etc/symbi/tls/ca.crt",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("SYMBI_"):
            monkeypatch.delenv(name)


def test_the_default_is_plaintext_on_loopback() -> None:
    grpc = load_settings(ServiceSettings).grpc
    assert grpc.host == "127.0.0.1"
    assert grpc.tls_cert_file is None
    assert not grpc.mtls
    assert grpc.allow_insecure is False


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "symbi-policy"])
def test_a_non_loopback_listener_without_tls_exits_2(
    host: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SYMBI_GRPC__HOST", host)
    with pytest.raises(ConfigError) as info:
        load_settings(ServiceSettings)
    with pytest.raises(SystemExit) as exit_info:
        exit_on_config_error(info.value, "symbi-policy")
    assert exit_info.value.code == 2
    problems = capsys.readouterr().err.splitlines()[1:]
    assert len(problems) == 1  # one line, naming the key, the host and the ways out
    assert problems[0].strip().startswith("grpc.allow_insecure = False")
    assert f"gRPC would listen on {host} without TLS" in problems[0]
    assert "grpc.tls_cert_file" in problems[0]
    assert "allow_insecure = true (dev only)" in problems[0]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts_need_no_tls(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBI_GRPC__HOST", host)
    assert load_settings(ServiceSettings).grpc.host == host


def test_allow_insecure_is_the_explicit_escape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBI_GRPC__HOST", "0.0.0.0")
    monkeypatch.setenv("SYMBI_GRPC__ALLOW_INSECURE", "true")
    grpc = load_settings(ServiceSettings).grpc
    assert grpc.allow_insecure is True
    assert not grpc.mtls


def test_full_tls_on_any_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBI_GRPC__HOST", "0.0.0.0")
    for name, value in TLS.items():
        monkeypatch.setenv(name, value)
    grpc = load_settings(ServiceSettings).grpc
    assert grpc.mtls
    assert str(grpc.tls_ca_file) == "/etc/symbi/tls/ca.crt"


@pytest.mark.parametrize(
    ("present", "named"),
    [
        (["SYMBI_GRPC__TLS_CERT_FILE"], "grpc.tls_key_file"),
        (["SYMBI_GRPC__TLS_KEY_FILE"], "grpc.tls_key_file"),
        (["SYMBI_GRPC__TLS_CA_FILE"], "grpc.tls_ca_file"),
        (["SYMBI_GRPC__TLS_CERT_FILE", "SYMBI_GRPC__TLS_KEY_FILE"], "grpc.tls_ca_file"),
        (["SYMBI_GRPC__TLS_CERT_FILE", "SYMBI_GRPC__TLS_CA_FILE"], "grpc.tls_key_file"),
    ],
)
def test_partial_tls_is_invalid_and_names_the_key(
    present: list[str], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in present:
        monkeypatch.setenv(name, TLS[name])
    with pytest.raises(ConfigError) as info:
        load_settings(ServiceSettings)
    assert info.value.message.startswith("invalid configuration:")
    assert f"\n  {named} = " in info.value.message


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("symbi://user/alice", Caller("user", "alice")),
        ("symbi://service/svc-policy-0", Caller("service", "svc-policy-0")),
        ("symbi://agent/a_1", Caller("agent", "a_1")),
        ("symbi://wizard/alice", None),
        ("symbi://user/", None),
        ("symbi://user/a/b", None),
        ("spiffe://user/alice", None),
        ("symbi:/user/alice", None),
    ],
)
def test_principal_uris(uri: str, expected: Caller | None) -> None:
    assert Caller.parse(uri) == expected
    if expected is not None:
        assert expected.uri == uri
