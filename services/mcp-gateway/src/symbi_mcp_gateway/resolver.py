"""SchemaPin key discovery: where a domain's public key and revocations come from.

A :class:`KeyResolver` turns a domain into a :class:`Discovery` — the domain's
``.well-known/schemapin.json`` document and its standalone revocation document, if any.
Implementations:

- :class:`WellKnownResolver` fetches the document over HTTP(S) with our own httpx client,
  under a deadline and a size limit (schemapin's online workflow would fetch with ``requests``,
  blocking, on every verification);
- :class:`BundleResolver` answers from a SchemaPin trust bundle (offline, air-gapped);
- :class:`DirectoryResolver` reads ``<domain>.json`` / ``<domain>.revocations.json`` files;
- :class:`ChainResolver` tries several in order; :class:`CachingResolver` remembers answers
  for a while, so one refresh of many tools fetches once per domain.

Resolvers raise :class:`~symbi_common.errors.NotFound` when they know nothing of a domain and
:class:`~symbi_common.errors.Unavailable` when they could not find out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import httpx
from schemapin import (
    LocalFileResolver,
    PublicKeyDiscovery,
    RevocationDocument,
    SchemaPinTrustBundle,
)

from symbi_common.errors import InvalidArgument, NotFound, SymbiError, Unavailable
from symbi_mcp_gateway.config import SchemaPinConfig

__all__ = [
    "BundleResolver",
    "CachingResolver",
    "ChainResolver",
    "DirectoryResolver",
    "Discovery",
    "KeyResolver",
    "WellKnownResolver",
    "build_resolver",
    "well_known_url",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Discovery:
    """A domain's discovery document (``public_key_pem``, ``revoked_keys``, ...) and its
    standalone revocation document."""

    domain: str
    document: Mapping[str, Any]
    revocation: RevocationDocument | None = None
    #: Where it came from (``https://…``, ``bundle``, a file path), for audit details.
    source: str = ""
    fetched_at: float = field(default_factory=time.monotonic)

    @property
    def public_key_pem(self) -> str:
        """The domain's current signing key."""
        pem = self.document.get("public_key_pem")
        return pem if isinstance(pem, str) else ""

    @property
    def revoked_keys(self) -> list[str]:
        """Fingerprints listed as revoked in the discovery document itself."""
        revoked = self.document.get("revoked_keys")
        return (
            [item for item in revoked if isinstance(item, str)] if isinstance(revoked, list) else []
        )

    @property
    def developer_name(self) -> str:
        """Who publishes the key, as the document says."""
        name = self.document.get("developer_name")
        return name if isinstance(name, str) else ""


class KeyResolver(Protocol):
    """Finds a domain's SchemaPin discovery document."""

    async def resolve(self, domain: str) -> Discovery:
        """The domain's discovery.

        Raises:
            NotFound: this resolver has nothing for the domain.
            Unavailable: the document could not be fetched or is malformed.
        """
        ...


def _checked_document(domain: str, data: Any, source: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping) or not PublicKeyDiscovery.validate_well_known_response(
        dict(data)
    ):
        raise Unavailable(
            f"discovery document for {domain} from {source} is malformed: it needs "
            "'schema_version' and 'public_key_pem'",
            reason="DISCOVERY_INVALID",
            retryable=False,
        )
    return MappingProxyType(dict(data))


def _revocation_from(data: Any, source: str) -> RevocationDocument:
    try:
        return RevocationDocument.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise Unavailable(
            f"revocation document at {source} is malformed: {exc!r}",
            reason="REVOCATION_INVALID",
            retryable=False,
        ) from None


def well_known_url(domain: str) -> str:
    """``https://<domain>/.well-known/schemapin.json`` (RFC 8615)."""
    return f"https://{domain}/.well-known/schemapin.json"


