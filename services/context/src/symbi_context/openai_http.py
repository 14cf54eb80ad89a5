"""A small client for OpenAI-compatible HTTP APIs (``/embeddings``, ``/chat/completions``).

One seam for the embedding provider and the optional answer-writing LLM: a configured base
URL, model and key, a deadline on every request, and HTTP failures mapped onto the error
tree (5xx and transport errors → Unavailable, 429 → ResourceExhausted, timeouts →
DeadlineExceeded; all retryable; 401/403 and other 4xx → FailedPrecondition: the service's
configuration is wrong, not the caller's request). Tests inject an ``httpx.MockTransport``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from symbi_common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)

__all__ = ["OpenAICompatibleClient", "OpenAIEndpoint"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OpenAIEndpoint:
    """Where an OpenAI-compatible API lives. ``base_url`` ends before ``/embeddings`` or
    ``/chat/completions`` (e.g. ``http://127.0.0.1:8000/v1``)."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise InvalidArgument(
                f"endpoint url {self.base_url!r} must start with http:// or https://",
                reason="BAD_OPTIONS",
            )
        if not self.model:
            raise InvalidArgument("endpoint model must be set", reason="BAD_OPTIONS")
        if self.timeout_s <= 0:
            raise InvalidArgument("endpoint timeout_s must be positive", reason="BAD_OPTIONS")

    def __repr__(self) -> str:  # never print the key
        return f"OpenAIEndpoint(base_url={self.base_url!r}, model={self.model!r})"


class OpenAICompatibleClient:
    """POSTs JSON to an OpenAI-compatible endpoint with a deadline and typed errors."""

    def __init__(
        self, endpoint: OpenAIEndpoint, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        headers = {"Content-Type": "application/json"}
        if endpoint.api_key:
            headers["Authorization"] = f"Bearer {endpoint.api_key}"
        self.endpoint = endpoint
        self._http = httpx.AsyncClient(
            base_url=endpoint.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(endpoint.timeout_s),
            transport=transport,
        )

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path`` and return the decoded JSON object."""
        what = f"{self.endpoint.base_url.rstrip('/')}/{path}"
        try:
            resp = await self._http.post(path, json=body)
        except httpx.TimeoutException:
            raise DeadlineExceeded(
                f"{what} did not answer within {self.endpoint.timeout_s}s",
                reason="UPSTREAM_TIMEOUT",
            ) from None
        except httpx.TransportError as exc:
            raise Unavailable(f"{what} unreachable: {exc}", reason="UPSTREAM_UNAVAILABLE") from exc
        if resp.status_code == 429:
            raise ResourceExhausted(
                f"{what} is rate limiting (HTTP 429)", reason="UPSTREAM_RATE_LIMITED"
            )
        if resp.status_code >= 500:
            raise Unavailable(
                f"{what} failed with HTTP {resp.status_code}", reason="UPSTREAM_UNAVAILABLE"
            )
        if resp.status_code >= 400:
            raise FailedPrecondition(
                f"{what} refused the request with HTTP {resp.status_code}: {resp.text[:200]}",
                reason="UPSTREAM_REFUSED",
            )
        try:
            data = resp.json()
        except ValueError:
            raise Unavailable(
                f"{what} answered with invalid JSON", reason="UPSTREAM_BAD_RESPONSE"
            ) from None
        if not isinstance(data, dict):
            raise Unavailable(f"{what} answered with a non-object", reason="UPSTREAM_BAD_RESPONSE")
        return data

    async def aclose(self) -> None:
        """Close the connection pool; idempotent."""
        await self._http.aclose()
