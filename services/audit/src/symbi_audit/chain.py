"""The hash chain over log entries.

::

    chain_0 = SHA-256(GENESIS ‖ leaf_0)            GENESIS = 32 zero bytes
    chain_i = SHA-256(chain_{i-1} ‖ leaf_i)         leaf_i  = SHA-256(0x00 ‖ canonical bytes)

The chain and the Merkle tree hash the same leaves. The chain makes a single removed,
reordered or inserted entry visible at exactly that position when an export is scanned in
order; the Merkle tree makes the whole prefix provable against one signed checkpoint.
"""

from __future__ import annotations

import hashlib

__all__ = ["GENESIS", "chain_hash"]

GENESIS = bytes(32)
"""The chain value before the first entry."""


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    """``SHA-256(previous ‖ leaf)``."""
    return hashlib.sha256(previous + leaf).digest()
