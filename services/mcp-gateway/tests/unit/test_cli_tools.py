"""``symbi tools`` without a gateway: one clear line and the documented exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from symbi_cli.main import app


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.delenv("SYMBI_MCP_GATEWAY_ADDRESS", raising=False)
    monkeypatch.setenv("SYMBI_HOME", str(tmp_path))
    return CliRunner()


def test_no_gateway_to_be_found_is_bad_usage(runner: CliRunner) -> None:
    result = runner.invoke(app, ["tools", "list"])
    assert result.exit_code == 2
    assert "cannot find the mcp-gateway service" in result.output


def test_bad_arguments_are_refused_before_any_call(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["tools", "call", "time", "now", "--agent", "a", "--args", "[1]", "--address", "x:1"]
    )
    assert result.exit_code == 2
    assert "--args must be a JSON object" in result.output
