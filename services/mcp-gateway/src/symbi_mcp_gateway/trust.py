"""The trust decision: from a signature check, a pin and a trust mode to a tool status.

:func:`assess` is a pure function, the whole rug-pull defence in one table
(docs/adr/0081-tool-trust-and-call-path.md):

====================================  ==================  ==================  ==================
signature / pin                       strict              permissive          development
====================================  ==================  ==================  ==================
revoked key (signing or pinned)       INVALID + alert     INVALID + alert     INVALID + alert
valid, no pin                         VERIFIED, pin       VERIFIED, pin       VERIFIED, pin
valid, pinned key, same/new hash      VERIFIED (update)   VERIFIED (update)   VERIFIED (update)
valid, unsigned pin (no key yet)      VERIFIED, pin key   VERIFIED, pin key   VERIFIED, pin key
valid, *other* key than pinned        QUARANTINED+alert   QUARANTINED+alert   VERIFIED, re-pin ⚠
not valid, pin, hash changed          QUARANTINED+alert   QUARANTINED+alert   ALLOWED, re-pin ⚠
not valid, pin, same hash, approved   ALLOWED (approved)  ALLOWED (approved)  ALLOWED
unsigned, no pin / same hash          UNSIGNED (hidden)   ALLOWED, pin hash ⚠ ALLOWED, pin ⚠
invalid / unresolved, no pin or same  INVALID (hidden)    INVALID (hidden)    ALLOWED ⚠
====================================  ==================  ==================  ==================

"⚠" marks acceptances strict mode would refuse; they are audited as ``mcp.tool.warning``.
A quarantined tool stays refused until :func:`approve` records an operator's consent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from symbi_common.errors import FailedPrecondition
from symbi_mcp_gateway.audit import AlertKind
from symbi_mcp_gateway.config import TrustMode
from symbi_mcp_gateway.pins import ToolPin
from symbi_mcp_gateway.verifier import SignatureCheck, SignatureOutcome

__all__ = ["Assessment", "PinAction", "ToolStatus", "approve", "assess"]


class ToolStatus(enum.StrEnum):
    """Where a tool stands (the values mirror ``symbi.mcp_gateway.v1.ToolStatus``)."""

    VERIFIED = "verified"
    UNSIGNED = "unsigned"
    INVALID = "invalid"
    QUARANTINED = "quarantined"
    ALLOWED_UNVERIFIED = "allowed_unverified"

    @property
    def usable(self) -> bool:
        """Whether agents may see and call a tool in this status."""
        return self in (ToolStatus.VERIFIED, ToolStatus.ALLOWED_UNVERIFIED)


class PinAction(enum.StrEnum):
    """What the assessment asks of the pin store."""

    KEEP = "keep"
    CREATE = "create"
    UPDATE = "update"


@dataclass(frozen=True, slots=True)
class Assessment:
    """The decision for one tool at one moment."""

    status: ToolStatus
    detail: str
    pin_action: PinAction = PinAction.KEEP
    #: The pin to write when ``pin_action`` is not KEEP.
    new_pin: ToolPin | None = None
    alert: AlertKind | None = None
    #: Audit event type announcing this decision (``mcp.tool.*``), when it is news.
    event_type: str | None = None
    #: Accepted only because the trust mode is lax.
    warning: bool = False


def _new_pin(
    server: str,
    tool: str,
    definition_hash: str,
    check: SignatureCheck,
    domain: str | None,
    now_ms: int,
) -> ToolPin:
    signed = check.valid
    return ToolPin(
        server=server,
        tool=tool,
        definition_hash=definition_hash,
        domain=domain if signed else None,
        key_fingerprint=check.key_fingerprint if signed else None,
        public_key_pem=check.public_key_pem if signed else None,
        pinned_at_ms=now_ms,
        updated_at_ms=now_ms,
    )


def assess(
    *,
    mode: TrustMode,
    server: str,
    tool: str,
    domain: str | None,
    definition_hash: str,
    check: SignatureCheck,
    pin: ToolPin | None,
    now_ms: int,
) -> Assessment:
    """Decide a tool's status (see the module docstring's table)."""
    dev = mode is TrustMode.DEVELOPMENT

    if check.outcome is SignatureOutcome.REVOKED:
        return Assessment(
            ToolStatus.INVALID,
            check.detail,
            alert=AlertKind.KEY_REVOKED,
            event_type="mcp.tool.rejected",
        )

    if check.valid:
        if pin is None:
            return Assessment(
                ToolStatus.VERIFIED,
                f"signature verified; key {check.key_fingerprint} pinned on first use",
                PinAction.CREATE,
                _new_pin(server, tool, definition_hash, check, domain, now_ms),
                event_type="mcp.tool.pinned",
            )
        if pin.key_fingerprint is None or pin.key_fingerprint == check.key_fingerprint:
            if (
                pin.key_fingerprint == check.key_fingerprint
                and pin.definition_hash == definition_hash
            ):
                return Assessment(ToolStatus.VERIFIED, "signature verified under the pinned key")
            first_key = pin.key_fingerprint is None
            return Assessment(
                ToolStatus.VERIFIED,
                f"key {check.key_fingerprint} pinned for a tool accepted unsigned"
                if first_key
                else "signed update under the pinned key",
                PinAction.UPDATE,
                pin.with_changes(
                    definition_hash=definition_hash,
                    domain=domain,
                    key_fingerprint=check.key_fingerprint,
                    public_key_pem=check.public_key_pem,
                    updated_at_ms=now_ms,
                    approved_by=None,
                ),
                event_type="mcp.tool.pinned" if first_key else "mcp.tool.updated",
            )
        # Signed, but by another key than the pinned one: SchemaPin forbids accepting a new
        # key without consent (§9), even from the same discovery endpoint.
        detail = f"signed by key {check.key_fingerprint}, but key {pin.key_fingerprint} is pinned"
        if dev:
            return Assessment(
                ToolStatus.VERIFIED,
                detail + "; re-pinned (development mode)",
                PinAction.UPDATE,
                pin.with_changes(
                    definition_hash=definition_hash,
                    domain=domain,
                    key_fingerprint=check.key_fingerprint,
                    public_key_pem=check.public_key_pem,
                    updated_at_ms=now_ms,
                    approved_by=None,
                ),
                event_type="mcp.tool.warning",
                warning=True,
            )
        return Assessment(
            ToolStatus.QUARANTINED,
            detail + "; calls refused until an operator approves the new key",
            alert=AlertKind.KEY_CHANGED,
            event_type="mcp.tool.quarantined",
        )

    # No valid signature from here on.
    if pin is not None and pin.definition_hash != definition_hash:
        detail = (
            f"definition changed from {pin.definition_hash} to {definition_hash} "
            f"without a valid signature ({check.detail})"
        )
        if dev:
            return Assessment(
                ToolStatus.ALLOWED_UNVERIFIED,
                detail + "; re-pinned (development mode)",
                PinAction.UPDATE,
                pin.with_changes(
                    definition_hash=definition_hash, updated_at_ms=now_ms, approved_by=None
                ),
                event_type="mcp.tool.warning",
                warning=True,
            )
        return Assessment(
            ToolStatus.QUARANTINED,
            detail + "; calls refused until an operator approves",
            alert=AlertKind.RUG_PULL,
            event_type="mcp.tool.quarantined",
        )
    if pin is not None and pin.approved_by:
        return Assessment(
            ToolStatus.ALLOWED_UNVERIFIED,
            f"approved by {pin.approved_by} ({check.detail})",
        )
    if dev or (mode is TrustMode.PERMISSIVE and check.outcome is SignatureOutcome.UNSIGNED):
        if pin is None:
            return Assessment(
                ToolStatus.ALLOWED_UNVERIFIED,
                f"{check.detail}; accepted in {mode.value} mode, definition pinned",
                PinAction.CREATE,
                _new_pin(server, tool, definition_hash, check, domain, now_ms),
                event_type="mcp.tool.warning",
                warning=True,
            )
        return Assessment(
            ToolStatus.ALLOWED_UNVERIFIED,
            f"{check.detail}; accepted in {mode.value} mode",
            warning=True,
        )
    status = (
        ToolStatus.UNSIGNED if check.outcome is SignatureOutcome.UNSIGNED else ToolStatus.INVALID
    )
    return Assessment(status, check.detail, event_type="mcp.tool.rejected")


def approve(
    *,
    pin: ToolPin | None,
    server: str,
    tool: str,
    domain: str | None,
    definition_hash: str,
    check: SignatureCheck,
    actor: str,
    now_ms: int,
) -> ToolPin:
    """The pin that records an operator's approval of a tool's current definition (and, when
    it is validly signed by a new key, of that key).

    Raises:
        FailedPrecondition: the key is revoked; no approval overrides a revocation.
    """
    if check.outcome is SignatureOutcome.REVOKED:
        raise FailedPrecondition(
            f"{server}/{tool} cannot be approved: {check.detail}", reason="KEY_REVOKED"
        )
    base = pin or _new_pin(server, tool, definition_hash, check, domain, now_ms)
    changes: dict[str, object] = {
        "definition_hash": definition_hash,
        "updated_at_ms": now_ms,
        "approved_by": actor,
    }
    if check.valid:
        changes |= {
            "domain": domain,
            "key_fingerprint": check.key_fingerprint,
            "public_key_pem": check.public_key_pem,
        }
    return base.with_changes(**changes)