class WellKnownResolver:
    """Fetches ``.well-known/schemapin.json`` (and its ``revocation_endpoint``) over HTTP.

    The client is injected so the service shares one connection pool and tests can pass an
    ``httpx.MockTransport``. ``urls`` overrides the URL of chosen domains.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        urls: Mapping[str, str] | None = None,
        timeout_s: float = 5.0,
        max_bytes: int = 65_536,
    ) -> None:
        self._client = client
        self._urls = dict(urls or {})
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes

    async def resolve(self, domain: str) -> Discovery:
        url = self._urls.get(domain) or well_known_url(domain)
        document = _checked_document(domain, await self._fetch_json(url), url)
        revocation = None
        endpoint = document.get("revocation_endpoint")
        if isinstance(endpoint, str) and endpoint:
            # Revocations are part of the answer: a document whose revocation list cannot be
            # read is not trusted less, it is not trusted at all (fail closed).
            revocation = _revocation_from(await self._fetch_json(endpoint), endpoint)
        return Discovery(domain, document, revocation, source=url)

    async def _fetch_json(self, url: str) -> Any:
        try:
            async with asyncio.timeout(self._timeout_s):
                async with self._client.stream(
                    "GET", url, headers={"Accept": "application/json"}, follow_redirects=False
                ) as response:
                    if response.status_code == 404:
                        raise NotFound(f"{url}: HTTP 404", reason="DISCOVERY_NOT_FOUND")
                    if response.status_code != 200:
                        raise Unavailable(
                            f"{url}: HTTP {response.status_code}", reason="DISCOVERY_FETCH_FAILED"
                        )
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > self._max_bytes:
                            raise Unavailable(
                                f"{url}: document larger than {self._max_bytes} bytes",
                                reason="DISCOVERY_TOO_LARGE",
                                retryable=False,
                            )
        except TimeoutError:
            raise Unavailable(
                f"{url}: no answer within {self._timeout_s}s", reason="DISCOVERY_TIMEOUT"
            ) from None
        except httpx.HTTPError as exc:
            raise Unavailable(f"{url}: {exc!r}", reason="DISCOVERY_FETCH_FAILED") from None
        try:
            return json.loads(bytes(body))
        except ValueError:
            raise Unavailable(
                f"{url}: not JSON", reason="DISCOVERY_INVALID", retryable=False
            ) from None


class BundleResolver:
    """Answers from a SchemaPin trust bundle held in memory."""

    def __init__(self, bundle: SchemaPinTrustBundle, *, source: str = "bundle") -> None:
        self._bundle = bundle
        self._source = source

    @classmethod
    def from_json(cls, text: str, *, source: str = "bundle") -> BundleResolver:
        """Parse a bundle's JSON text.

        Raises:
            InvalidArgument: the text is not a trust bundle.
        """
        try:
            return cls(SchemaPinTrustBundle.from_json(text), source=source)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(
                f"{source}: not a SchemaPin trust bundle ({exc!r}); it needs "
                "'schemapin_bundle_version', 'created_at' and 'documents'",
                reason="BAD_TRUST_BUNDLE",
            ) from None

    @classmethod
    def from_file(cls, path: Path) -> BundleResolver:
        """Read a bundle file (at start-up; the read blocks).

        Raises:
            InvalidArgument: the file cannot be read or is not a trust bundle.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidArgument(
                f"{path}: cannot read trust bundle: {exc.strerror}", reason="BAD_TRUST_BUNDLE"
            ) from None
        return cls.from_json(text, source=str(path))

    async def resolve(self, domain: str) -> Discovery:
        found = self._bundle.find_discovery(domain)
        if found is None:
            raise NotFound(f"{self._source} has no document for {domain}", reason="NOT_IN_BUNDLE")
        document = _checked_document(domain, found, self._source)
        return Discovery(domain, document, self._bundle.find_revocation(domain), self._source)


