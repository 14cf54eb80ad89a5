"""Agent tokens of the MCP endpoint: who may sign for whom, lifetimes, tampering, revocation."""

from __future__ import annotations

import pytest

from symbi_common.errors import InvalidArgument, PermissionDenied
from symbi_mcp_gateway.tokens import (
    KeyringTokenAuthenticator,
    check_agent_id,
    issue_agent_token,
)
from symbi_testing.principals import CryptoWorld


@pytest.fixture
def world() -> CryptoWorld:
    return CryptoWorld()


def _authenticator(world: CryptoWorld, max_ttl_s: float = 3600) -> KeyringTokenAuthenticator:
    return KeyringTokenAuthenticator(
        world.keyring, max_ttl_s=max_ttl_s, clock_skew_s=30, clock=lambda: world.now() / 1000
    )


def _token(world: CryptoWorld, signer: str, role: str, agent: str, ttl_s: float = 60) -> str:
    keys = world.principal(signer, role).keys
    token, _ = issue_agent_token(keys, agent, ttl_s=ttl_s, now_ms=world.now())
    return token


async def test_an_agent_signs_for_itself_and_a_gateway_for_anyone(world: CryptoWorld) -> None:
    check = _authenticator(world)
    assert await check.authenticate(_token(world, "agent-alice", "agent", "agent-alice")) == (
        "agent-alice"
    )
    gateway_token = _token(world, "svc-mcp-gateway-a", "service", "agent-bob")
    assert await check.authenticate(gateway_token) == "agent-bob"
    claims = check.verify(gateway_token)
    assert claims.issuer == "svc-mcp-gateway-a"
    assert claims.expires_at_ms - claims.issued_at_ms == 60_000


@pytest.mark.parametrize(
    ("signer", "role", "why"),
    [
        ("agent-mallory", "agent", "for itself only"),
        ("svc-policy-a", "service", "may not sign agent tokens"),
        ("node-a", "node", "may not sign agent tokens"),
    ],
)
def test_nobody_else_may_sign_for_an_agent(
    world: CryptoWorld, signer: str, role: str, why: str
) -> None:
    with pytest.raises(PermissionDenied, match=why):
        _authenticator(world).verify(_token(world, signer, role, "agent-alice"))


def test_lifetime_is_checked_on_every_use(world: CryptoWorld) -> None:
    check = _authenticator(world, max_ttl_s=600)
    token = _token(world, "agent-alice", "agent", "agent-alice", ttl_s=60)
    assert check.verify(token).agent_id == "agent-alice"
    world.clock_ms[0] += 61_000
    with pytest.raises(PermissionDenied, match="expired"):
        check.verify(token)  # remembered as verified, still refused once expired
    with pytest.raises(PermissionDenied, match="longer than 600s"):
        check.verify(_token(world, "agent-alice", "agent", "agent-alice", ttl_s=3600))
    keys = world.principal("agent-alice", "agent").keys
    future, _ = issue_agent_token(keys, "agent-alice", ttl_s=60, now_ms=world.now() + 120_000)
    with pytest.raises(PermissionDenied, match="future"):
        check.verify(future)


def test_tampered_and_malformed_tokens_are_refused(world: CryptoWorld) -> None:
    check = _authenticator(world)
    token = _token(world, "agent-alice", "agent", "agent-alice")
    prefix, body, signature = token.split(".")
    other = _token(world, "agent-bob", "agent", "agent-bob").split(".")[1]
    for bad, why in [
        (f"{prefix}.{other}.{signature}", "signature"),  # bob's claims, alice's signature
        (f"{prefix}.{body}.{signature[:-4]}AAAA", "signature"),
        ("sat2." + token[5:], "not a sat1 token"),
        ("sat1.%%%.abc", "base64"),
        ("sat1.e30.AAAA", "malformed claims"),  # {}
        ("x" * 5000, "too long"),
    ]:
        with pytest.raises(PermissionDenied, match=why):
            check.verify(bad)


def test_a_revoked_signer_invalidates_its_tokens(world: CryptoWorld) -> None:
    check = _authenticator(world)
    token = _token(world, "agent-alice", "agent", "agent-alice")
    assert check.verify(token).agent_id == "agent-alice"
    assert world.keyring.add_revocation(world.root.revoke("agent-alice", reason="compromised"))
    with pytest.raises(PermissionDenied, match="not valid now"):
        check.verify(token)


def test_agent_ids_follow_the_contract() -> None:
    assert check_agent_id("agent-7f3a_b") == "agent-7f3a_b"
    for bad in ("", "a" * 65, "agent alice", "agent/alice", "agent.alice"):
        with pytest.raises(InvalidArgument):
            check_agent_id(bad)
