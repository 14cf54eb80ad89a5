"""RFC 6962 Merkle tree hashing, proofs and their verification.

Hashes (RFC 6962 §2.1, SHA-256)::

    leaf  = SHA-256(0x00 ‖ entry bytes)
    node  = SHA-256(0x01 ‖ left ‖ right)
    MTH({}) = SHA-256("")

The tree over ``n`` leaves splits at ``k``, the largest power of two below ``n``; its left
part is therefore always a *complete* (perfect, aligned) subtree. Every hash a proof needs is
either a complete subtree or the hash of a right-edge range ``[a, n)``, which is the fold of
the complete subtrees that tile it. A log that persists the hash of every complete subtree
(:class:`NodeId` → hash) can thus answer any proof with ``O(log n)`` point reads, never
holding the tree in memory: :func:`inclusion_proof`, :func:`consistency_proof` and
:func:`root_at` work against a :class:`NodeReader`.

:class:`CompactRange` is the in-memory right frontier of the tree (one hash per set bit of
the size); appending to it yields the complete subtrees to persist.

Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 and raises :class:`ProofError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol

from symbi_audit.errors import ProofError
from symbi_common.errors import InvalidArgument

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "NodeId",
    "NodeReader",
    "consistency_proof",
    "consistency_proof_ranges",
    "fold_tiles",
    "inclusion_proof",
    "inclusion_proof_ranges",
    "leaf_hash",
    "node_hash",
    "range_nodes",
    "range_tiles",
    "root_at",
    "root_from_inclusion_proof",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 ‖ data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 ‖ left ‖ right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class NodeId(NamedTuple):
    """A complete subtree: the ``position``-th run of ``2**level`` leaves."""

    level: int
    position: int

    @property
    def start(self) -> int:
        """First leaf covered."""
        return self.position << self.level

    @property
    def end(self) -> int:
        """One past the last leaf covered."""
        return (self.position + 1) << self.level


class NodeReader(Protocol):
    """Where proofs read persisted complete-subtree hashes from."""

    def node_hashes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        """The hashes of the given complete subtrees; every id asked for must be present."""
        ...


def _split(size: int) -> int:
    """The largest power of two strictly below ``size`` (``size >= 2``)."""
    return 1 << ((size - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[NodeId]:
    """The complete subtrees tiling ``[start, end)``, left to right, largest first.

    For the ranges that occur in RFC 6962 proofs (``start`` aligned to a power of two at
    least ``end - start``) this is the RFC's own subtree structure, so the range's hash is
    the right fold of the tiles' hashes.
    """
    nodes: list[NodeId] = []
    while start < end:
        # Largest aligned power of two that starts at `start` and fits in the range.
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append(NodeId(level, start >> level))
        start += 1 << level
    return nodes


def _fold(hashes: Sequence[bytes]) -> bytes:
    result = hashes[-1]
    for h in reversed(hashes[:-1]):
        result = node_hash(h, result)
    return result


def inclusion_proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PATH(index, D[size]), in proof order (leaf first)."""
    if not 0 <= index < size:
        raise InvalidArgument(f"leaf index {index} is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def consistency_proof_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PROOF(old_size, D[new_size]), in proof order."""
    if not 0 <= old_size <= new_size:
        raise InvalidArgument(
            f"consistency needs 0 <= old size <= new size, got {old_size} and {new_size}"
        )
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    lo, hi, m, whole = 0, new_size, old_size, True
    while True:
        if m == hi - lo:
            if not whole:
                ranges.append((lo, hi))
            break
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            m -= k
            lo += k
            whole = False
    ranges.reverse()
    return ranges


def range_tiles(ranges: Sequence[tuple[int, int]]) -> list[list[NodeId]]:
    """For each leaf range, the complete subtrees that tile it (see :func:`range_nodes`)."""
    return [range_nodes(a, b) for a, b in ranges]


def fold_tiles(tiles: Sequence[Sequence[NodeId]], found: Mapping[NodeId, bytes]) -> list[bytes]:
    """The hash of each tiled range, from the tiles' stored hashes."""
    try:
        return [_fold([found[node] for node in tile]) for tile in tiles]
    except KeyError as exc:
        raise InvalidArgument(f"the log has no hash for subtree {exc.args[0]}") from exc


def _hashes_of_ranges(ranges: Sequence[tuple[int, int]], reader: NodeReader) -> list[bytes]:
    tiles = range_tiles(ranges)
    wanted = sorted({node for tile in tiles for node in tile})
    return fold_tiles(tiles, reader.node_hashes(wanted))


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves."""
    return _hashes_of_ranges(inclusion_proof_ranges(index, size), reader)


def consistency_proof(old_size: int, new_size: int, reader: NodeReader) -> list[bytes]:
    """The consistency proof between the trees of ``old_size`` and ``new_size`` leaves."""
    return _hashes_of_ranges(consistency_proof_ranges(old_size, new_size), reader)


def root_at(size: int, reader: NodeReader) -> bytes:
    """MTH of the first ``size`` leaves, from their ``popcount(size)`` complete subtrees."""
    if size < 0:
        raise InvalidArgument(f"tree size {size} is negative")
    if size == 0:
        return EMPTY_ROOT
    return _hashes_of_ranges([(0, size)], reader)[0]


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH over the given leaf hashes, streaming (memory ``O(log n)``)."""
    compact = CompactRange()
    for h in leaf_hashes:
        compact.append(h)
    return compact.root()


class CompactRange:
    """The right frontier of a tree of ``size`` leaves: one complete subtree per set bit.

    ``peaks`` are ordered left to right (largest first). Appending a leaf merges equal-sized
    peaks and reports every complete subtree it completed, so a store can persist them.
    """

    __slots__ = ("_peaks", "_size")

    def __init__(self, size: int = 0, peaks: Sequence[bytes] = ()) -> None:
        if size < 0 or len(peaks) != size.bit_count():
            raise InvalidArgument(
                f"a compact range of size {size} has {size.bit_count()} peaks, got {len(peaks)}"
            )
        for h in peaks:
            _check_hash("peak", h)
        self._size = size
        self._peaks = list(peaks)

    @property
    def size(self) -> int:
        """Number of leaves covered."""
        return self._size

    @property
    def peaks(self) -> tuple[bytes, ...]:
        """Hashes of the complete subtrees ``range_nodes(0, size)``, left to right."""
        return tuple(self._peaks)

    def copy(self) -> CompactRange:
        """An independent copy (for staging appends before they are durable)."""
        return CompactRange(self._size, self._peaks)

    def append(self, leaf: bytes) -> list[tuple[NodeId, bytes]]:
        """Add one leaf hash; returns the complete subtrees it created, leaf first."""
        index = self._size
        created = [(NodeId(0, index), leaf)]
        current = leaf
        level = 0
        # Each trailing one bit of the old size is a peak of equal height to merge with.
        while (index >> level) & 1:
            current = node_hash(self._peaks.pop(), current)
            level += 1
            created.append((NodeId(level, index >> level), current))
        self._peaks.append(current)
        self._size += 1
        return created

    def root(self) -> bytes:
        """MTH of the covered leaves."""
        return _fold(self._peaks) if self._peaks else EMPTY_ROOT


def _check_hash(what: str, value: bytes) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be a {HASH_SIZE}-byte SHA-256 hash")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2, without the comparison)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hash("leaf hash", leaf)
    fn, sn, r = index, size - 1, leaf
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
        if sn == 0:
            raise ProofError(f"inclusion proof is too long: {len(proof)} hashes")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof is too short: {len(proof)} hashes")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``size`` with ``root``."""
    _check_hash("root", root)
    if root_from_inclusion_proof(leaf, index, size, proof) != root:
        raise ProofError(
            f"inclusion proof of leaf {index} in tree size {size} does not lead to the root"
        )


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Check that the tree of ``new_size`` extends the tree of ``old_size`` (RFC 9162)."""
    _check_hash("old root", old_root)
    _check_hash("new root", new_root)
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
    if not 0 <= old_size <= new_size:
        raise ProofError(f"old size {old_size} is not between 0 and new size {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same tree size {old_size}")
        return
    if old_size == 0:
        # Every tree extends the empty tree; a non-empty proof is malformed.
        if proof:
            raise ProofError("consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof is too long: {len(proof)} hashes")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof is too short: {len(proof)} hashes")
    if fr != old_root:
        raise ProofError(f"consistency proof does not reproduce the root at size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not reproduce the root at size {new_size}")
