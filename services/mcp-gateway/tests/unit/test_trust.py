"""The trust table: every mode against every signature outcome and pin state."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symbi_common.errors import FailedPrecondition
from symbi_mcp_gateway import (
    AlertKind,
    SignatureCheck,
    SignatureOutcome,
    ToolPin,
    ToolStatus,
    TrustMode,
)
from symbi_mcp_gateway.trust import PinAction, approve, assess

H1, H2 = "sha256:one", "sha256:two"
K1, K2 = "sha256:key-one", "sha256:key-two"

VALID_K1 = SignatureCheck(SignatureOutcome.VALID, "ok", key_fingerprint=K1, public_key_pem="pem1")
VALID_K2 = SignatureCheck(SignatureOutcome.VALID, "ok", key_fingerprint=K2, public_key_pem="pem2")
UNSIGNED = SignatureCheck(SignatureOutcome.UNSIGNED, "no signature")
INVALID = SignatureCheck(SignatureOutcome.INVALID, "bad signature")
UNRESOLVED = SignatureCheck(SignatureOutcome.UNRESOLVED, "no key")
REVOKED = SignatureCheck(SignatureOutcome.REVOKED, "revoked", key_fingerprint=K1)


def pin(definition_hash: str = H1, key: str | None = K1, approved_by: str | None = None) -> ToolPin:
    return ToolPin(
        server="s",
        tool="t",
        definition_hash=definition_hash,
        domain="d" if key else None,
        key_fingerprint=key,
        public_key_pem="pem" if key else None,
        approved_by=approved_by,
    )


def decide(
    mode: TrustMode, check: SignatureCheck, current: ToolPin | None, definition_hash: str = H1
):  # type: ignore[no-untyped-def]
    return assess(
        mode=mode,
        server="s",
        tool="t",
        domain="d",
        definition_hash=definition_hash,
        check=check,
        pin=current,
        now_ms=1000,
    )


ALL_MODES = list(TrustMode)
LAX = [TrustMode.STRICT, TrustMode.PERMISSIVE]


@pytest.mark.parametrize("mode", ALL_MODES)
def test_first_valid_signature_pins_the_key(mode: TrustMode) -> None:
    result = decide(mode, VALID_K1, None)
    assert result.status is ToolStatus.VERIFIED
    assert result.pin_action is PinAction.CREATE
    assert result.new_pin is not None
    assert (result.new_pin.key_fingerprint, result.new_pin.definition_hash) == (K1, H1)
    assert result.event_type == "mcp.tool.pinned"


@pytest.mark.parametrize("mode", ALL_MODES)
def test_signed_update_under_the_pinned_key_moves_the_pin(mode: TrustMode) -> None:
    result = decide(mode, VALID_K1, pin(H1), definition_hash=H2)
    assert result.status is ToolStatus.VERIFIED
    assert result.pin_action is PinAction.UPDATE
    assert result.new_pin is not None
    assert result.new_pin.definition_hash == H2
    assert result.event_type == "mcp.tool.updated"


def test_unchanged_verified_tool_needs_nothing() -> None:
    result = decide(TrustMode.STRICT, VALID_K1, pin(H1))
    assert (result.status, result.pin_action, result.alert) == (
        ToolStatus.VERIFIED,
        PinAction.KEEP,
        None,
    )


@pytest.mark.parametrize("mode", LAX)
def test_a_new_key_quarantines(mode: TrustMode) -> None:
    result = decide(mode, VALID_K2, pin(H1, K1))
    assert result.status is ToolStatus.QUARANTINED
    assert result.alert is AlertKind.KEY_CHANGED
    assert result.pin_action is PinAction.KEEP


def test_development_re_pins_a_new_key_with_a_warning() -> None:
    result = decide(TrustMode.DEVELOPMENT, VALID_K2, pin(H1, K1))
    assert result.status is ToolStatus.VERIFIED
    assert result.warning
    assert result.new_pin is not None
    assert result.new_pin.key_fingerprint == K2


@pytest.mark.parametrize("mode", LAX)
@pytest.mark.parametrize("check", [UNSIGNED, INVALID, UNRESOLVED])
def test_a_changed_definition_without_valid_signature_is_a_rug_pull(
    mode: TrustMode, check: SignatureCheck
) -> None:
    result = decide(mode, check, pin(H1, K1), definition_hash=H2)
    assert result.status is ToolStatus.QUARANTINED
    assert result.alert is AlertKind.RUG_PULL
    assert result.pin_action is PinAction.KEEP


def test_a_rug_pull_of_an_unsigned_permissive_tool_is_caught_too() -> None:
    result = decide(TrustMode.PERMISSIVE, UNSIGNED, pin(H1, key=None), definition_hash=H2)
    assert result.status is ToolStatus.QUARANTINED


@pytest.mark.parametrize("mode", ALL_MODES)
def test_revocation_is_honoured_in_every_mode(mode: TrustMode) -> None:
    result = decide(mode, REVOKED, pin(H1, K1))
    assert result.status is ToolStatus.INVALID
    assert result.alert is AlertKind.KEY_REVOKED


def test_strict_hides_unsigned_and_invalid() -> None:
    assert decide(TrustMode.STRICT, UNSIGNED, None).status is ToolStatus.UNSIGNED
    assert decide(TrustMode.STRICT, INVALID, None).status is ToolStatus.INVALID
    assert decide(TrustMode.STRICT, UNRESOLVED, None).status is ToolStatus.INVALID
    assert decide(TrustMode.STRICT, UNSIGNED, None).pin_action is PinAction.KEEP


def test_permissive_accepts_unsigned_and_pins_its_hash() -> None:
    result = decide(TrustMode.PERMISSIVE, UNSIGNED, None)
    assert result.status is ToolStatus.ALLOWED_UNVERIFIED
    assert result.pin_action is PinAction.CREATE
    assert result.new_pin is not None
    assert result.new_pin.key_fingerprint is None
    again = decide(TrustMode.PERMISSIVE, UNSIGNED, result.new_pin)
    assert (again.status, again.pin_action) == (ToolStatus.ALLOWED_UNVERIFIED, PinAction.KEEP)


def test_permissive_still_refuses_a_bad_signature() -> None:
    assert decide(TrustMode.PERMISSIVE, INVALID, None).status is ToolStatus.INVALID


def test_a_later_signature_pins_its_key_for_an_unsigned_pin() -> None:
    result = decide(TrustMode.PERMISSIVE, VALID_K1, pin(H1, key=None))
    assert result.status is ToolStatus.VERIFIED
    assert result.new_pin is not None
    assert result.new_pin.key_fingerprint == K1


def test_approval_of_a_rug_pull() -> None:
    quarantined = decide(TrustMode.STRICT, INVALID, pin(H1, K1), definition_hash=H2)
    assert quarantined.status is ToolStatus.QUARANTINED
    approved = approve(
        pin=pin(H1, K1),
        server="s",
        tool="t",
        domain="d",
        definition_hash=H2,
        check=INVALID,
        actor="alice",
        now_ms=2,
    )
    assert (approved.definition_hash, approved.key_fingerprint, approved.approved_by) == (
        H2,
        K1,
        "alice",
    )
    result = decide(TrustMode.STRICT, INVALID, approved, definition_hash=H2)
    assert result.status is ToolStatus.ALLOWED_UNVERIFIED
    assert "alice" in result.detail
    # ...and the next silent change is caught again.
    assert (
        decide(TrustMode.STRICT, INVALID, approved, definition_hash="sha256:three").status
        is ToolStatus.QUARANTINED
    )


def test_approval_of_a_key_change_pins_the_new_key() -> None:
    approved = approve(
        pin=pin(H1, K1),
        server="s",
        tool="t",
        domain="d",
        definition_hash=H1,
        check=VALID_K2,
        actor="bob",
        now_ms=2,
    )
    assert approved.key_fingerprint == K2
    assert decide(TrustMode.STRICT, VALID_K2, approved).status is ToolStatus.VERIFIED


def test_no_approval_overrides_revocation() -> None:
    with pytest.raises(FailedPrecondition):
        approve(
            pin=pin(),
            server="s",
            tool="t",
            domain="d",
            definition_hash=H1,
            check=REVOKED,
            actor="x",
            now_ms=1,
        )


checks = st.sampled_from([VALID_K1, VALID_K2, UNSIGNED, INVALID, UNRESOLVED, REVOKED])
pins = st.none() | st.builds(
    pin,
    definition_hash=st.sampled_from([H1, H2]),
    key=st.sampled_from([K1, K2, None]),
    approved_by=st.sampled_from([None, "op"]),
)


@given(
    mode=st.sampled_from(LAX), check=checks, current=pins, definition_hash=st.sampled_from([H1, H2])
)
def test_outside_development_only_trust_makes_a_tool_usable(
    mode: TrustMode, check: SignatureCheck, current: ToolPin | None, definition_hash: str
) -> None:
    result = decide(mode, check, current, definition_hash)
    if not result.status.usable:
        return
    signed_by_pinned = check.valid and (
        current is None or current.key_fingerprint in (None, check.key_fingerprint)
    )
    approved_as_is = (
        current is not None
        and current.definition_hash == definition_hash
        and bool(current.approved_by)
    )
    permissive_unsigned = (
        mode is TrustMode.PERMISSIVE
        and check.outcome is SignatureOutcome.UNSIGNED
        and (current is None or current.definition_hash == definition_hash)
    )
    assert signed_by_pinned or approved_as_is or permissive_unsigned


@given(
    mode=st.sampled_from(list(TrustMode)),
    check=checks,
    current=pins,
    definition_hash=st.sampled_from([H1, H2]),
)
def test_revoked_is_never_usable_and_silent_changes_never_pass(
    mode: TrustMode, check: SignatureCheck, current: ToolPin | None, definition_hash: str
) -> None:
    result = decide(mode, check, current, definition_hash)
    if check.outcome is SignatureOutcome.REVOKED:
        assert not result.status.usable
    silent_change = (
        current is not None and current.definition_hash != definition_hash and not check.valid
    )
    if (
        silent_change
        and mode is not TrustMode.DEVELOPMENT
        and check.outcome is not SignatureOutcome.REVOKED
    ):
        assert result.status is ToolStatus.QUARANTINED
