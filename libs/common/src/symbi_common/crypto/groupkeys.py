"""Topic group keys: a random AES-256 key per topic and generation, sealed to each member.

Sealing: ``wrap = HKDF-SHA256(X25519(issuer, member), info)`` where ``info`` binds the topic,
the generation and both principals' ids and key ids; the sealed key is
``nonce ‖ AES-256-GCM(wrap, group key, aad=info)``, and the issuer signs the whole record.
A member keeps every generation it was given, so it can read what it was entitled to after a
rotation; a principal removed from a topic simply gets no new generation.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import crypto_scalarmult
from nacl.exceptions import BadSignatureError

from symbi.bus.v1 import envelope_pb2
from symbi_common.crypto.encoding import canonical
from symbi_common.crypto.identity import Certificate, PrincipalKeys, now_ms
from symbi_common.errors import InvalidArgument, PermissionDenied

__all__ = ["GroupKeyring", "derive_key", "group_key_id", "seal_group_key", "unseal_group_key"]

_SEAL_LABEL = b"symbi.groupkey.seal.v1"
_SIG_LABEL = b"symbi.groupkey.sig.v1"


def derive_key(own: PrincipalKeys, peer_x25519_public: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 over the X25519 shared secret, bound to ``info``."""
    shared = crypto_scalarmult(bytes(own.agreement_key), peer_x25519_public)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def group_key_id(topic: str, generation: int) -> str:
    return f"grp:{topic}:{generation}"


def _info(sealed: envelope_pb2.SealedGroupKey, issuer_key_id: str) -> bytes:
    return canonical(
        _SEAL_LABEL,
        [
            (1, sealed.topic),
            (2, sealed.generation),
            (3, sealed.issuer),
            (4, issuer_key_id),
            (5, sealed.member_id),
            (6, sealed.member_key_id),
        ],
    )


def _sig_bytes(sealed: envelope_pb2.SealedGroupKey) -> bytes:
    return canonical(
        _SIG_LABEL,
        [
            (1, sealed.topic),
            (2, sealed.generation),
            (3, sealed.member_id),
            (4, sealed.member_key_id),
            (5, sealed.sealed_key),
            (6, sealed.issuer),
            (7, sealed.issued_at_ms),
            (8, sealed.issuer_key_id),
        ],
    )


def seal_group_key(
    issuer: PrincipalKeys, member: Certificate, topic: str, generation: int, key: bytes
) -> envelope_pb2.SealedGroupKey:
    sealed = envelope_pb2.SealedGroupKey(
        topic=topic,
        generation=generation,
        member_id=member.principal_id,
        member_key_id=member.key_id,
        issuer=issuer.principal_id,
        issuer_key_id=issuer.key_id,
        issued_at_ms=now_ms(),
    )
    info = _info(sealed, issuer.key_id)
    wrap = derive_key(issuer, member.x25519_public, info)
    nonce = os.urandom(12)
    sealed.sealed_key = nonce + AESGCM(wrap).encrypt(nonce, key, info)
    sealed.signature = issuer.sign(_sig_bytes(sealed))
    return sealed


def unseal_group_key(
    member: PrincipalKeys, sealed: envelope_pb2.SealedGroupKey, issuer: Certificate
) -> bytes:
    """The group key, after checking the issuer's signature and that it was sealed to us."""
    if sealed.member_id != member.principal_id or sealed.member_key_id != member.key_id:
        raise PermissionDenied("group key sealed to another member", reason="GROUP_KEY_NOT_OURS")
    if sealed.issuer != issuer.principal_id or sealed.issuer_key_id != issuer.key_id:
        raise PermissionDenied(
            "group key issuer does not match its certificate", reason="GROUP_KEY_ISSUER"
        )
    try:
        issuer.verify_key.verify(_sig_bytes(sealed), sealed.signature)
    except BadSignatureError:
        raise PermissionDenied(
            "group key signature does not verify", reason="GROUP_KEY_SIGNATURE"
        ) from None
    info = _info(sealed, issuer.key_id)
    wrap = derive_key(member, issuer.x25519_public, info)
    try:
        key = AESGCM(wrap).decrypt(sealed.sealed_key[:12], sealed.sealed_key[12:], info)
    except InvalidTag:
        raise PermissionDenied(
            "group key does not decrypt", reason="GROUP_KEY_UNDECRYPTABLE"
        ) from None
    if len(key) != 32:
        raise InvalidArgument("group key has the wrong length", reason="GROUP_KEY_LENGTH")
    return key


@dataclass(frozen=True)
class _Generation:
    number: int
    key: bytes
    cipher: AESGCM


class GroupKeyring:
    """The group keys this principal holds, every generation it was given."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, dict[int, _Generation]] = {}
        self._changed = threading.Condition(self._lock)

    def add(self, topic: str, generation: int, key: bytes) -> None:
        with self._lock:
            self._keys.setdefault(topic, {})[generation] = _Generation(generation, key, AESGCM(key))
            self._changed.notify_all()

    def latest(self, topic: str) -> tuple[int, AESGCM] | None:
        with self._lock:
            generations = self._keys.get(topic)
            if not generations:
                return None
            newest = generations[max(generations)]
            return newest.number, newest.cipher

    def cipher(self, topic: str, generation: int) -> AESGCM | None:
        with self._lock:
            found = self._keys.get(topic, {}).get(generation)
            return None if found is None else found.cipher

    def topics(self) -> list[str]:
        with self._lock:
            return sorted(self._keys)

    def generations(self, topic: str) -> list[int]:
        with self._lock:
            return sorted(self._keys.get(topic, {}))