class DirectoryResolver:
    """Reads ``<dir>/<domain>.json`` and ``<revocation dir>/<domain>.revocations.json``."""

    def __init__(self, discovery_dir: Path, revocation_dir: Path | None = None) -> None:
        self._dir = discovery_dir
        self._files = LocalFileResolver(
            str(discovery_dir), str(revocation_dir) if revocation_dir else None
        )

    async def resolve(self, domain: str) -> Discovery:
        if "/" in domain or domain.startswith("."):
            raise NotFound(f"{domain!r} cannot name a file", reason="NOT_IN_DIRECTORY")
        found = await asyncio.to_thread(self._files.resolve_discovery, domain)
        source = str(self._dir / f"{domain}.json")
        if found is None:
            raise NotFound(f"{source} is missing or not JSON", reason="NOT_IN_DIRECTORY")
        document = _checked_document(domain, found, source)
        revocation = await asyncio.to_thread(self._files.resolve_revocation, domain, dict(found))
        return Discovery(domain, document, revocation, source)


class ChainResolver:
    """Tries resolvers in order; the first that knows the domain answers."""

    def __init__(self, resolvers: Sequence[KeyResolver]) -> None:
        self._resolvers = tuple(resolvers)

    async def resolve(self, domain: str) -> Discovery:
        problems: list[str] = []
        unavailable = False
        for resolver in self._resolvers:
            try:
                return await resolver.resolve(domain)
            except NotFound as exc:
                problems.append(exc.message)
            except Unavailable as exc:
                unavailable = True
                problems.append(exc.message)
        detail = "; ".join(problems) or "no resolvers configured"
        if unavailable:
            raise Unavailable(f"no discovery for {domain}: {detail}", reason="DISCOVERY_FAILED")
        raise NotFound(f"no discovery for {domain}: {detail}", reason="DISCOVERY_NOT_FOUND")


class CachingResolver:
    """Remembers each domain's answer for ``ttl_s`` seconds (failures are not remembered)."""

    def __init__(
        self,
        inner: KeyResolver,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 4096,
    ) -> None:
        self._inner = inner
        self._ttl_s = ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, Discovery]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def resolve(self, domain: str) -> Discovery:
        cached = self._fresh(domain)
        if cached is not None:
            return cached
        # One fetch per domain at a time: a refresh of fifty tools asks once.
        lock = self._locks.setdefault(domain, asyncio.Lock())
        async with lock:
            cached = self._fresh(domain)
            if cached is not None:
                return cached
            try:
                discovery = await self._inner.resolve(domain)
            except SymbiError:
                self._entries.pop(domain, None)
                raise
            if len(self._entries) >= self._max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[domain] = (self._clock(), discovery)
            return discovery

    def invalidate(self, domain: str | None = None) -> None:
        """Forget one domain's answer (or all), e.g. after an operator rotates keys."""
        if domain is None:
            self._entries.clear()
        else:
            self._entries.pop(domain, None)

    def _fresh(self, domain: str) -> Discovery | None:
        entry = self._entries.get(domain)
        if entry is None:
            return None
        stored_at, discovery = entry
        if self._ttl_s <= 0 or self._clock() - stored_at >= self._ttl_s:
            return None
        return discovery


def build_resolver(
    config: SchemaPinConfig,
    client: httpx.AsyncClient,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> CachingResolver:
    """The resolver ``[mcp.schemapin]`` describes: trust bundle, then directory, then
    ``.well-known`` over HTTP(S), behind a cache of ``discovery_ttl_s``.

    Raises:
        InvalidArgument: the trust bundle cannot be read.
    """
    chain: list[KeyResolver] = []
    if config.trust_bundle is not None:
        chain.append(BundleResolver.from_file(config.trust_bundle))
    if config.discovery_dir is not None:
        chain.append(DirectoryResolver(config.discovery_dir, config.revocation_dir))
    if config.well_known_enabled:
        chain.append(
            WellKnownResolver(
                client,
                urls=config.well_known_urls,
                timeout_s=config.discovery_timeout_s,
                max_bytes=config.max_document_bytes,
            )
        )
    return CachingResolver(ChainResolver(chain), ttl_s=config.discovery_ttl_s, clock=clock)
