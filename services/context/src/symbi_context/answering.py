"""Writing the answer from ranked passages: extractive (default) or by an LLM.

The extractive answerer picks the sentences of the passages that cover most of the
question's keywords (weighted by their passage's score), keeps them in ranked order and cites
each with its passage number, ``[n]``. The LLM answerer sends the numbered passages to an
OpenAI-compatible chat endpoint with instructions to answer only from them and cite.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from symbi_common.errors import Unavailable

from .keywords import KeywordEncoder, stem
from .openai_http import OpenAICompatibleClient, OpenAIEndpoint

__all__ = ["NO_ANSWER", "Answerer", "ExtractiveAnswerer", "LlmAnswerer", "Passage"]

NO_ANSWER = "No relevant context was found."
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class Passage:
    """A numbered passage an answer may cite."""

    number: int
    text: str
    score: float
    title: str = ""


class Answerer(Protocol):
    """Writes an answer to ``question`` from ``passages`` (citing them as ``[n]``)."""

    async def answer(
        self, question: str, keywords: Sequence[str], passages: Sequence[Passage]
    ) -> str:
        """The answer text."""
        ...


class ExtractiveAnswerer:
    """Cited sentences taken from the passages."""

    def __init__(self, sentences: int = 3, keywords: KeywordEncoder | None = None) -> None:
        self._sentences = sentences
        self._keywords = keywords or KeywordEncoder()

    async def answer(
        self, question: str, keywords: Sequence[str], passages: Sequence[Passage]
    ) -> str:
        """Up to ``sentences`` cited sentences, or :data:`NO_ANSWER`."""
        if not passages:
            return NO_ANSWER
        wanted = {stem(k) for k in keywords} or set(self._keywords.terms(question))
        top = max(p.score for p in passages) or 1.0
        scored: list[tuple[float, int, int, str, int]] = []
        for rank, passage in enumerate(passages):
            for pos, sentence in enumerate(s.strip() for s in _SENTENCE.split(passage.text)):
                if len(sentence) < 3:
                    continue
                terms = set(self._keywords.terms(sentence))
                coverage = len(terms & wanted) / len(wanted) if wanted else 0.0
                score = 0.6 * coverage + 0.4 * (passage.score / top)
                scored.append((score, -rank, -pos, sentence, passage.number))
        scored.sort(reverse=True)
        chosen: list[str] = []
        seen: set[str] = set()
        for _, _, _, sentence, number in scored:
            key = sentence.lower()
            if key in seen:
                continue
            seen.add(key)
            chosen.append(f"{sentence} [{number}]")
            if len(chosen) == self._sentences:
                break
        return " ".join(chosen) if chosen else NO_ANSWER


class LlmAnswerer:
    """An OpenAI-compatible chat model writes the answer from the passages."""

    def __init__(
        self,
        endpoint: OpenAIEndpoint,
        *,
        max_tokens: int = 400,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = OpenAICompatibleClient(endpoint, transport=transport)
        self._max_tokens = max_tokens

    async def answer(
        self, question: str, keywords: Sequence[str], passages: Sequence[Passage]
    ) -> str:
        """The model's answer; :data:`NO_ANSWER` without passages (no call is made)."""
        if not passages:
            return NO_ANSWER
        context = "\n\n".join(
            f"[{p.number}] {p.title + ': ' if p.title else ''}{p.text}" for p in passages
        )
        body = {
            "model": self._client.endpoint.model,
            "max_tokens": self._max_tokens,
            "temperature": 0,
            "messages": [
                {
                    "role": "system",
                    "content": (
                        "Answer the question using only the numbered passages. Cite every "
                        "claim with its passage number in brackets, like [2]. If the passages "
                        "do not contain the answer, say so."
                    ),
                },
                {"role": "user", "content": f"Passages:\n{context}\n\nQuestion: {question}"},
            ],
        }
        data = await self._client.post("chat/completions", body)
        try:
            text = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise Unavailable(
                "LLM endpoint answered without a message", reason="UPSTREAM_BAD_RESPONSE"
            ) from None
        if not isinstance(text, str) or not text.strip():
            raise Unavailable(
                "LLM endpoint answered with an empty message", reason="UPSTREAM_BAD_RESPONSE"
            )
        return text.strip()

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
