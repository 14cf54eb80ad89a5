"""`[sandbox]` settings reach the runner's configuration."""

from __future__ import annotations

import pytest

from symbi_common.config import ConfigError, load_settings
from symbi_sandbox.app import runner_config
from symbi_sandbox.settings import SandboxSettings


def test_log_buffer_reaches_the_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBI_CONFIG_PATH", "")
    assert runner_config(load_settings(SandboxSettings)).log_buffer_bytes == 1024 * 1024
    monkeypatch.setenv("SYMBI_SANDBOX__LOG_BUFFER_BYTES", str(4 * 1024 * 1024))
    assert runner_config(load_settings(SandboxSettings)).log_buffer_bytes == 4 * 1024 * 1024
    monkeypatch.setenv("SYMBI_SANDBOX__LOG_BUFFER_BYTES", "1000")
    with pytest.raises(ConfigError, match="log_buffer_bytes"):
        load_settings(SandboxSettings)
