"""Principals, their keys and certificates, and the cluster root that signs them.

Every principal (service instance, worker node, agent, user) has an Ed25519 key that signs
its envelopes and an X25519 key for key agreement. A certificate binds both public keys to a
principal id and role for a validity window, signed by its issuer: the cluster root, or an
*issuer* principal (role ``issuer``) the root certified, which may only certify agents. A
revocation, signed by the root, withdraws one certificate or every certificate of a principal.

Key ids are fingerprints: the first 16 bytes of SHA-256 over the Ed25519 public key, in hex.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.public import PrivateKey as X25519PrivateKey
from nacl.signing import SigningKey, VerifyKey

from symbi.bus.v1 import envelope_pb2
from symbi_common.crypto.encoding import canonical
from symbi_common.errors import InvalidArgument, PermissionDenied

__all__ = [
    "PRINCIPAL_ID_RE",
    "ROLES",
    "Certificate",
    "PrincipalKeys",
    "RootAuthority",
    "fingerprint",
    "now_ms",
    "sign_revocation",
    "verify_revocation_signature",
]

#: Principal ids are single NATS subject tokens.
PRINCIPAL_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
ROLES = frozenset({"root", "issuer", "service", "node", "agent", "user"})

_CERT_LABEL = b"symbi.certificate.v1"
_REVOCATION_LABEL = b"symbi.revocation.v1"


def now_ms() -> int:
    return int(time.time() * 1000)


def fingerprint(ed25519_public_key: bytes) -> str:
    """The key id of a public key."""
    return hashlib.sha256(ed25519_public_key).digest()[:16].hex()


def check_principal_id(principal_id: str) -> str:
    if not PRINCIPAL_ID_RE.match(principal_id):
        raise InvalidArgument(
            f"principal id {principal_id!r} is invalid: use 1-128 letters, digits, '-' or '_'",
            reason="BAD_PRINCIPAL_ID",
        )
    return principal_id


@dataclass(frozen=True)
class PrincipalKeys:
    """A principal's private keys: Ed25519 for signing, X25519 for key agreement."""

    principal_id: str
    signing_key: SigningKey
    agreement_key: X25519PrivateKey

    @classmethod
    def generate(cls, principal_id: str) -> PrincipalKeys:
        return cls(
            check_principal_id(principal_id), SigningKey.generate(), X25519PrivateKey.generate()
        )

    @property
    def ed25519_public(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def x25519_public(self) -> bytes:
        return bytes(self.agreement_key.public_key)

    @cached_property
    def key_id(self) -> str:
        return fingerprint(self.ed25519_public)

    def sign(self, data: bytes) -> bytes:
        return self.signing_key.sign(data).signature

    # ---- files
    def to_json(self) -> str:
        return json.dumps(
            {
                "principal_id": self.principal_id,
                "ed25519_seed": base64.b64encode(bytes(self.signing_key)).decode(),
                "x25519_private": base64.b64encode(bytes(self.agreement_key)).decode(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> PrincipalKeys:
        try:
            data = json.loads(text)
            return cls(
                check_principal_id(data["principal_id"]),
                SigningKey(base64.b64decode(data["ed25519_seed"])),
                X25519PrivateKey(base64.b64decode(data["x25519_private"])),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument(f"not a Symbi key file: {exc}", reason="BAD_KEY_FILE") from None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.to_json())

    @classmethod
    def load(cls, path: Path) -> PrincipalKeys:
        try:
            return cls.from_json(path.read_text())
        except OSError as exc:
            raise InvalidArgument(
                f"cannot read key file {path}: {exc.strerror}", reason="BAD_KEY_FILE"
            ) from None


def _cert_bytes(cert: envelope_pb2.PrincipalCertificate) -> bytes:
    return canonical(
        _CERT_LABEL,
        [
            (1, cert.version),
            (2, cert.principal_id),
            (3, cert.role),
            (4, cert.ed25519_public_key),
            (5, cert.x25519_public_key),
            (6, cert.not_before_ms),
            (7, cert.not_after_ms),
            (8, cert.issuer_key_id),
        ],
    )


@dataclass(frozen=True)
class Certificate:
    """A parsed principal certificate (its signature is checked by the keyring, in chain)."""

    proto: envelope_pb2.PrincipalCertificate

    @property
    def principal_id(self) -> str:
        return self.proto.principal_id

    @property
    def role(self) -> str:
        return self.proto.role

    @cached_property
    def key_id(self) -> str:
        return fingerprint(self.proto.ed25519_public_key)

    @property
    def issuer_key_id(self) -> str:
        return self.proto.issuer_key_id

    @cached_property
    def verify_key(self) -> VerifyKey:
        return VerifyKey(self.proto.ed25519_public_key)

    @property
    def x25519_public(self) -> bytes:
        return self.proto.x25519_public_key

    def valid_at(self, when_ms: int) -> bool:
        return self.proto.not_before_ms <= when_ms <= self.proto.not_after_ms

    @property
    def self_signed(self) -> bool:
        return self.issuer_key_id == self.key_id

    def signature_valid(self, issuer_verify_key: VerifyKey) -> bool:
        try:
            issuer_verify_key.verify(_cert_bytes(self.proto), self.proto.signature)
        except BadSignatureError:
            return False
        return True

    def to_bytes(self) -> bytes:
        return self.proto.SerializeToString()

    @classmethod
    def from_bytes(cls, data: bytes) -> Certificate:
        proto = envelope_pb2.PrincipalCertificate()
        try:
            proto.ParseFromString(data)
        except Exception as exc:  # protobuf raises DecodeError, a plain Exception subclass
            raise InvalidArgument(
                f"malformed certificate: {exc}", reason="BAD_CERTIFICATE"
            ) from None
        if len(proto.ed25519_public_key) != 32 or len(proto.x25519_public_key) != 32:
            raise InvalidArgument(
                "malformed certificate: public keys must be 32 bytes", reason="BAD_CERTIFICATE"
            )
        if proto.role not in ROLES:
            raise InvalidArgument(
                f"malformed certificate: unknown role {proto.role!r}", reason="BAD_CERTIFICATE"
            )
        return cls(proto)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: Path) -> Certificate:
        try:
            return cls.from_bytes(path.read_bytes())
        except OSError as exc:
            raise InvalidArgument(
                f"cannot read certificate {path}: {exc.strerror}", reason="BAD_CERTIFICATE"
            ) from None


def issue_certificate(
    issuer: PrincipalKeys,
    subject_keys_public: tuple[bytes, bytes],
    principal_id: str,
    role: str,
    *,
    not_before_ms: int | None = None,
    validity_s: float = 365 * 86_400,
) -> Certificate:
    """Sign a certificate for ``principal_id`` with the issuer's key."""
    if role not in ROLES:
        raise InvalidArgument(
            f"unknown role {role!r}; allowed: {', '.join(sorted(ROLES))}", reason="BAD_ROLE"
        )
    start = (
        now_ms() - 60_000 if not_before_ms is None else not_before_ms
    )  # tolerate small clock skew
    ed_pub, x_pub = subject_keys_public
    proto = envelope_pb2.PrincipalCertificate(
        version=1,
        principal_id=check_principal_id(principal_id),
        role=role,
        ed25519_public_key=ed_pub,
        x25519_public_key=x_pub,
        not_before_ms=start,
        not_after_ms=start + int(validity_s * 1000),
        issuer_key_id=issuer.key_id,
    )
    proto.signature = issuer.sign(_cert_bytes(proto))
    return Certificate(proto)


def _revocation_bytes(rev: envelope_pb2.Revocation) -> bytes:
    return canonical(
        _REVOCATION_LABEL,
        [
            (1, rev.principal_id),
            (2, rev.key_id),
            (3, rev.revoked_at_ms),
            (4, rev.reason),
            (5, rev.issuer_key_id),
        ],
    )


def sign_revocation(
    root: PrincipalKeys, principal_id: str, key_id: str = "", reason: str = ""
) -> envelope_pb2.Revocation:
    rev = envelope_pb2.Revocation(
        principal_id=check_principal_id(principal_id),
        key_id=key_id,
        revoked_at_ms=now_ms(),
        reason=reason,
        issuer_key_id=root.key_id,
    )
    rev.signature = root.sign(_revocation_bytes(rev))
    return rev


def verify_revocation_signature(rev: envelope_pb2.Revocation, root_verify_key: VerifyKey) -> bool:
    try:
        root_verify_key.verify(_revocation_bytes(rev), rev.signature)
    except BadSignatureError:
        return False
    return True


class RootAuthority:
    """The cluster root: a self-signed certificate and the key that signs everyone else's."""

    def __init__(self, keys: PrincipalKeys, certificate: Certificate) -> None:
        self.keys = keys
        self.certificate = certificate

    @classmethod
    def create(
        cls, principal_id: str = "root", validity_s: float = 10 * 365 * 86_400
    ) -> RootAuthority:
        keys = PrincipalKeys.generate(principal_id)
        cert = issue_certificate(
            keys,
            (keys.ed25519_public, keys.x25519_public),
            principal_id,
            "root",
            validity_s=validity_s,
        )
        return cls(keys, cert)

    def issue(
        self,
        keys_public: tuple[bytes, bytes],
        principal_id: str,
        role: str,
        *,
        validity_s: float = 365 * 86_400,
    ) -> Certificate:
        if role == "root":
            raise PermissionDenied(
                "a root cannot issue another root certificate", reason="BAD_ROLE"
            )
        return issue_certificate(self.keys, keys_public, principal_id, role, validity_s=validity_s)

    def issue_for(
        self, keys: PrincipalKeys, role: str, *, validity_s: float = 365 * 86_400
    ) -> Certificate:
        return self.issue(
            (keys.ed25519_public, keys.x25519_public),
            keys.principal_id,
            role,
            validity_s=validity_s,
        )

    def revoke(
        self, principal_id: str, key_id: str = "", reason: str = ""
    ) -> envelope_pb2.Revocation:
        return sign_revocation(self.keys, principal_id, key_id, reason)
