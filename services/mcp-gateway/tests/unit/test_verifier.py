"""SchemaPin signature checks: real ECDSA P-256 keys and signatures, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from schemapin import (
    RevocationReason,
    add_revoked_key,
    build_revocation_document,
    create_well_known_response,
)

from symbi_mcp_gateway import (
    Discovery,
    SignatureOutcome,
    ToolPin,
    check_signature,
    sign_tool_document,
)
from symbi_mcp_gateway.verifier import key_fingerprint

if TYPE_CHECKING:
    from ..conftest import KeyPair

DOMAIN = "tools.example.com"
DOC = {"name": "search", "description": "Find things", "inputSchema": {"type": "object"}}


def discovery_for(keys: KeyPair, *, revoked: list[str] | None = None, revocation=None) -> Discovery:  # type: ignore[no-untyped-def]
    document = create_well_known_response(keys.public_pem, "Example Tools", revoked_keys=revoked)
    return Discovery(DOMAIN, document, revocation, source="test")


def pin_for(keys: KeyPair) -> ToolPin:
    return ToolPin(
        server="s",
        tool="search",
        definition_hash="sha256:x",
        domain=DOMAIN,
        key_fingerprint=key_fingerprint(keys.public_pem),
        public_key_pem=keys.public_pem,
    )


def check(
    signature: str | None,
    *,
    discovery: Discovery | None,
    pin: ToolPin | None = None,
    doc=DOC,
    domain: str | None = DOMAIN,
):  # type: ignore[no-untyped-def]
    return check_signature(
        doc, signature, domain=domain, tool_id="s/search", discovery=discovery, pin=pin
    )


def test_valid_signature_under_the_discovered_key(keypair: KeyPair) -> None:
    result = check(sign_tool_document(DOC, keypair.private_pem), discovery=discovery_for(keypair))
    assert result.outcome is SignatureOutcome.VALID
    assert result.key_fingerprint == key_fingerprint(keypair.public_pem)
    assert result.developer_name == "Example Tools"


def test_tampered_document_is_invalid(keypair: KeyPair) -> None:
    signature = sign_tool_document(DOC, keypair.private_pem)
    tampered = {**DOC, "description": "Find things and exfiltrate"}
    result = check(signature, discovery=discovery_for(keypair), doc=tampered)
    assert result.outcome is SignatureOutcome.INVALID


def test_garbage_signature_is_invalid(keypair: KeyPair) -> None:
    assert (
        check("bm90IGEgc2lnbmF0dXJl", discovery=discovery_for(keypair)).outcome
        is SignatureOutcome.INVALID
    )


def test_unsigned(keypair: KeyPair) -> None:
    assert check(None, discovery=discovery_for(keypair)).outcome is SignatureOutcome.UNSIGNED


def test_signed_but_no_domain_is_unresolved(keypair: KeyPair) -> None:
    result = check(sign_tool_document(DOC, keypair.private_pem), discovery=None, domain=None)
    assert result.outcome is SignatureOutcome.UNRESOLVED


def test_signed_without_discovery_or_pin_is_unresolved(keypair: KeyPair) -> None:
    result = check_signature(
        DOC,
        sign_tool_document(DOC, keypair.private_pem),
        domain=DOMAIN,
        tool_id="s/search",
        discovery=None,
        pin=None,
        discovery_error="HTTP 503",
    )
    assert result.outcome is SignatureOutcome.UNRESOLVED
    assert "HTTP 503" in result.detail


def test_the_pinned_key_still_verifies_when_discovery_is_down(keypair: KeyPair) -> None:
    result = check(
        sign_tool_document(DOC, keypair.private_pem), discovery=None, pin=pin_for(keypair)
    )
    assert result.outcome is SignatureOutcome.VALID
    assert any("revocation not checked" in warning for warning in result.warnings)


def test_the_pinned_key_wins_over_a_rotated_discovery_key(
    make_keypair: Callable[[], KeyPair],
) -> None:
    old, new = make_keypair(), make_keypair()
    result = check(
        sign_tool_document(DOC, old.private_pem), discovery=discovery_for(new), pin=pin_for(old)
    )
    assert result.outcome is SignatureOutcome.VALID
    assert result.key_fingerprint == key_fingerprint(old.public_pem)


def test_a_new_key_is_reported_so_the_caller_sees_the_change(
    make_keypair: Callable[[], KeyPair],
) -> None:
    old, new = make_keypair(), make_keypair()
    result = check(
        sign_tool_document(DOC, new.private_pem), discovery=discovery_for(new), pin=pin_for(old)
    )
    assert result.outcome is SignatureOutcome.VALID
    assert result.key_fingerprint == key_fingerprint(new.public_pem)


def test_signed_by_a_stranger_is_invalid(make_keypair: Callable[[], KeyPair]) -> None:
    owner, stranger = make_keypair(), make_keypair()
    result = check(
        sign_tool_document(DOC, stranger.private_pem),
        discovery=discovery_for(owner),
        pin=pin_for(owner),
    )
    assert result.outcome is SignatureOutcome.INVALID


def test_a_key_in_the_simple_revocation_list_is_revoked(keypair: KeyPair) -> None:
    fingerprint = key_fingerprint(keypair.public_pem)
    result = check(
        sign_tool_document(DOC, keypair.private_pem),
        discovery=discovery_for(keypair, revoked=[fingerprint]),
    )
    assert result.outcome is SignatureOutcome.REVOKED


def test_a_revoked_pinned_key_fails_even_unsigned_tools(
    make_keypair: Callable[[], KeyPair],
) -> None:
    old, new = make_keypair(), make_keypair()
    revocation = build_revocation_document(DOMAIN)
    add_revoked_key(revocation, key_fingerprint(old.public_pem), RevocationReason.KEY_COMPROMISE)
    result = check(None, discovery=discovery_for(new, revocation=revocation), pin=pin_for(old))
    assert result.outcome is SignatureOutcome.REVOKED
    assert "key_compromise" in result.detail
