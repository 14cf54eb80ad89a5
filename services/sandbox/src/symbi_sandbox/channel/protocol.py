"""The agent socket's wire protocol: length-prefixed JSON frames.

A frame is a 4-byte big-endian unsigned length ``N`` followed by ``N`` bytes of UTF-8 JSON
holding one object (1 ≤ N ≤ the server's frame limit, 1 MiB by default). The agent sends
requests ``{"id": 7, "op": "send", ...}``; the server answers each with
``{"id": 7, "ok": true, "result": ...}`` or ``{"id": 7, "ok": false, "error": {"code":
"PERMISSION_DENIED", "reason": "...", "message": "..."}}``, in completion order, and pushes
subscription events ``{"event": "message", "subscription": 3, "message": {...}}``. A
connection whose first frame is ``{"op": "egress.connect", "host": ..., "port": ...}``
becomes, after an ``ok`` answer, a raw byte tunnel to that destination. docs/sandbox.md has
every operation; the agent side is ``symbi_sandbox/agent_sdk/symbi_agent.py``.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

from symbi_common.errors import InvalidArgument, SymbiError

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "OPERATIONS",
    "PROTOCOL_VERSION",
    "FrameTooLarge",
    "encode_frame",
    "error_body",
    "read_frame",
]

PROTOCOL_VERSION = 1
DEFAULT_MAX_FRAME_BYTES = 1024 * 1024
_HEADER = struct.Struct(">I")

OPERATIONS = (
    "hello",
    "send",
    "receive",
    "publish",
    "subscribe",
    "unsubscribe",
    "request",
    "tool.call",
    "memory.store",
    "memory.query",
    "egress.connect",
)


class FrameTooLarge(InvalidArgument):
    """A frame's declared length exceeds the limit; the connection cannot be resynchronised."""


def encode_frame(body: dict[str, Any], *, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    """Serialises one frame; raises :class:`FrameTooLarge` past ``max_bytes``."""
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) > max_bytes:
        raise FrameTooLarge(
            f"frame of {len(data)} bytes exceeds the {max_bytes}-byte limit",
            reason="FRAME_TOO_LARGE",
        )
    return _HEADER.pack(len(data)) + data


async def read_frame(
    reader: asyncio.StreamReader, *, max_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> dict[str, Any] | None:
    """Reads one frame; ``None`` at a clean end of stream.

    Raises :class:`FrameTooLarge` for an oversized length (the caller must close) and
    :class:`InvalidArgument` for a body that is not a JSON object (the stream stays usable).
    """
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise InvalidArgument(
            "connection closed inside a frame header", reason="TRUNCATED"
        ) from exc
    (length,) = _HEADER.unpack(header)
    if length == 0 or length > max_bytes:
        raise FrameTooLarge(
            f"frame length {length} is outside 1..{max_bytes}", reason="FRAME_TOO_LARGE"
        )
    try:
        data = await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise InvalidArgument("connection closed inside a frame", reason="TRUNCATED") from exc
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"frame is not UTF-8 JSON: {exc}", reason="MALFORMED_FRAME") from exc
    if not isinstance(body, dict):
        raise InvalidArgument("frame must hold a JSON object", reason="MALFORMED_FRAME")
    return body


def error_body(exc: SymbiError) -> dict[str, Any]:
    """The ``error`` member of a failed response."""
    return {
        "code": exc.code.name,
        "reason": exc.reason,
        "message": exc.message,
        "retryable": exc.retryable,
    }
