"""Keyword side of hybrid search: tokenising, stemming and BM25-style sparse vectors.

Documents become sparse vectors whose values are BM25's saturated term frequency
(``tf·(k1+1) / (tf + k1·(1−b+b·len/avg_len))``); queries weigh each distinct term 1. The
vector store's IDF modifier supplies the inverse document frequency, so the dot product the
engine computes is BM25. Term ids are a stable hash of the stemmed term (31 bits), the same
in every process and on every backend.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass

from .vector_store import SparseVector

__all__ = ["STOPWORDS", "KeywordEncoder", "stem", "tokenize"]

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves s t don't isn't aren't doesn't didn't can't won't it's i'm i've you're
    tell please explain describe give know""".split()  # noqa: SIM905 (a word list reads better as text)
)

# Suffixes stripped by the light stemmer, longest first. A full Porter stemmer buys little
# for retrieval over short passages; this keeps plural and common verb forms together.
_SUFFIXES = (
    ("ational", "ate"),
    ("ization", "ize"),
    ("fulness", "ful"),
    ("iveness", "ive"),
    ("ousness", "ous"),
    ("nesses", ""),
    ("ments", "ment"),
    ("ings", ""),
    ("ing", ""),
    ("ies", "y"),
    ("ied", "y"),
    ("sses", "ss"),
    ("edly", ""),
    ("ed", ""),
    ("ly", ""),
    ("es", ""),
    ("s", ""),
)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` (letters and digits; inner apostrophes kept)."""
    return [m.group(0).replace("’", "'") for m in _WORD.finditer(text.lower())]


def stem(token: str) -> str:
    """A light suffix-stripping stemmer (keeps at least three characters of stem)."""
    if len(token) <= 3 or token.isdigit():
        return token
    if token.endswith("ss"):
        return token
    for suffix, replacement in _SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            base = token[: -len(suffix)] + replacement
            # "running" → "runn" → "run": undo a doubled final consonant left by -ing/-ed.
            if (
                suffix in ("ing", "ed")
                and len(base) >= 4
                and base[-1] == base[-2]
                and base[-1] not in "aeiouslz"
            ):
                base = base[:-1]
            return base
    return token


def _term_id(term: str) -> int:
    digest = hashlib.blake2b(term.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class KeywordEncoder:
    """Turns text into sparse keyword vectors (documents) and query vectors."""

    k1: float = 1.2
    b: float = 0.75
    avg_len: float = 60.0
    max_terms: int = 512

    def terms(self, text: str) -> list[str]:
        """Stemmed, stopword-free terms of ``text`` in order."""
        return [stem(t) for t in tokenize(text) if t not in STOPWORDS and len(t) > 1]

    def keywords(self, text: str) -> list[str]:
        """Distinct content words of ``text`` (unstemmed, in order), for display and
        extractive scoring."""
        seen: dict[str, None] = {}
        for token in tokenize(text):
            if token not in STOPWORDS and len(token) > 1:
                seen.setdefault(token, None)
        return list(seen)

    def document(self, text: str) -> SparseVector:
        """BM25 term-frequency weights of a document."""
        terms = self.terms(text)
        if not terms:
            return SparseVector((), ())
        counts = Counter(terms).most_common(self.max_terms)
        norm = self.k1 * (1 - self.b + self.b * len(terms) / self.avg_len)
        weights: dict[int, float] = {}
        for term, tf in counts:
            tid = _term_id(term)
            weights[tid] = weights.get(tid, 0.0) + tf * (self.k1 + 1) / (tf + norm)
        return _sparse(weights)

    def query(self, text: str) -> SparseVector:
        """Weight 1 for each distinct query term."""
        return _sparse({_term_id(t): 1.0 for t in self.terms(text)[: self.max_terms]})


def _sparse(weights: dict[int, float]) -> SparseVector:
    ids = sorted(weights)
    return SparseVector(tuple(ids), tuple(weights[i] for i in ids))
