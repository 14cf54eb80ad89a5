"""Agent identities minted by a node, and the agent traffic's names and encodings."""

from __future__ import annotations

import pytest

from symbi_common.bus import Credentials
from symbi_common.crypto.identity import PrincipalKeys, RootAuthority
from symbi_common.crypto.keyring import Keyring
from symbi_common.errors import InvalidArgument
from symbi_sandbox.events import agent_rpc_subject, agent_topic, decode_payload, encode_payload
from symbi_sandbox.identity import AgentIdentityIssuer, derive_agent_keys


def issuer_credentials() -> tuple[RootAuthority, Credentials]:
    root = RootAuthority.create()
    keys = PrincipalKeys.generate("node-a-issuer")
    return root, Credentials(keys, root.issue_for(keys, "issuer"), root.certificate, None)


def test_agent_keys_are_stable_per_node_and_distinct_per_agent() -> None:
    _, issuer = issuer_credentials()
    _, other = issuer_credentials()
    a1 = derive_agent_keys(issuer.keys, "agent-a")
    assert derive_agent_keys(issuer.keys, "agent-a").key_id == a1.key_id
    assert derive_agent_keys(issuer.keys, "agent-b").key_id != a1.key_id
    assert derive_agent_keys(other.keys, "agent-a").key_id != a1.key_id
    assert a1.x25519_public != derive_agent_keys(issuer.keys, "agent-b").x25519_public


def test_certificates_chain_to_the_root_through_the_issuer() -> None:
    root, issuer = issuer_credentials()
    minted = AgentIdentityIssuer(issuer, directory=None).credentials("agent-a", 600)  # type: ignore[arg-type]
    assert minted.role == "agent"
    assert minted.principal_id == "agent-a"
    keyring = Keyring(root.certificate)
    assert not keyring.add_certificate(minted.certificate)  # the issuer is not known yet
    assert keyring.add_certificate(issuer.certificate)
    assert keyring.add_certificate(minted.certificate)
    valid_for = minted.certificate.proto.not_after_ms - minted.certificate.proto.not_before_ms
    assert valid_for <= 601_000


def test_bad_agent_ids_and_wrong_credentials_are_refused() -> None:
    _, issuer = issuer_credentials()
    with pytest.raises(InvalidArgument) as bad:
        AgentIdentityIssuer(issuer, directory=None).credentials("agent/x", 60)  # type: ignore[arg-type]
    assert bad.value.reason == "BAD_AGENT_ID"
    root = RootAuthority.create()
    keys = PrincipalKeys.generate("node-a")
    node = Credentials(keys, root.issue_for(keys, "node"), root.certificate, None)
    with pytest.raises(Exception, match="not issuer"):
        AgentIdentityIssuer(node, directory=None)  # type: ignore[arg-type]


def test_topic_names() -> None:
    assert agent_topic("news") == ("news", "agents.news")
    assert agent_topic("agents.news") == ("news", "agents.news")
    assert agent_topic("topic://alerts/critical") == ("alerts/critical", "agents.alerts.critical")
    for bad in ("", "a..b", "a b", "a.*", "x" * 201, "news.>"):
        with pytest.raises(InvalidArgument):
            agent_topic(bad)
    assert agent_rpc_subject("agent-b") == "symbi.rpc.agents.agent-b.call"


def test_payloads() -> None:
    assert decode_payload("application/json", encode_payload({"a": [1, "é"]})) == {"a": [1, "é"]}
    assert decode_payload("text/plain", b"hi") == "hi"
    assert decode_payload("application/octet-stream", b"\x00\x01") == {
        "content_type": "application/octet-stream",
        "base64": "AAE=",
    }
    with pytest.raises(InvalidArgument):
        encode_payload({"x": object()})
