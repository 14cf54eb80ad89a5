"""The one deterministic byte encoding that Symbi signs and authenticates.

Protobuf serialization is not canonical across implementations, so signatures never cover
it. Instead each signed structure is encoded as a domain-separation label followed by its
fields in a fixed order, each as ``tag (1 byte) ‖ length (4 bytes, big-endian) ‖ bytes``.
Strings are UTF-8; integers are 8-byte big-endian (two's complement); maps are their items
sorted by key, each ``key ‖ 0x00 ‖ value``, joined by 0x1e. Every field is always present, so
no two different structures encode to the same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

__all__ = ["Field", "canonical", "encode_int", "encode_map", "tlv"]

Field = tuple[int, bytes | str | int | bool]


def encode_int(value: int) -> bytes:
    return value.to_bytes(8, "big", signed=True)


def encode_map(items: Mapping[str, str]) -> bytes:
    return b"\x1e".join(k.encode() + b"\x00" + v.encode() for k, v in sorted(items.items()))


def _bytes(value: bytes | str | int | bool) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"\x01" if value else b"\x00"
    return encode_int(value)


_TAG_LEN = struct.Struct(">BI").pack


def tlv(tag: int, raw: bytes) -> bytes:
    """One field: ``tag ‖ len ‖ bytes``."""
    return _TAG_LEN(tag, len(raw)) + raw


def canonical(label: bytes, fields: Iterable[Field]) -> bytes:
    """``label ‖ 0x00 ‖ (tag ‖ len ‖ bytes)*`` for the given fields, in the given order."""
    out = bytearray(label)
    out += b"\x00"
    for tag, value in fields:
        raw = (
            value if type(value) is bytes else _bytes(value)
        )  # hot path: most fields are bytes/str
        out += _TAG_LEN(tag, len(raw))
        out += raw
    return bytes(out)
