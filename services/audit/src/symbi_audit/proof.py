"""Inclusion and consistency proofs as values, with a JSON form for files and the CLI.

JSON (hashes in lower-case hex)::

    {"type": "inclusion", "index": 5, "tree_size": 8, "leaf_hash": "…", "hashes": ["…"]}
    {"type": "consistency", "old_size": 6, "new_size": 8, "hashes": ["…"]}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from symbi_audit.merkle import HASH_SIZE, verify_consistency, verify_inclusion
from symbi_common.errors import InvalidArgument

__all__ = ["ConsistencyProof", "InclusionProof", "parse_hash"]


def parse_hash(text: object, what: str = "hash") -> bytes:
    """A 32-byte hash from hex text; :class:`InvalidArgument` naming ``what`` otherwise."""
    if not isinstance(text, str):
        raise InvalidArgument(f"{what} must be a hex string")
    try:
        value = bytes.fromhex(text.strip())
    except ValueError as exc:
        raise InvalidArgument(f"{what} {text!r} is not hex") from exc
    if len(value) != HASH_SIZE:
        raise InvalidArgument(f"{what} is {len(value)} bytes; a SHA-256 hash is {HASH_SIZE}")
    return value


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgument(f"proof field {key!r} must be a non-negative integer")
    return value


def _hashes(obj: Mapping[str, Any]) -> tuple[bytes, ...]:
    value = obj.get("hashes")
    if not isinstance(value, list):
        raise InvalidArgument("proof field 'hashes' must be a list of hex hashes")
    return tuple(parse_hash(h, f"hashes[{i}]") for i, h in enumerate(value))


@dataclasses.dataclass(frozen=True, slots=True)
class InclusionProof:
    """Proof that the leaf with ``leaf_hash`` is entry ``index`` of the tree of ``tree_size``."""

    index: int
    tree_size: int
    leaf_hash: bytes
    hashes: tuple[bytes, ...]

    def verify(self, root: bytes) -> None:
        """Raise :class:`~symbi_audit.errors.ProofError` unless it leads to ``root``."""
        verify_inclusion(self.leaf_hash, self.index, self.tree_size, self.hashes, root)

    def to_json(self) -> dict[str, Any]:
        """The JSON object described in the module docstring."""
        return {
            "type": "inclusion",
            "index": self.index,
            "tree_size": self.tree_size,
            "leaf_hash": self.leaf_hash.hex(),
            "hashes": [h.hex() for h in self.hashes],
        }

    @classmethod
    def from_json(cls, obj: object) -> InclusionProof:
        """Parse the JSON object."""
        if not isinstance(obj, dict) or obj.get("type", "inclusion") != "inclusion":
            raise InvalidArgument("not an inclusion proof object")
        return cls(
            _int(obj, "index"),
            _int(obj, "tree_size"),
            parse_hash(obj.get("leaf_hash"), "leaf_hash"),
            _hashes(obj),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """Proof that the tree of ``new_size`` leaves extends the tree of ``old_size``."""

    old_size: int
    new_size: int
    hashes: tuple[bytes, ...]

    def verify(self, old_root: bytes, new_root: bytes) -> None:
        """Raise :class:`~symbi_audit.errors.ProofError` unless the roots are consistent."""
        verify_consistency(self.old_size, self.new_size, self.hashes, old_root, new_root)

    def to_json(self) -> dict[str, Any]:
        """The JSON object described in the module docstring."""
        return {
            "type": "consistency",
            "old_size": self.old_size,
            "new_size": self.new_size,
            "hashes": [h.hex() for h in self.hashes],
        }

    @classmethod
    def from_json(cls, obj: object) -> ConsistencyProof:
        """Parse the JSON object."""
        if not isinstance(obj, dict) or obj.get("type", "consistency") != "consistency":
            raise InvalidArgument("not a consistency proof object")
        return cls(_int(obj, "old_size"), _int(obj, "new_size"), _hashes(obj))
