"""``symbi dsl check`` / ``fmt`` / ``cedar``: in process, and once as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from symbi_cli.commands.dsl import app

REPO = Path(__file__).resolve().parents[5]
REFERENCE_AGENTS = REPO.parent / "shared" / "reference" / "agents"
EXAMPLES = REPO / "examples" / "agents"

runner = CliRunner()

BROKEN = """agent a {
    with {
        let x = 1
        f(x);
    }
}

agent b {
    policy p { permit: x }
}
"""

INVALID = 'agent c {\n    with sandbox = "firecracker", max_memory_mb = 999999 {}\n}\n'


def test_check_accepts_references_and_examples() -> None:
    files = sorted(REFERENCE_AGENTS.glob("*.symbi")) + sorted(EXAMPLES.iterdir())
    result = runner.invoke(app, ["check", *map(str, files)])
    assert result.exit_code == 0, result.output
    assert f"checked {len(files)} files: 0 errors, 0 warnings" in result.output


def test_check_rejects_broken_files_naming_line_and_column(tmp_path: Path) -> None:
    broken = tmp_path / "broken.symbi"
    broken.write_text(BROKEN)
    invalid = tmp_path / "invalid.symbi"
    invalid.write_text(INVALID)
    result = runner.invoke(app, ["check", str(broken), str(invalid)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.startswith(f"{broken}:3:18: error: missing `;`") for line in lines), lines
    assert any(line.startswith(f"{broken}:9:16: error: unexpected `permit`") for line in lines)
    assert any(line.startswith(f"{invalid}:2:10: error: `sandbox`") for line in lines)
    assert any(line.startswith(f"{invalid}:2:35: error: memory limit 999999 MiB") for line in lines)


def test_check_json_output(tmp_path: Path) -> None:
    path = tmp_path / "a.symbi"
    path.write_text(INVALID)
    result = runner.invoke(app, ["check", "--json", str(path)])
    assert result.exit_code == 1
    assert '"code": "sandbox-tier"' in result.output


def test_check_strict_fails_on_warnings(tmp_path: Path) -> None:
    path = tmp_path / "a.symbi"
    path.write_text('agent a { with memory = "sometimes" {} }\n')
    assert runner.invoke(app, ["check", str(path)]).exit_code == 0
    assert runner.invoke(app, ["check", "--strict", str(path)]).exit_code == 1


def test_check_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(tmp_path / "nope.symbi")])
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_fmt_rewrites_and_check_mode_reports(tmp_path: Path) -> None:
    path = tmp_path / "a.symbi"
    path.write_text("agent a{with{f( 1 );}} // end\n")
    result = runner.invoke(app, ["fmt", "--check", str(path)])
    assert result.exit_code == 1
    assert f"would reformat {path}" in result.output
    assert path.read_text() == "agent a{with{f( 1 );}} // end\n"

    result = runner.invoke(app, ["fmt", str(path)])
    assert result.exit_code == 0
    assert path.read_text() == "agent a {\n    with {\n        f(1);\n    }\n}  // end\n"
    assert runner.invoke(app, ["fmt", "--check", str(path)]).exit_code == 0


def test_fmt_leaves_unparsable_files_alone(tmp_path: Path) -> None:
    path = tmp_path / "a.symbi"
    path.write_text(BROKEN)
    result = runner.invoke(app, ["fmt", str(path)])
    assert result.exit_code == 1
    assert path.read_text() == BROKEN
    assert ":3:18: error:" in result.output


def test_cedar_prints_the_compiled_policies() -> None:
    result = runner.invoke(app, ["cedar", str(EXAMPLES / "researcher.symbi")])
    assert result.exit_code == 0, result.output
    assert 'principal == Symbi::Agent::"researcher"' in result.output
    assert "// agent researcher: document agents/researcher" in result.output


def test_check_as_a_process() -> None:
    symbi = Path(sys.executable).parent / "symbi"
    files = sorted(str(p) for p in REFERENCE_AGENTS.glob("*.symbi"))
    done = subprocess.run(
        [str(symbi), "dsl", "check", *files],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 errors" in done.stderr


def test_check_without_runtime_guards_refuses_agent_data_guards() -> None:
    path = REFERENCE_AGENTS / "webhook_handler.symbi"
    result = runner.invoke(app, ["check", "--no-runtime-guards", str(path)])
    assert result.exit_code == 1
    assert f"{path}:27:16: error: this guard reads values the policy engine does not see" in (
        result.output
    )
