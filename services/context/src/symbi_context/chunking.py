"""Splitting documents into overlapping chunks: plain text, Markdown and JSON.

Chunks end at sentence (or line) boundaries where possible and repeat the tail of the
previous chunk (up to ``overlap_chars``) so an answer spanning a boundary stays findable.
Markdown chunks never cross a heading and carry their heading path as ``section``; code
fences are not parsed for headings. JSON is flattened to ``path: value`` lines, one section per top-level
key and one per record of a top-level list of objects.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from symbi_common.errors import InvalidArgument

__all__ = ["Chunk", "Chunker", "DocumentFormat"]

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[\"'(\[]?[A-Z0-9])")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


class DocumentFormat(enum.StrEnum):
    """Formats the knowledge base ingests."""

    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk: its text, position and (Markdown/JSON) section path."""

    text: str
    index: int
    section: str = ""


class Chunker:
    """Splits documents into chunks of at most ``chunk_chars`` characters."""

    def __init__(self, chunk_chars: int = 800, overlap_chars: int = 120) -> None:
        if overlap_chars >= chunk_chars // 2:
            raise InvalidArgument(
                "chunk overlap must be less than half the chunk size", reason="BAD_OPTIONS"
            )
        self._size = chunk_chars
        self._overlap = overlap_chars

    def chunk(self, content: str, fmt: DocumentFormat) -> list[Chunk]:
        """Chunks of ``content`` read as ``fmt``, numbered from 0."""
        if fmt is DocumentFormat.MARKDOWN:
            sections = list(_markdown_sections(content))
        elif fmt is DocumentFormat.JSON:
            sections = list(_json_sections(content))
        else:
            sections = [("", _text_units(content))]
        out: list[Chunk] = []
        for section, units in sections:
            for text in self._pack(units):
                out.append(Chunk(text, len(out), section))
        return out

    def _pack(self, units: list[str]) -> Iterator[str]:
        """Greedy packing of units (sentences or lines) with a tail overlap."""
        pieces: list[str] = []
        for unit in units:
            pieces.extend(self._split_long(unit))
        current: list[str] = []
        length = 0
        for piece in pieces:
            if current and length + len(piece) + 1 > self._size:
                yield " ".join(current)
                current = self._tail(current)
                length = sum(len(p) + 1 for p in current)
            current.append(piece)
            length += len(piece) + 1
        if current:
            yield " ".join(current)

    def _tail(self, pieces: list[str]) -> list[str]:
        """The last pieces whose length fits in the overlap (a word tail if none fits)."""
        if self._overlap == 0:
            return []
        tail: list[str] = []
        length = 0
        for piece in reversed(pieces):
            if length + len(piece) + 1 > self._overlap:
                break
            tail.insert(0, piece)
            length += len(piece) + 1
        if not tail:
            words = pieces[-1].split()
            while words and length + len(words[-1]) + 1 <= self._overlap:
                tail.insert(0, words.pop())
                length += len(tail[0]) + 1
            return [" ".join(tail)] if tail else []
        return tail

    def _split_long(self, unit: str) -> list[str]:
        """Split a unit longer than the chunk size at word boundaries (or hard)."""
        limit = self._size - self._overlap - 1
        if len(unit) <= limit:
            return [unit]
        parts: list[str] = []
        current = ""
        for word in unit.split():
            while len(word) > limit:
                if current:
                    parts.append(current)
                    current = ""
                parts.append(word[:limit])
                word = word[limit:]
            if current and len(current) + 1 + len(word) > limit:
                parts.append(current)
                current = word
            else:
                current = f"{current} {word}" if current else word
        if current:
            parts.append(current)
        return parts


def _text_units(text: str) -> list[str]:
    units: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        flat = " ".join(para.split())
        if flat:
            units.extend(s for s in _SENTENCE_END.split(flat) if s)
    return units


def _markdown_sections(text: str) -> Iterator[tuple[str, list[str]]]:
    path: list[tuple[int, str]] = []
    body: list[str] = []
    in_fence = False

    def flush() -> Iterator[tuple[str, list[str]]]:
        units = _text_units("\n".join(body))
        if units:
            yield " > ".join(title for _, title in path), units

    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            body.append(line)
            continue
        m = None if in_fence else _HEADING.match(line)
        if m:
            yield from flush()
            body = []
            level = len(m.group(1))
            path = [(lvl, t) for lvl, t in path if lvl < level]
            path.append((level, m.group(2)))
        else:
            body.append(line)
    yield from flush()


def _json_sections(text: str) -> Iterator[tuple[str, list[str]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"document is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            reason="MALFORMED_DOCUMENT",
            details={"line": str(exc.lineno), "column": str(exc.colno)},
        ) from None
    if isinstance(data, list):
        for i, item in enumerate(data):
            lines = list(_flatten(item, f"[{i}]"))
            if lines:
                yield f"[{i}]", lines
    elif isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                # A list of records: one section per record, so chunks never mix records.
                for i, item in enumerate(value):
                    lines = list(_flatten(item, f"{key}[{i}]"))
                    if lines:
                        yield f"{key}[{i}]", lines
                continue
            lines = list(_flatten(value, str(key)))
            if lines:
                yield str(key), lines
    else:
        yield "", [json.dumps(data, ensure_ascii=False)]


def _flatten(value: Any, path: str, depth: int = 0) -> Iterator[str]:
    if depth > 32:
        raise InvalidArgument(
            "JSON document nests deeper than 32 levels", reason="MALFORMED_DOCUMENT"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            joined = ", ".join(_scalar(v) for v in value)
            if joined:
                yield f"{path}: {joined}"
        else:
            for i, item in enumerate(value):
                yield from _flatten(item, f"{path}[{i}]", depth + 1)
    elif value is not None and _scalar(value):
        yield f"{path}: {_scalar(value)}"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return " ".join(str(value).split())
