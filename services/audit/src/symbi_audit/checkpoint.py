"""Checkpoints: signed tree heads in the C2SP tlog-checkpoint format.

The note text of a checkpoint is::

    <origin>\\n
    <tree size, ASCII decimal without leading zeros>\\n
    <base64 root hash>\\n
    [extension lines]

and it is signed as a :mod:`signed note <symbi_audit.note>` by the log key, whose name is
the origin. :class:`CheckpointPolicy` decides when the log signs a new one.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Sequence

from symbi_audit.errors import NoteError
from symbi_audit.merkle import HASH_SIZE
from symbi_audit.note import NoteSigner, NoteVerifier, open_note, sign_note
from symbi_common.errors import InvalidArgument

__all__ = ["Checkpoint", "CheckpointPolicy", "SignedCheckpoint"]

_SIZE = re.compile(r"0|[1-9][0-9]*")


@dataclasses.dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: the log's origin, its size and the RFC 6962 root at that size."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise NoteError("checkpoint origin must be one non-empty line")
        if self.size < 0:
            raise NoteError(f"checkpoint size {self.size} is negative")
        if len(self.root_hash) != HASH_SIZE:
            raise NoteError(f"checkpoint root hash must be {HASH_SIZE} bytes")
        for line in self.extensions:
            if not line or "\n" in line:
                raise NoteError("checkpoint extension lines must be non-empty single lines")

    def body(self) -> str:
        """The note text that gets signed."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        lines = [self.origin, str(self.size), root, *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text (already verified, or to be)."""
        if not text.endswith("\n"):
            raise NoteError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("checkpoint text needs origin, size and root hash lines")
        origin, size_text, root_text, *extensions = lines
        if not _SIZE.fullmatch(size_text):
            raise NoteError(f"checkpoint size {size_text!r} is not a decimal without zeros")
        try:
            root = base64.b64decode(root_text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise NoteError("checkpoint root hash is not base64") from exc
        return cls(origin, int(size_text), root, tuple(extensions))

    def sign(self, signer: NoteSigner) -> SignedCheckpoint:
        """Sign this checkpoint with the log key."""
        if signer.name != self.origin:
            raise InvalidArgument(
                f"the log key is named {signer.name!r} but the checkpoint origin is "
                f"{self.origin!r}; they must be equal"
            )
        return SignedCheckpoint(self, sign_note(self.body(), [signer]))


@dataclasses.dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint with its signed note (the full text that is published and exported)."""

    checkpoint: Checkpoint
    note: str

    @classmethod
    def open(cls, note: str, verifiers: Sequence[NoteVerifier]) -> SignedCheckpoint:
        """Verify the note's signature by a trusted key, then parse its checkpoint."""
        opened = open_note(note, verifiers)
        checkpoint = Checkpoint.parse(opened.text)
        if not any(v.name == checkpoint.origin for v in opened.verified_by):
            raise NoteError(
                f"checkpoint origin {checkpoint.origin!r} is not the name of the key that "
                "signed it",
                reason="ORIGIN_MISMATCH",
            )
        return cls(checkpoint, note)

    @property
    def size(self) -> int:
        """The tree size it commits to."""
        return self.checkpoint.size

    @property
    def root_hash(self) -> bytes:
        """The root hash it commits to."""
        return self.checkpoint.root_hash


@dataclasses.dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """When to sign a new checkpoint: after ``every_entries`` new entries or, if anything
    new arrived, after ``every_seconds``; never for an unchanged tree."""

    every_entries: int = 1000
    every_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.every_entries < 1:
            raise InvalidArgument(f"every_entries is {self.every_entries}; it must be >= 1")
        if not self.every_seconds > 0:
            raise InvalidArgument(f"every_seconds is {self.every_seconds}; it must be > 0")

    def due(self, *, size: int, last_size: int, now: float, last_time: float) -> bool:
        """Whether the tree of ``size`` needs a checkpoint (times in monotonic seconds)."""
        if size <= last_size:
            return False
        return size - last_size >= self.every_entries or now - last_time >= self.every_seconds

    def seconds_until_due(self, *, now: float, last_time: float) -> float:
        """How long the app's timer may sleep before the time rule can fire."""
        return max(0.0, last_time + self.every_seconds - now)
