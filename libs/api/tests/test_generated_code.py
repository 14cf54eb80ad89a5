"""The committed generated code is exactly what proto/ generates (CI fails on drift)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "gen_proto.py"


def run_check(proto_root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--proto-root", str(proto_root)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_committed_code_matches_protos() -> None:
    result = run_check(ROOT / "proto")
    assert result.returncode == 0, (
        f"generated code is stale; run `make proto`:\n{result.stdout}{result.stderr}"
    )


def test_check_fails_when_a_proto_changes_without_regenerating(tmp_path: Path) -> None:
    protos = tmp_path / "proto"
    shutil.copytree(ROOT / "proto", protos)
    policy = protos / "symbi" / "policy" / "v1" / "policy.proto"
    policy.write_text(
        policy.read_text().replace("bool cached = 6;", "bool cached = 6;\n  string note = 999;")
    )
    result = run_check(protos)
    assert result.returncode == 1
    assert "symbi/policy/v1/policy_pb2.py" in result.stdout
