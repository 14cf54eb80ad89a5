"""bench/policy.py ``--section writes`` must time what it says it times: writes of *new*
agent documents. Its first version warmed up (w2) by putting the very documents it then
timed, so the timed writes re-stored identical text (nothing compiled, no partition
rebuilt) and the write rate it printed was that of no-op rewrites."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

_BENCH = Path(__file__).resolve().parents[4] / "bench" / "policy.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("symbi_bench_policy", _BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


@pytest.mark.parametrize("quick", [True, False])
@pytest.mark.parametrize("agents", [0, 1_000])
def test_every_write_the_section_makes_is_a_new_document(bench, agents, quick) -> None:
    plan = bench.write_plan(agents, quick)
    written = [*plan.warm_up, *plan.single, *plan.concurrent]
    assert len(plan.warm_up) > 0
    assert len(plan.single) > 0
    assert len(plan.concurrent) > 0
    # No document is written twice, and none of them is among the stored ones.
    assert len(written) == len(set(written))
    assert min(written) >= agents
    # Every agent written has its entity stored beforehand (its policies name it).
    assert max(written) < agents + plan.extra_entities


def test_timed_writes_are_made_once_each(bench) -> None:
    calls: list[int] = []
    result = bench.run_single("writes", calls.append, [1, 2, 3], warm_up=0)
    assert calls == [1, 2, 3]
    assert result.decisions == 3
