"""Tier parsing and choice, and the risk score."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symbi_common.errors import FailedPrecondition, InvalidArgument
from symbi_sandbox.risk import (
    CodeTrust,
    DataSensitivity,
    FilesystemAccess,
    RiskAssessor,
    RiskProfile,
)
from symbi_sandbox.tiers import Tier, choose_tier

BOTH = {Tier.DOCKER, Tier.GVISOR}


@pytest.mark.parametrize(
    ("text", "tier"),
    [
        ("docker", Tier.DOCKER),
        ("RUNC", Tier.DOCKER),
        ("gvisor", Tier.GVISOR),
        ("runsc", Tier.GVISOR),
        ("2", Tier.GVISOR),
        (1, Tier.DOCKER),
    ],
)
def test_parse_accepts_config_spellings(text: str | int, tier: Tier) -> None:
    assert Tier.parse(text) is tier


def test_parse_rejects_unknown_with_allowed_values() -> None:
    with pytest.raises(InvalidArgument, match="allowed: docker"):
        Tier.parse("kata")
    with pytest.raises(InvalidArgument):
        Tier.parse(0)


def test_default_used_when_nothing_else_says() -> None:
    choice = choose_tier(requested=None, default=Tier.GVISOR, available=BOTH)
    assert choice.tier is Tier.GVISOR
    assert "default" in choice.reason


def test_policy_minimum_raises_an_explicit_request() -> None:
    choice = choose_tier(
        requested=Tier.DOCKER, default=Tier.DOCKER, available=BOTH, policy_minimum=Tier.GVISOR
    )
    assert choice.tier is Tier.GVISOR
    assert "policy minimum" in choice.reason


def test_risk_assessment_replaces_default_and_can_only_raise() -> None:
    assert (
        choose_tier(requested=None, default=Tier.GVISOR, available=BOTH, assessed=Tier.DOCKER).tier
        is Tier.DOCKER
    )
    assert (
        choose_tier(
            requested=Tier.DOCKER, default=Tier.DOCKER, available=BOTH, assessed=Tier.GVISOR
        ).tier
        is Tier.GVISOR
    )


def test_unavailable_tier_is_refused_never_downgraded() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        choose_tier(requested=None, default=Tier.GVISOR, available={Tier.DOCKER})
    assert caught.value.reason == "TIER_UNAVAILABLE"
    assert "offers: docker" in caught.value.message


@given(
    requested=st.sampled_from([None, Tier.DOCKER, Tier.GVISOR]),
    default=st.sampled_from(list(Tier)),
    assessed=st.sampled_from([None, Tier.DOCKER, Tier.GVISOR]),
    minimum=st.sampled_from([None, Tier.DOCKER, Tier.GVISOR]),
)
def test_choice_never_below_request_minimum_or_assessment(
    requested: Tier | None, default: Tier, assessed: Tier | None, minimum: Tier | None
) -> None:
    tier = choose_tier(
        requested=requested,
        default=default,
        available=BOTH,
        assessed=assessed,
        policy_minimum=minimum,
    ).tier
    for floor in (requested, assessed, minimum):
        if floor is not None:
            assert tier >= floor


def test_risk_of_harmless_task_is_zero_and_docker() -> None:
    result = RiskAssessor().assess(
        RiskProfile(DataSensitivity.PUBLIC, CodeTrust.VERIFIED, False, FilesystemAccess.NONE, 0)
    )
    assert result.score == 0
    assert result.tier is Tier.DOCKER


def test_untrusted_code_on_confidential_data_goes_to_gvisor() -> None:
    result = RiskAssessor().assess(RiskProfile(DataSensitivity.CONFIDENTIAL, CodeTrust.UNTRUSTED))
    assert result.score == pytest.approx(50.0)
    assert result.tier is Tier.GVISOR
    assert result.factors["code_trust"] == 30.0


def test_worst_case_scores_100() -> None:
    result = RiskAssessor().assess(
        RiskProfile(
            DataSensitivity.RESTRICTED, CodeTrust.UNTRUSTED, True, FilesystemAccess.WRITE, 9
        )
    )
    assert result.score == pytest.approx(100.0)


@given(
    st.sampled_from(list(DataSensitivity)),
    st.sampled_from(list(CodeTrust)),
    st.booleans(),
    st.sampled_from(list(FilesystemAccess)),
    st.integers(0, 50),
)
def test_score_is_bounded_and_sums_its_factors(
    sens: DataSensitivity, trust: CodeTrust, net: bool, fs: FilesystemAccess, apis: int
) -> None:
    result = RiskAssessor().assess(RiskProfile(sens, trust, net, fs, apis))
    assert 0 <= result.score <= 100
    assert result.score == pytest.approx(sum(result.factors.values()), abs=0.01)
    assert (result.tier is Tier.GVISOR) == (result.score >= 40)


def test_more_risk_never_lowers_the_tier() -> None:
    low = RiskAssessor().assess(RiskProfile(DataSensitivity.INTERNAL, CodeTrust.REVIEWED))
    high = RiskAssessor().assess(
        RiskProfile(DataSensitivity.INTERNAL, CodeTrust.REVIEWED, network=True, external_apis=5)
    )
    assert high.score > low.score
    assert high.tier >= low.tier


def test_bad_threshold_and_profile_rejected() -> None:
    with pytest.raises(InvalidArgument):
        RiskAssessor(gvisor_threshold=120)
    with pytest.raises(InvalidArgument):
        RiskProfile(external_apis=-1)
