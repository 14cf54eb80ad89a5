"""The OpenAI-compatible embedder against a local httpx mock transport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest

from symbi_common.errors import (
    ConfigError,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from symbi_context import (
    EmbedderKind,
    EmbedderOptions,
    HashingEmbedder,
    OpenAIEndpoint,
    build_embedder,
)
from symbi_context.openai_embedder import OpenAICompatibleEmbedder

ENDPOINT = OpenAIEndpoint("http://embed.test/v1", "embed-small", api_key="s3cret", timeout_s=2)


def transport(handler: Any) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


async def test_batches_requests_orders_by_index_and_normalises() -> None:
    calls: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/embeddings"
        assert request.headers["authorization"] == "Bearer s3cret"
        body = json.loads(request.content)
        calls.append(body)
        data = [
            {"index": i, "embedding": [float(len(t)), 0.0, 0.0, 1.0]}
            for i, t in enumerate(body["input"])
        ]
        return httpx.Response(200, json={"data": list(reversed(data))})

    emb = OpenAICompatibleEmbedder(
        ENDPOINT, dimension=4, batch_size=2, transport=transport(handler)
    )
    out = await emb.embed(["a", "bbb", "cc"])
    assert [c["input"] for c in calls] == [["a", "bbb"], ["cc"]]
    assert calls[0]["model"] == "embed-small"
    assert out.shape == (3, 4)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)
    assert out[1, 0] > out[0, 0]  # "bbb" kept its own row
    await emb.aclose()


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        (httpx.Response(503), Unavailable, "HTTP 503"),
        (httpx.Response(429), ResourceExhausted, "rate limiting"),
        (httpx.Response(401, text="bad key"), FailedPrecondition, "HTTP 401"),
        (httpx.Response(200, text="not json"), Unavailable, "invalid JSON"),
        (
            httpx.Response(200, json={"data": [{"index": 0, "embedding": [1.0, 2.0]}]}),
            FailedPrecondition,
            "2-dimensional",
        ),
        (httpx.Response(200, json={"data": []}), Unavailable, "0 vectors for 1"),
    ],
)
async def test_provider_failures_map_onto_the_error_tree(
    response: httpx.Response, error: type, message: str
) -> None:
    emb = OpenAICompatibleEmbedder(ENDPOINT, dimension=4, transport=transport(lambda _: response))
    with pytest.raises(error, match=message):
        await emb.embed(["x"])


async def test_timeouts_and_connection_errors_are_retryable() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(DeadlineExceeded) as err:
        await OpenAICompatibleEmbedder(ENDPOINT, dimension=4, transport=transport(slow)).embed(
            ["x"]
        )
    assert err.value.retryable
    with pytest.raises(Unavailable) as err2:
        await OpenAICompatibleEmbedder(ENDPOINT, dimension=4, transport=transport(down)).embed(
            ["x"]
        )
    assert err2.value.retryable


def test_key_is_never_in_repr() -> None:
    assert "s3cret" not in repr(ENDPOINT)


async def test_hashing_embedder_only_when_asked_and_similar_texts_are_close() -> None:
    assert EmbedderOptions().kind is EmbedderKind.MINILM
    emb = build_embedder(EmbedderOptions(kind=EmbedderKind.HASHING, dimension=256))
    assert isinstance(emb, HashingEmbedder)
    v = await emb.embed(["red apples are sweet", "sweet red apples", "quantum chromodynamics"])
    assert v.shape == (3, 256)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])
    with pytest.raises(InvalidArgument, match="at most 4096"):
        await emb.embed(["x"] * 5000)


def test_embedder_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="384"):
        EmbedderOptions(dimension=512)
    with pytest.raises(ConfigError, match="endpoint"):
        EmbedderOptions(kind=EmbedderKind.OPENAI, dimension=1536)
    with pytest.raises(InvalidArgument, match="http"):
        OpenAIEndpoint("ftp://x", "m")
