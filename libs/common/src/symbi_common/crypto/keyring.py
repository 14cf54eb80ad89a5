"""Certificates and revocations, verified in chain up to the configured root.

Chain rules: the root (a self-signed ``root`` certificate the verifier is configured with)
may certify any role but ``root``; a principal with role ``issuer`` — itself certified by the
root — may certify only ``agent`` principals. Chains are at most three long
(root → issuer → agent). A certificate counts only inside its validity window and while
neither it, nor its principal, nor its issuer is revoked. Revocations count only when signed
by the root.

The keyring is fed by whatever distributes certificates (the KV bucket watcher in
:mod:`symbi_common.bus.keyring_kv`, or files); lookups are in memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from symbi.bus.v1 import envelope_pb2
from symbi_common.crypto.identity import Certificate, now_ms, verify_revocation_signature
from symbi_common.crypto.rejects import EnvelopeRejected, RejectReason

__all__ = ["Keyring", "KeyringChange"]

log = logging.getLogger(__name__)

_ISSUABLE = {"root": {"issuer", "service", "node", "agent", "user"}, "issuer": {"agent"}}


@dataclass(frozen=True)
class KeyringChange:
    kind: str  # "certificate" | "revocation"
    principal_id: str
    key_id: str


class Keyring:
    """Thread-safe: consumers may verify from worker threads."""

    def __init__(self, root: Certificate, *, clock: Callable[[], int] = now_ms) -> None:
        if root.role != "root" or not root.self_signed or not root.signature_valid(root.verify_key):
            raise ValueError("the configured root certificate is not a valid self-signed root")
        self.root = root
        self.clock = clock
        self._lock = threading.Lock()
        self._by_key: dict[str, Certificate] = {root.key_id: root}
        self._revoked_principals: dict[str, envelope_pb2.Revocation] = {}
        self._revoked_keys: dict[str, envelope_pb2.Revocation] = {}
        self._listeners: list[Callable[[KeyringChange], None]] = []
        # Key ids whose certificate signature verified against its issuer: a signature never
        # stops verifying, so this is checked once; windows and revocations are checked always.
        self._signature_ok: set[str] = set()
        # Lookups on the hot path, valid while nothing changes (``version``) within the same
        # second (validity windows are re-checked when the second turns).
        self._lookup_cache: dict[tuple[str, str], tuple[int, int, Certificate]] = {}
        self._current_cache: dict[str, tuple[int, int, Certificate | None]] = {}
        self.version = 0

    # ---- feeding
    def on_change(self, listener: Callable[[KeyringChange], None]) -> None:
        self._listeners.append(listener)

    def _notify(self, change: KeyringChange) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                log.exception("keyring listener failed")

    def add_certificate(self, cert: Certificate) -> bool:
        """Keep a certificate if its chain verifies now; returns whether it was kept."""
        problem = self._chain_problem(cert, self.clock(), depth=0)
        if problem is not None:
            log.warning(
                "ignoring certificate of %s (%s): %s", cert.principal_id, cert.key_id, problem
            )
            return False
        with self._lock:
            known = self._by_key.get(cert.key_id)
            if known is not None and known.to_bytes() == cert.to_bytes():
                return True
            self._by_key[cert.key_id] = cert
            self.version += 1
        self._notify(KeyringChange("certificate", cert.principal_id, cert.key_id))
        return True

    def add_revocation(self, revocation: envelope_pb2.Revocation) -> bool:
        if revocation.issuer_key_id != self.root.key_id or not verify_revocation_signature(
            revocation, self.root.verify_key
        ):
            log.warning(
                "ignoring a revocation of %s not signed by the root", revocation.principal_id
            )
            return False
        with self._lock:
            if revocation.key_id:
                self._revoked_keys[revocation.key_id] = revocation
            else:
                self._revoked_principals[revocation.principal_id] = revocation
            self.version += 1
        self._notify(KeyringChange("revocation", revocation.principal_id, revocation.key_id))
        return True

    # ---- checks
    def _revocation_of(self, cert: Certificate) -> envelope_pb2.Revocation | None:
        return self._revoked_keys.get(cert.key_id) or self._revoked_principals.get(
            cert.principal_id
        )

    def _chain_problem(self, cert: Certificate, at_ms: int, depth: int) -> str | None:
        if cert.key_id == self.root.key_id:
            return None if cert.to_bytes() == self.root.to_bytes() else "claims the root's key"
        if depth >= 3:
            return "certificate chain too long"
        if cert.role == "root":
            return "a second root is not trusted"
        issuer = (
            self.root
            if cert.issuer_key_id == self.root.key_id
            else self._by_key.get(cert.issuer_key_id)
        )
        if issuer is None:
            return f"issuer {cert.issuer_key_id} is unknown"
        if cert.role not in _ISSUABLE.get(issuer.role, set()):
            return f"a {issuer.role} may not certify a {cert.role}"
        if cert.key_id not in self._signature_ok:
            if not cert.signature_valid(issuer.verify_key):
                return "signature does not verify against its issuer"
            self._signature_ok.add(cert.key_id)
        if issuer is not self.root:
            if self._revocation_of(issuer) is not None:
                return f"issuer {issuer.principal_id} is revoked"
            if not issuer.valid_at(at_ms):
                return f"issuer {issuer.principal_id} is outside its validity window"
            return self._chain_problem(issuer, at_ms, depth + 1)
        return None

    def lookup(self, principal_id: str, key_id: str, *, at_ms: int | None = None) -> Certificate:
        """The certificate that may speak for ``principal_id`` now, or EnvelopeRejected."""
        when = self.clock() if at_ms is None else at_ms
        cached = self._lookup_cache.get((principal_id, key_id))
        if cached is not None and cached[0] == self.version and cached[1] == when // 1000:
            return cached[2]
        cert = self._lookup_uncached(principal_id, key_id, when)
        if len(self._lookup_cache) > 10_000:
            self._lookup_cache.clear()
        self._lookup_cache[(principal_id, key_id)] = (self.version, when // 1000, cert)
        return cert

    def _lookup_uncached(self, principal_id: str, key_id: str, when: int) -> Certificate:
        with self._lock:
            cert = self._by_key.get(key_id)
        if cert is None or cert.principal_id != principal_id:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_UNKNOWN_SENDER,
                f"no certificate for sender {principal_id!r} with key {key_id!r}",
                sender=principal_id,
            )
        if self._revocation_of(cert) is not None:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_REVOKED_SENDER,
                f"sender {principal_id!r} is revoked",
                sender=principal_id,
            )
        if not cert.valid_at(when):
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_EXPIRED_SENDER,
                f"certificate of {principal_id!r} is outside its validity window",
                sender=principal_id,
            )
        problem = self._chain_problem(cert, when, depth=0)  # issuers may have been revoked since
        if problem is not None:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_REVOKED_SENDER,
                f"sender {principal_id!r}: {problem}",
                sender=principal_id,
            )
        return cert

    def current(self, principal_id: str) -> Certificate | None:
        """The newest usable certificate of a principal (what senders encrypt to)."""
        when = self.clock()
        cached = self._current_cache.get(principal_id)
        if cached is not None and cached[0] == self.version and cached[1] == when // 1000:
            return cached[2]
        found = self._current_uncached(principal_id, when)
        if len(self._current_cache) > 10_000:
            self._current_cache.clear()
        self._current_cache[principal_id] = (self.version, when // 1000, found)
        return found

    def _current_uncached(self, principal_id: str, when: int) -> Certificate | None:
        with self._lock:
            candidates = [c for c in self._by_key.values() if c.principal_id == principal_id]
        usable = [
            c
            for c in candidates
            if self._revocation_of(c) is None
            and c.valid_at(when)
            and self._chain_problem(c, when, 0) is None
        ]
        return max(usable, key=lambda c: c.proto.not_before_ms, default=None)

    def by_key_id(self, key_id: str) -> Certificate | None:
        """The certificate with this key id if it is usable now (e.g. to check a publisher's
        signature on an audit event)."""
        with self._lock:
            cert = self._by_key.get(key_id)
        if cert is None:
            return None
        try:
            return self.lookup(cert.principal_id, key_id)
        except EnvelopeRejected:
            return None

    def has(self, key_id: str) -> bool:
        with self._lock:
            return key_id in self._by_key

    def certificates(self, role: str | None = None) -> list[Certificate]:
        """Every usable certificate (valid now, not revoked), optionally of one role."""
        when = self.clock()
        with self._lock:
            candidates = list(self._by_key.values())
        result = []
        for cert in candidates:
            if role is not None and cert.role != role:
                continue
            if cert.key_id == self.root.key_id:
                continue
            if (
                self._revocation_of(cert) is None
                and cert.valid_at(when)
                and self._chain_problem(cert, when, 0) is None
            ):
                result.append(cert)
        return result
