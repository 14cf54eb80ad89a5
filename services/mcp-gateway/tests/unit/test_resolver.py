"""Key discovery: HTTP fetching through httpx's mock transport, bundles, chains, caching."""

from __future__ import annotations

import json
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

from symbi_common.errors import InvalidArgument, NotFound, Unavailable
from symbi_mcp_gateway import BundleResolver, CachingResolver, ChainResolver, WellKnownResolver

if TYPE_CHECKING:
    from ..conftest import KeyPair

DOMAIN = "tools.example.com"


def serving(routes: dict[str, httpx.Response], hits: list[str] | None = None) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if hits is not None:
            hits.append(str(request.url))
        return routes.get(str(request.url), httpx.Response(404))

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_fetches_the_well_known_document(keypair: KeyPair) -> None:
    document = create_well_known_response(keypair.public_pem, "Example")
    async with serving(
        {f"https://{DOMAIN}/.well-known/schemapin.json": httpx.Response(200, json=document)}
    ) as client:
        found = await WellKnownResolver(client).resolve(DOMAIN)
    assert found.public_key_pem == keypair.public_pem
    assert found.developer_name == "Example"
    assert found.revocation is None


async def test_follows_the_revocation_endpoint(keypair: KeyPair) -> None:
    revocation = build_revocation_document(DOMAIN)
    add_revoked_key(revocation, "sha256:dead", RevocationReason.SUPERSEDED)
    document = create_well_known_response(
        keypair.public_pem, "Example", revocation_endpoint="https://rev.example/r.json"
    )
    routes = {
        "http://127.0.0.1:9/wk.json": httpx.Response(200, json=document),
        "https://rev.example/r.json": httpx.Response(200, json=revocation.to_dict()),
    }
    async with serving(routes) as client:
        found = await WellKnownResolver(
            client, urls={DOMAIN: "http://127.0.0.1:9/wk.json"}
        ).resolve(DOMAIN)
    assert found.revocation is not None
    assert found.revocation.revoked_keys[0].fingerprint == "sha256:dead"


async def test_an_unreadable_revocation_document_fails_the_discovery(keypair: KeyPair) -> None:
    document = create_well_known_response(
        keypair.public_pem, "E", revocation_endpoint="https://rev.example/r.json"
    )
    routes = {
        f"https://{DOMAIN}/.well-known/schemapin.json": httpx.Response(200, json=document),
        "https://rev.example/r.json": httpx.Response(500),
    }
    async with serving(routes) as client:
        with pytest.raises(Unavailable, match="HTTP 500"):
            await WellKnownResolver(client).resolve(DOMAIN)


@pytest.mark.parametrize(
    ("response", "error", "needle"),
    [
        (httpx.Response(404), NotFound, "404"),
        (httpx.Response(503), Unavailable, "503"),
        (httpx.Response(200, content=b"not json"), Unavailable, "not JSON"),
        (httpx.Response(200, json={"schema_version": "1.2"}), Unavailable, "malformed"),
        (httpx.Response(200, content=b"x" * 5000), Unavailable, "larger than"),
    ],
)
async def test_bad_answers(response: httpx.Response, error: type[Exception], needle: str) -> None:
    url = f"https://{DOMAIN}/.well-known/schemapin.json"
    async with serving({url: response}) as client:
        with pytest.raises(error, match=needle):
            await WellKnownResolver(client, max_bytes=4096).resolve(DOMAIN)


def bundle_with(keys: KeyPair) -> str:
    bundle = SchemaPinTrustBundle(
        schemapin_bundle_version="1.2",
        created_at="2026-01-01T00:00:00Z",
        documents=[
            create_bundled_discovery(DOMAIN, create_well_known_response(keys.public_pem, "Bundled"))
        ],
    )
    return json.dumps(bundle.to_dict())


async def test_bundle_resolver(keypair: KeyPair) -> None:
    resolver = BundleResolver.from_json(bundle_with(keypair))
    found = await resolver.resolve(DOMAIN)
    assert found.public_key_pem == keypair.public_pem
    with pytest.raises(NotFound):
        await resolver.resolve("other.example")


def test_a_bad_bundle_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="trust bundle"):
        BundleResolver.from_json('{"documents": []}')


async def test_chain_falls_through_and_explains(keypair: KeyPair) -> None:
    async with serving({}) as client:
        chain = ChainResolver(
            [BundleResolver.from_json(bundle_with(keypair)), WellKnownResolver(client)]
        )
        assert (await chain.resolve(DOMAIN)).source == "bundle"
        with pytest.raises(NotFound) as caught:
            await chain.resolve("other.example")
    assert "bundle" in caught.value.message
    assert "404" in caught.value.message


async def test_cache_answers_within_the_ttl_only(keypair: KeyPair) -> None:
    hits: list[str] = []
    now = [0.0]
    document = create_well_known_response(keypair.public_pem, "E")
    async with serving(
        {f"https://{DOMAIN}/.well-known/schemapin.json": httpx.Response(200, json=document)}, hits
    ) as client:
        cache = CachingResolver(WellKnownResolver(client), ttl_s=60, clock=lambda: now[0])
        await cache.resolve(DOMAIN)
        await cache.resolve(DOMAIN)
        assert len(hits) == 1
        now[0] = 61
        await cache.resolve(DOMAIN)
        assert len(hits) == 2
        cache.invalidate(DOMAIN)
        await cache.resolve(DOMAIN)
        assert len(hits) == 3


async def test_cache_does_not_remember_failures() -> None:
    hits: list[str] = []
    async with serving({}, hits) as client:
        cache = CachingResolver(WellKnownResolver(client), ttl_s=60)
        for _ in range(2):
            with pytest.raises(NotFound):
                await cache.resolve(DOMAIN)
    assert len(hits) == 2
