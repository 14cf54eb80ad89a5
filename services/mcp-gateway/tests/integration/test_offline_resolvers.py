"""Offline key discovery from real files: a trust bundle and a directory of discovery and
revocation documents, as ``[mcp.schemapin]`` configures them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from schemapin import (
    RevocationReason,
    SchemaPinTrustBundle,
    add_revoked_key,
    build_revocation_document,
    create_bundled_discovery,
    create_well_known_response,
)

from symbi_common.errors import InvalidArgument, NotFound
from symbi_mcp_gateway import (
    SchemaPinConfig,
    SignatureOutcome,
    build_resolver,
    check_signature,
    sign_tool_document,
)
from symbi_mcp_gateway.verifier import key_fingerprint

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..conftest import KeyPair

DOC = {"name": "search", "description": "Find things", "inputSchema": {"type": "object"}}


async def test_bundle_first_then_directory_without_network(
    tmp_path: Path, make_keypair: Callable[[], KeyPair]
) -> None:
    bundled, filed = make_keypair(), make_keypair()
    bundle = SchemaPinTrustBundle(
        "1.2",
        "2026-01-01T00:00:00Z",
        [
            create_bundled_discovery(
                "bundled.example", create_well_known_response(bundled.public_pem, "B")
            )
        ],
    )
    (tmp_path / "bundle.json").write_text(json.dumps(bundle.to_dict()))
    discovery_dir = tmp_path / "discovery"
    discovery_dir.mkdir()
    (discovery_dir / "filed.example.json").write_text(
        json.dumps(create_well_known_response(filed.public_pem, "F"))
    )
    revocation = build_revocation_document("filed.example")
    add_revoked_key(revocation, key_fingerprint(filed.public_pem), RevocationReason.KEY_COMPROMISE)
    (discovery_dir / "filed.example.revocations.json").write_text(json.dumps(revocation.to_dict()))

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no network expected, got {request.url}")

    config = SchemaPinConfig(
        trust_bundle=tmp_path / "bundle.json",
        discovery_dir=discovery_dir,
        revocation_dir=discovery_dir,
        well_known_enabled=False,
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        resolver = build_resolver(config, http)
        from_bundle = await resolver.resolve("bundled.example")
        from_files = await resolver.resolve("filed.example")
        with pytest.raises(NotFound):
            await resolver.resolve("unknown.example")

    assert from_bundle.source.endswith("bundle.json")
    ok = check_signature(
        DOC,
        sign_tool_document(DOC, bundled.private_pem),
        domain="bundled.example",
        tool_id="s/search",
        discovery=from_bundle,
        pin=None,
    )
    assert ok.outcome is SignatureOutcome.VALID
    revoked = check_signature(
        DOC,
        sign_tool_document(DOC, filed.private_pem),
        domain="filed.example",
        tool_id="s/search",
        discovery=from_files,
        pin=None,
    )
    assert revoked.outcome is SignatureOutcome.REVOKED


async def test_an_unreadable_bundle_stops_start_up(tmp_path: Path) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(InvalidArgument, match="cannot read trust bundle"):
            build_resolver(SchemaPinConfig(trust_bundle=tmp_path / "missing.json"), http)
