"""The [scheduler] section: environment and TOML map onto the core's options; bad values stop
the process naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from symbi_common.config import load_settings
from symbi_common.errors import ConfigError
from symbi_scheduler import PlacementStrategy, Priority
from symbi_scheduler.app import SchedulerService
from symbi_scheduler.settings import SchedulerSettings


def test_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBI_CONFIG_PATH", "")
    settings = load_settings(SchedulerSettings)
    options = settings.scheduler.options()
    assert options.nodes.heartbeat_interval_s == 1.0  # contract C3
    assert options.nodes.timeout_s == 3.0  # three missed heartbeats
    assert options.placement.strategy is PlacementStrategy.PRIORITY
    assert options.preemption.preemptors == frozenset({Priority.CRITICAL, Priority.HIGH})


def test_environment_and_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "config.toml"
    toml.write_text(
        '[scheduler]\nstrategy = "priority"\npreemptors = ["critical"]\n'
        '[scheduler.strategy_by_priority]\nlow = "first_fit"\n'
    )
    monkeypatch.setenv("SYMBI_CONFIG_PATH", str(toml))
    monkeypatch.setenv("SYMBI_SCHEDULER__ACK_TIMEOUT_S", "2.5")
    monkeypatch.setenv("SYMBI_SCHEDULER__PREEMPTION_MAX_PER_WINDOW", "3")
    options = load_settings(SchedulerSettings).scheduler.options()
    assert options.dispatch.ack_timeout_s == 2.5
    assert options.preemption.max_per_window == 3
    assert options.preemption.preemptors == frozenset({Priority.CRITICAL})
    assert options.placement.strategy_for(Priority.LOW) is PlacementStrategy.FIRST_FIT
    assert options.placement.strategy_for(Priority.HIGH) is PlacementStrategy.SPREAD


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("STRATEGY", "random", "scheduler.strategy"),
        ("LEASE_TTL_S", "1", "lease_renew_interval_s"),
        ("ACK_TIMEOUT_S", "0", "scheduler.ack_timeout_s"),
        ("PREEMPTORS", '["low"]', "preemptors"),
        ("DEFAULT_MEMORY_MB", "9999999999", "default_memory_mb"),
        ("NO_SUCH_KEY", "1", "no_such_key"),
    ],
)
def test_bad_values_name_the_key(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str, words: str
) -> None:
    monkeypatch.setenv("SYMBI_CONFIG_PATH", "")
    monkeypatch.setenv(f"SYMBI_SCHEDULER__{key}", value)
    with pytest.raises(ConfigError, match=words):
        SchedulerService(load_settings(SchedulerSettings))
