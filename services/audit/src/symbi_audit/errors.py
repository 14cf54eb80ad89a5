"""Errors of the audit domain, each a leaf of the shared ``SymbiError`` tree.

::

    InvalidArgument
    ├── ProofError          a Merkle proof does not verify against the roots given
    └── NoteError           a signed note (checkpoint) is malformed or its signature fails
"""

from __future__ import annotations

from symbi_common.errors import InvalidArgument

__all__ = ["NoteError", "ProofError"]


class ProofError(InvalidArgument):
    """An inclusion or consistency proof failed verification; the message says which check."""


class NoteError(InvalidArgument):
    """A signed note or checkpoint is malformed, or no trusted signature on it verifies."""
