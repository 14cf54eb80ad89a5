"""ConsumerSpec.inactive_threshold_s: validated when the spec is built, and passed through."""

from __future__ import annotations

import math

import pytest

from symbi_common.bus import ConsumerSpec
from symbi_common.errors import InvalidArgument


def spec(threshold: float | None) -> ConsumerSpec:
    return ConsumerSpec(
        "SYMBI_OUTPUT", "output-x", ("symbi.task.output.t",), inactive_threshold_s=threshold
    )


def test_no_threshold_by_default() -> None:
    assert ConsumerSpec.direct("svc-a").inactive_threshold_s is None
    assert spec(None).inactive_threshold_s is None


def test_positive_threshold_kept() -> None:
    assert spec(60.0).inactive_threshold_s == 60.0
    assert spec(0.5).inactive_threshold_s == 0.5


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_non_positive_or_non_finite_threshold_refused(bad: float) -> None:
    with pytest.raises(InvalidArgument, match="inactive_threshold_s"):
        spec(bad)
