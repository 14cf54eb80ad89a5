"""Principal credentials on disk: what ``symbi up`` writes and production mounts as secrets.

A keys directory holds, per principal id::

    <id>.key    Ed25519 + X25519 private keys (JSON, mode 0600)
    <id>.cert   its certificate, signed by the root (or an issuer)
    <id>.nkey   its NATS NKey seed (connection authentication, mode 0600)
    root.cert   the cluster root's certificate: the trust anchor every verifier checks against

and, only where root operations happen (``symbi up``'s data dir, an admin machine),
``root.key``. Services never need ``root.key``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nkeys

from symbi_common.crypto.identity import Certificate, PrincipalKeys, RootAuthority
from symbi_common.errors import FailedPrecondition

__all__ = ["ClusterAuthority", "Credentials", "load_credentials", "new_nkey_seed", "nkey_public"]

ROOT_ID = "root"


def new_nkey_seed() -> str:
    """A fresh NATS user NKey seed (``SU…``)."""
    seed: bytes = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return seed.decode()


def nkey_public(seed: str) -> str:
    """The public NKey (``U…``) of a seed."""
    public: bytes = nkeys.from_seed(seed.encode()).public_key
    return public.decode()


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


@dataclass(frozen=True)
class Credentials:
    """Everything a principal needs on the bus."""

    keys: PrincipalKeys
    certificate: Certificate
    root: Certificate
    nkey_seed: str | None

    @property
    def principal_id(self) -> str:
        return self.keys.principal_id

    @property
    def role(self) -> str:
        return self.certificate.role


def load_credentials(
    keys_dir: Path, principal_id: str, root_certificate: Path | None = None
) -> Credentials:
    """Load a principal's credentials; errors say which file is missing or wrong."""
    key_file = keys_dir / f"{principal_id}.key"
    cert_file = keys_dir / f"{principal_id}.cert"
    root_file = root_certificate or keys_dir / "root.cert"
    for path in (key_file, cert_file, root_file):
        if not path.is_file():
            raise FailedPrecondition(
                f"missing credential file {path}: create credentials with `symbi keys issue {principal_id}` "
                "(or `symbi up`, which creates them for the local platform)",
                reason="CREDENTIALS_MISSING",
                details={"file": str(path)},
            )
    keys = PrincipalKeys.load(key_file)
    certificate = Certificate.load(cert_file)
    if certificate.key_id != keys.key_id or certificate.principal_id != principal_id:
        raise FailedPrecondition(
            f"{cert_file} does not certify the key in {key_file}", reason="CREDENTIALS_MISMATCH"
        )
    nkey_file = keys_dir / f"{principal_id}.nkey"
    seed = nkey_file.read_text().strip() if nkey_file.is_file() else None
    return Credentials(keys, certificate, Certificate.load(root_file), seed)


class ClusterAuthority:
    """The root on disk: creates it once, then issues principals' credentials."""

    def __init__(self, keys_dir: Path, root: RootAuthority) -> None:
        self.keys_dir = keys_dir
        self.root = root

    @classmethod
    def open(cls, keys_dir: Path, *, create: bool = True) -> ClusterAuthority:
        key_file, cert_file = keys_dir / f"{ROOT_ID}.key", keys_dir / f"{ROOT_ID}.cert"
        if key_file.is_file() and cert_file.is_file():
            return cls(
                keys_dir, RootAuthority(PrincipalKeys.load(key_file), Certificate.load(cert_file))
            )
        if not create:
            raise FailedPrecondition(f"no cluster root in {keys_dir}", reason="ROOT_MISSING")
        root = RootAuthority.create(ROOT_ID)
        keys_dir.mkdir(parents=True, exist_ok=True)
        root.keys.save(key_file)
        root.certificate.save(cert_file)
        return cls(keys_dir, root)

    def issue(
        self, principal_id: str, role: str, *, reuse: bool = True, validity_s: float = 365 * 86_400
    ) -> Credentials:
        """Credentials for a principal, written into the keys directory (kept if they exist)."""
        key_file = self.keys_dir / f"{principal_id}.key"
        cert_file = self.keys_dir / f"{principal_id}.cert"
        nkey_file = self.keys_dir / f"{principal_id}.nkey"
        if reuse and key_file.is_file() and cert_file.is_file() and nkey_file.is_file():
            existing = load_credentials(self.keys_dir, principal_id)
            if (
                existing.role == role
                and existing.certificate.issuer_key_id == self.root.keys.key_id
            ):
                return existing
        keys = PrincipalKeys.generate(principal_id)
        certificate = self.root.issue_for(keys, role, validity_s=validity_s)
        seed = new_nkey_seed()
        keys.save(key_file)
        certificate.save(cert_file)
        _write_secret(nkey_file, seed)
        return Credentials(keys, certificate, self.root.certificate, seed)
