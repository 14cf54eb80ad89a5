"""Agent identities minted by this node: the principal its tasks speak as on the bus.

A worker node holds an *issuer* credential (``<node>-issuer``, role ``issuer``, certified by
the cluster root; it may certify agents only). For each task that opens the agent channel
the node issues the agent a certificate — principal id = the agent id, role ``agent``,
valid for the task's timeout plus a margin — and publishes it in the keyring bucket, so that
every verifier checks the chain root → issuer → agent.

The agent's keys are derived from the issuer's secret and the agent id (HKDF-SHA256), not
drawn at random: the same agent on the same node always has the same keys, so direct
messages sent to it while it was not running (encrypted to its key) can still be read by
its next task there. Only certificates are per task (ADR 0066).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import TYPE_CHECKING

from nats.js.errors import KeyNotFoundError

from symbi_common.bus import Credentials
from symbi_common.crypto.identity import (
    Certificate,
    PrincipalKeys,
    check_principal_id,
    issue_certificate,
)
from symbi_common.errors import FailedPrecondition, InvalidArgument

if TYPE_CHECKING:
    from symbi_common.bus import KeyDirectory

__all__ = ["AgentIdentityIssuer", "derive_agent_keys"]

_log = logging.getLogger(__name__)
_INFO = b"symbi agent keys v1\x00"


def _hkdf_sha256(key: bytes, info: bytes, length: int) -> bytes:
    # RFC 5869 with an all-zero salt, written out to keep the derivation visible.
    prk = hmac.new(b"\x00" * 32, key, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def derive_agent_keys(issuer: PrincipalKeys, agent_id: str) -> PrincipalKeys:
    """The keys of ``agent_id`` on this node (deterministic in the issuer's secret)."""
    check_principal_id(agent_id)
    material = _hkdf_sha256(bytes(issuer.signing_key), _INFO + agent_id.encode(), 64)
    return PrincipalKeys.from_json(
        json.dumps(
            {
                "principal_id": agent_id,
                "ed25519_seed": base64.b64encode(material[:32]).decode(),
                "x25519_private": base64.b64encode(material[32:]).decode(),
            }
        )
    )


class AgentIdentityIssuer:
    """Issues and publishes the certificates of the agents this node runs."""

    def __init__(self, issuer: Credentials, directory: KeyDirectory) -> None:
        if issuer.role != "issuer":
            raise FailedPrecondition(
                f"{issuer.principal_id} has role {issuer.role!r}, not issuer: it cannot certify "
                "agents",
                reason="NOT_AN_ISSUER",
            )
        self._issuer = issuer
        self._directory = directory

    @property
    def issuer_id(self) -> str:
        return self._issuer.principal_id

    async def publish_issuer(self) -> None:
        """Puts the issuer's certificate in the keyring bucket (verifiers need the chain).

        It goes under the ``agentcert.`` prefix: the only certificates a worker node may
        write besides its own (see symbi_common.bus.permissions); the directory reads both
        prefixes and trusts nothing that does not verify up to the root.
        """
        cert = self._issuer.certificate
        key = f"agentcert.{cert.principal_id}.{cert.key_id}"
        kv = self._directory.keyring_kv
        try:
            entry = await kv.get(key)
            current = entry.value
        except KeyNotFoundError:
            current = None
        if current != cert.to_bytes():
            await kv.put(key, cert.to_bytes())
        if not self._directory.keyring.add_certificate(cert):
            raise FailedPrecondition(
                f"the issuer certificate {cert.principal_id} does not verify against this "
                "cluster's root",
                reason="ISSUER_UNTRUSTED",
            )

    def credentials(self, agent_id: str, validity_s: float) -> Credentials:
        """Keys and a fresh certificate for ``agent_id`` (not published)."""
        try:
            keys = derive_agent_keys(self._issuer.keys, agent_id)
        except InvalidArgument as exc:
            raise InvalidArgument(
                f"agent id {agent_id!r} cannot be a bus principal: {exc.message}",
                reason="BAD_AGENT_ID",
                details={"field": "agent_id"},
            ) from None
        cert: Certificate = issue_certificate(
            self._issuer.keys,
            (keys.ed25519_public, keys.x25519_public),
            agent_id,
            "agent",
            validity_s=validity_s,
        )
        return Credentials(keys, cert, self._issuer.root, None)

    async def issue(self, agent_id: str, validity_s: float) -> Credentials:
        """Certifies ``agent_id`` and publishes the certificate before it is used."""
        credentials = self.credentials(agent_id, validity_s)
        await self._directory.publish_certificate(credentials.certificate)
        self._directory.keyring.add_certificate(credentials.certificate)
        return credentials
