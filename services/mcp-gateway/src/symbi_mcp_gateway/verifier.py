"""SchemaPin signature checks of tool documents.

:func:`check_signature` answers one question: is this tool document signed by a key we may
trust, and which key? It does not decide what the gateway does about the answer (that is
:mod:`symbi_mcp_gateway.trust`) and it does not write pins.

Order, following the SchemaPin specification (§7.2, §8.3, §10):

1. A pinned key that the domain now lists as revoked fails the tool, signed or not.
2. With a pinned key, the signature is checked against the pinned key first (discovery is
   for first use and for revocations). If it does not verify there but does under the
   domain's current key, the answer names the new key, and the caller sees a key change.
3. Without a pin, the domain's current key is used.
4. When discovery is unreachable, a pinned key is still used, with a warning that
   revocation could not be checked; without a pin the tool cannot be verified.

The cryptography, canonicalization and revocation checks are schemapin's
(``verify_schema_offline``); pinning stays ours, so the TOFU store is a fresh
``KeyPinStore`` on every call.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemapin import ErrorCode, KeyManager, KeyPinStore, check_revocation_combined
from schemapin import verify_schema_offline as _verify_offline

from symbi_mcp_gateway.pins import ToolPin
from symbi_mcp_gateway.resolver import Discovery

__all__ = ["SignatureCheck", "SignatureOutcome", "check_signature", "key_fingerprint"]


class SignatureOutcome(enum.StrEnum):
    """What a signature check found."""

    #: Signed, and the signature verifies under ``SignatureCheck.key_fingerprint``.
    VALID = "valid"
    #: No signature.
    UNSIGNED = "unsigned"
    #: A signature that verifies under no key we may use.
    INVALID = "invalid"
    #: The signing (or pinned) key is revoked.
    REVOKED = "revoked"
    #: Signed, but no key is known to check it with (no domain, no discovery, no pin).
    UNRESOLVED = "unresolved"


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The answer of :func:`check_signature`."""

    outcome: SignatureOutcome
    detail: str = ""
    key_fingerprint: str | None = None
    public_key_pem: str | None = None
    developer_name: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """Whether the signature verified."""
        return self.outcome is SignatureOutcome.VALID


def key_fingerprint(public_key_pem: str) -> str:
    """SchemaPin's key fingerprint: ``sha256:<hex>`` of the DER SubjectPublicKeyInfo."""
    fingerprint: str = KeyManager.calculate_key_fingerprint_from_pem(public_key_pem)
    return fingerprint


def _revoked(discovery: Discovery, fingerprint: str) -> str | None:
    try:
        check_revocation_combined(discovery.revoked_keys, discovery.revocation, fingerprint)
    except ValueError as exc:
        return str(exc)
    return None


def _verify_with(
    document: Mapping[str, Any],
    signature: str,
    *,
    domain: str,
    tool_id: str,
    public_key_pem: str,
    discovery: Discovery | None,
) -> tuple[bool, ErrorCode | None, str]:
    # schemapin reads the key and the simple revocation list from the discovery dict; the
    # pinned key is checked against the domain's *current* revocations.
    base: dict[str, Any] = dict(discovery.document) if discovery else {"schema_version": "1.2"}
    base["public_key_pem"] = public_key_pem
    result = _verify_offline(
        dict(document),
        signature,
        domain,
        tool_id,
        base,
        discovery.revocation if discovery else None,
        KeyPinStore(),
    )
    return result.valid, result.error_code, result.error_message or ""


def check_signature(
    document: Mapping[str, Any],
    signature: str | None,
    *,
    domain: str | None,
    tool_id: str,
    discovery: Discovery | None,
    pin: ToolPin | None,
    discovery_error: str = "",
) -> SignatureCheck:
    """Check one tool document's signature (see the module docstring for the order).

    ``discovery`` is the domain's current document, or None when it could not be had
    (``discovery_error`` then says why).
    """
    pinned_pem = pin.public_key_pem if pin is not None else None
    pinned_fp = pin.key_fingerprint if pin is not None else None

    if pinned_fp and discovery is not None:
        why = _revoked(discovery, pinned_fp)
        if why is not None:
            return SignatureCheck(
                SignatureOutcome.REVOKED,
                f"the pinned key is revoked: {why}",
                key_fingerprint=pinned_fp,
                public_key_pem=pinned_pem,
            )
    if signature is None:
        return SignatureCheck(SignatureOutcome.UNSIGNED, "the tool carries no SchemaPin signature")
    if domain is None:
        return SignatureCheck(
            SignatureOutcome.UNRESOLVED,
            "the tool is signed but its server has no SchemaPin domain configured",
        )

    warnings: list[str] = []
    failure = ""
    if pinned_pem:
        if discovery is None:
            warnings.append(f"revocation not checked: {discovery_error or 'no discovery'}")
        ok, code, message = _verify_with(
            document,
            signature,
            domain=domain,
            tool_id=tool_id,
            public_key_pem=pinned_pem,
            discovery=discovery,
        )
        if ok:
            return SignatureCheck(
                SignatureOutcome.VALID,
                "signature verifies under the pinned key",
                key_fingerprint=pinned_fp or key_fingerprint(pinned_pem),
                public_key_pem=pinned_pem,
                developer_name=discovery.developer_name if discovery else "",
                warnings=tuple(warnings),
            )
        if code is ErrorCode.KEY_REVOKED:
            return SignatureCheck(
                SignatureOutcome.REVOKED,
                message,
                key_fingerprint=pinned_fp,
                public_key_pem=pinned_pem,
            )
        failure = f"does not verify under the pinned key ({message})"

    if discovery is None:
        if failure:
            return SignatureCheck(
                SignatureOutcome.INVALID, f"signature {failure}", warnings=tuple(warnings)
            )
        return SignatureCheck(
            SignatureOutcome.UNRESOLVED,
            f"no key to check the signature with: {discovery_error or 'discovery unavailable'}",
        )

    current_pem = discovery.public_key_pem
    try:
        current_fp = key_fingerprint(current_pem)
    except (ValueError, TypeError) as exc:
        return SignatureCheck(
            SignatureOutcome.UNRESOLVED,
            f"the discovery document's public key cannot be loaded: {exc}",
        )
    if current_pem == pinned_pem:
        return SignatureCheck(SignatureOutcome.INVALID, f"signature {failure}")
    ok, code, message = _verify_with(
        document,
        signature,
        domain=domain,
        tool_id=tool_id,
        public_key_pem=current_pem,
        discovery=discovery,
    )
    if ok:
        return SignatureCheck(
            SignatureOutcome.VALID,
            "signature verifies under the domain's current key"
            + (f"; it {failure}" if failure else ""),
            key_fingerprint=current_fp,
            public_key_pem=current_pem,
            developer_name=discovery.developer_name,
        )
    if code is ErrorCode.KEY_REVOKED:
        return SignatureCheck(
            SignatureOutcome.REVOKED,
            message,
            key_fingerprint=current_fp,
            public_key_pem=current_pem,
        )
    if code in (ErrorCode.DISCOVERY_INVALID, ErrorCode.KEY_NOT_FOUND):
        return SignatureCheck(SignatureOutcome.UNRESOLVED, message)
    reasons = [f"it {failure}"] if failure else []
    reasons.append(f"it does not verify under the domain's current key ({message})")
    return SignatureCheck(SignatureOutcome.INVALID, "signature invalid: " + "; ".join(reasons))
