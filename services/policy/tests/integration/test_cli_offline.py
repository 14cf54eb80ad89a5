"""`symbi policy validate` / `eval` as a real process, over files on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

POLICIES = {
    "base.cedar": """\
@id("trusted-publish")
@condition("audit_full")
permit(principal is Symbi::Agent, action == Symbi::Action::"publish", resource)
when { principal has trust && principal.trust == "trusted" };

@id("no-secret")
@reason("topic secret is off limits")
forbid(principal, action == Symbi::Action::"publish", resource == Symbi::Topic::"secret");
""",
    "agents/reader.cedar": """\
permit(principal == Symbi::Agent::"r", action == Symbi::Action::"read_context", resource);
""",
}
ENTITIES = [
    {"uid": {"type": "Agent", "id": "a"}, "attrs": {"trust": "trusted"}},
    {"uid": {"type": "Agent", "id": "r"}},
    {"uid": {"type": "Topic", "id": "t"}},
    {"uid": {"type": "Topic", "id": "secret"}},
    {"uid": {"type": "Dataset", "id": "d"}},
]


def symbi(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from symbi_cli.main import app; app()", "policy", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    for name, text in POLICIES.items():
        path = tmp_path / "policies" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "entities.json").write_text(json.dumps(ENTITIES))
    return tmp_path


def evaluate(policy_dir: Path, request: dict[str, object]) -> dict[str, object]:
    result = symbi(
        "eval",
        "--policies",
        str(policy_dir / "policies"),
        "--entities",
        str(policy_dir / "entities.json"),
        "--request",
        json.dumps(request),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_eval_prints_decisions_as_json(policy_dir):
    conditional = evaluate(
        policy_dir, {"principal": 'Agent::"a"', "action": "publish", "resource": 'Topic::"t"'}
    )
    # two documents: agents/reader (revision 1), base (revision 2); entities revision 3
    assert conditional == {
        "decision": "AllowWithConditions",
        "reasons": [],
        "conditions": ["audit_full"],
        "policies": ["trusted-publish"],
        "version": 2,
        "entities_version": 3,
    }
    denied = evaluate(
        policy_dir, {"principal": 'Agent::"a"', "action": "publish", "resource": 'Topic::"secret"'}
    )
    assert (denied["decision"], denied["reasons"], denied["policies"]) == (
        "Deny",
        ["topic secret is off limits"],
        ["no-secret"],
    )
    allowed = evaluate(
        policy_dir,
        {
            "principal": {"type": "Agent", "id": "r"},
            "action": "read_context",
            "resource": 'Dataset::"d"',
        },
    )
    assert (allowed["decision"], allowed["policies"]) == ("Allow", ["agents/reader#0"])
    default = evaluate(
        policy_dir, {"principal": 'Agent::"r"', "action": "publish", "resource": 'Topic::"t"'}
    )
    assert default["decision"] == "Deny"
    assert "default deny" in default["reasons"][0]


def test_eval_reads_the_request_from_a_file(policy_dir):
    request_file = policy_dir / "request.json"
    request_file.write_text(
        json.dumps({"principal": 'Agent::"a"', "action": "publish", "resource": 'Topic::"t"'})
    )
    result = symbi(
        "eval",
        "--policies",
        str(policy_dir / "policies"),
        "--entities",
        str(policy_dir / "entities.json"),
        "--request",
        f"@{request_file}",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["decision"] == "AllowWithConditions"


def test_eval_rejects_bad_input_with_exit_2(policy_dir):
    result = symbi(
        "eval", "--policies", str(policy_dir / "policies"), "--request", '{"principal": "nope"}'
    )
    assert result.returncode == 2
    assert "principal must be" in result.stderr
    result = symbi("eval", "--policies", str(policy_dir / "missing"), "--request", "{}")
    assert result.returncode == 2


def test_eval_with_invalid_policies_exits_1_with_positions(policy_dir):
    (policy_dir / "policies" / "broken.cedar").write_text(
        "permit(principal, action, resource)\n  when { 1 + };\n"
    )
    result = symbi(
        "eval",
        "--policies",
        str(policy_dir / "policies"),
        "--request",
        '{"principal": "Agent::\\"a\\"", "action": "publish", "resource": "Topic::\\"t\\""}',
    )
    assert result.returncode == 1
    assert "broken:2:14: policy broken#0: unexpected token `}`" in result.stderr


def test_validate_reports_file_line_column(policy_dir, tmp_path):
    good = policy_dir / "policies" / "base.cedar"
    bad = tmp_path / "bad.cedar"
    bad.write_text('@id("x")\npermit(principal, action == Symbi::Action::"publishx", resource);\n')
    result = symbi("validate", str(good), str(bad))
    assert result.returncode == 1
    assert f"ok: {good} (2 policies)" in result.stdout
    assert f"{bad}:2:29: policy x: unrecognized action" in result.stderr
    assert symbi("validate", str(good)).returncode == 0
