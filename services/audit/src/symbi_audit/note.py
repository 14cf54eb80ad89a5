"""Signed notes (C2SP signed-note) with Ed25519 keys.

A note is a text ending in a newline, a blank line, then one or more signature lines::

    <text ending in \\n>
    \\n
    — <key name> <base64(4-byte key ID ‖ Ed25519 signature over the text)>\\n

The key ID is ``SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4]`` (big-endian).
Keys are written the way the Go ``note`` package writes them, so other transparency tools
accept ours:

- verifier key: ``<name>+<8 hex digits key ID>+<base64(0x01 ‖ public key)>``
- signer key:   ``PRIVATE+KEY+<name>+<8 hex digits key ID>+<base64(0x01 ‖ seed)>``

Verification follows the specification: signatures from unknown keys are ignored, a
signature from a known key that fails rejects the note, and a note with no verified
signature from a known key is rejected.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import re
from collections.abc import Sequence

import nacl.exceptions
import nacl.signing

from symbi_audit.errors import NoteError

__all__ = [
    "MAX_SIGNATURES",
    "NoteSigner",
    "NoteVerifier",
    "OpenedNote",
    "key_id",
    "open_note",
    "sign_note",
]

_ED25519 = 0x01
_DASH = "\u2014 "
MAX_SIGNATURES = 100
"""Signature lines accepted on one note (the specification requires at least 16)."""

_SPACE = re.compile(r"\s")


def _check_name(name: str) -> str:
    if not name or _SPACE.search(name) or "+" in name:
        raise NoteError(
            f"key name {name!r} is invalid: it must be non-empty without spaces or '+'",
            reason="BAD_KEY_NAME",
        )
    return name


def key_id(name: str, public_key: bytes) -> int:
    """The 32-bit key ID of an Ed25519 key: first 4 bytes of SHA-256(name‖\\n‖0x01‖key)."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([_ED25519]) + public_key)
    return int.from_bytes(digest.digest()[:4], "big")


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"{what} is not valid base64") from exc


@dataclasses.dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A trusted Ed25519 note key: its name, ID and public key."""

    name: str
    key_id: int
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != 32:
            raise NoteError("an Ed25519 public key is 32 bytes")
        if key_id(self.name, self.public_key) != self.key_id:
            raise NoteError(f"key ID {self.key_id:08x} does not match key {self.name!r}")

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> NoteVerifier:
        """The verifier for ``public_key`` under ``name``."""
        return cls(name, key_id(name, public_key), bytes(public_key))

    @classmethod
    def parse(cls, text: str) -> NoteVerifier:
        """Parse ``<name>+<hex id>+<base64(0x01 ‖ key)>``."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise NoteError(
                "verifier key must look like <name>+<8 hex digits>+<base64 key>",
                reason="BAD_VERIFIER_KEY",
            )
        raw = _b64decode(parts[2], "verifier key")
        if len(raw) != 33 or raw[0] != _ED25519:
            raise NoteError("verifier key is not an Ed25519 (type 0x01) key")
        return cls(_check_name(parts[0]), int(parts[1], 16), raw[1:])

    def __str__(self) -> str:
        encoded = base64.b64encode(bytes([_ED25519]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (without the key ID prefix) signs ``text``."""
        try:
            nacl.signing.VerifyKey(self.public_key).verify(text, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
            return False
        return True


class NoteSigner:
    """An Ed25519 note signing key (keep its :meth:`private_key_text` secret)."""

    __slots__ = ("_key", "verifier")

    def __init__(self, name: str, key: nacl.signing.SigningKey) -> None:
        self._key = key
        self.verifier = NoteVerifier.from_public_key(name, bytes(key.verify_key))

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """A fresh random key."""
        return cls(name, nacl.signing.SigningKey.generate())

    @classmethod
    def parse(cls, text: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>``."""
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError(
                "signer key must look like PRIVATE+KEY+<name>+<8 hex digits>+<base64 seed>",
                reason="BAD_SIGNER_KEY",
            )
        raw = _b64decode(parts[4], "signer key")
        if len(raw) != 33 or raw[0] != _ED25519:
            raise NoteError("signer key is not an Ed25519 (type 0x01) key")
        signer = cls(_check_name(parts[2]), nacl.signing.SigningKey(raw[1:]))
        if f"{signer.key_id:08x}" != parts[3]:
            raise NoteError(f"signer key ID {parts[3]} does not match its key")
        return signer

    @property
    def name(self) -> str:
        """The key name written on signature lines (the log origin, by convention)."""
        return self.verifier.name

    @property
    def key_id(self) -> int:
        """The 32-bit key ID."""
        return self.verifier.key_id

    def private_key_text(self) -> str:
        """The secret key in the Go ``note`` encoding."""
        encoded = base64.b64encode(bytes([_ED25519]) + bytes(self._key)).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{encoded}"

    def signature_line(self, text: str) -> str:
        """The ``— name base64(id ‖ sig)`` line (with newline) for a note text."""
        signature = self._key.sign(text.encode("utf-8")).signature
        blob = self.key_id.to_bytes(4, "big") + signature
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode('ascii')}\n"

    def __repr__(self) -> str:
        return f"NoteSigner({self.verifier})"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if any((ch < " " and ch != "\n") or ch == "\x7f" for ch in text):
        raise NoteError("note text must not contain control characters other than newline")


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """The signed note: ``text``, a blank line, one signature line per signer."""
    _check_text(text)
    if text.endswith("\n\n"):
        raise NoteError("note text must not end with a blank line")
    if not signers:
        raise NoteError("a note needs at least one signer")
    return text + "\n" + "".join(s.signature_line(text) for s in signers)


@dataclasses.dataclass(frozen=True, slots=True)
class OpenedNote:
    """A note whose signature by at least one trusted key verified."""

    text: str
    verified_by: tuple[NoteVerifier, ...]


def open_note(note: str, verifiers: Sequence[NoteVerifier]) -> OpenedNote:
    """Verify ``note`` against trusted keys; :class:`NoteError` if it cannot be trusted."""
    _check_text(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("signed note has no blank line before its signatures")
    text, sig_block = note[: split + 1], note[split + 2 :]
    lines = sig_block.split("\n")[:-1]  # sig_block ends in "\n" (checked above)
    if not lines:
        raise NoteError("signed note has no signature lines")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"signed note has {len(lines)} signatures; at most {MAX_SIGNATURES}")
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: list[NoteVerifier] = []
    payload = text.encode("utf-8")
    for line in lines:
        if not line.startswith(_DASH):
            raise NoteError(f"malformed signature line {line!r}: must start with '— '")
        name, _, encoded = line[len(_DASH) :].partition(" ")
        _check_name(name)
        blob = _b64decode(encoded, "signature")
        if len(blob) < 5:
            raise NoteError("signature is too short to hold a key ID")
        verifier = known.get((name, int.from_bytes(blob[:4], "big")))
        if verifier is None:
            continue  # unknown keys are ignored (e.g. witnesses' cosignatures)
        if not verifier.verify(payload, blob[4:]):
            raise NoteError(
                f"signature by {verifier.name} ({verifier.key_id:08x}) does not verify: the "
                "note was altered or forged",
                reason="BAD_SIGNATURE",
            )
        if verifier not in verified:
            verified.append(verifier)
    if not verified:
        raise NoteError(
            "no signature on the note is by a trusted key; trusted: "
            + ", ".join(str(v) for v in verifiers),
            reason="UNTRUSTED_NOTE",
        )
    return OpenedNote(text, tuple(verified))
