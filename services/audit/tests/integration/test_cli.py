"""``symbi audit verify|proof|keygen`` on real exports (the Typer app, and once as a process)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from symbi_audit.event import AuditEvent
from symbi_audit.log import AuditLog
from symbi_audit.note import NoteSigner
from symbi_cli.commands.audit import app

Events = Callable[..., list[AuditEvent]]
runner = CliRunner()


@pytest.fixture
def exported(tmp_path: Path, log_key: NoteSigner, events: Events) -> tuple[Path, Path, AuditLog]:
    log = AuditLog.open(tmp_path / "audit.db", signer=log_key)
    log.append_batch(events(30))
    export = log.export(tmp_path / "export.jsonl")
    key_file = tmp_path / "log.pub"
    key_file.write_text(str(log_key.verifier) + "\n")
    yield export, key_file, log  # type: ignore[misc]
    log.close()


def test_verify_passes_untouched_and_names_the_changed_entry(
    exported: tuple[Path, Path, AuditLog],
) -> None:
    export, key_file, _ = exported
    ok = runner.invoke(app, ["verify", str(export), "--public-key", str(key_file)])
    assert ok.exit_code == 0, ok.output
    assert "verified" in ok.output
    lines = export.read_text().splitlines(keepends=True)
    entry = next(i for i, line in enumerate(lines) if '"index":12,' in line)
    lines[entry] = lines[entry].replace('"n":12', '"n":99')
    export.write_text("".join(lines))
    bad = runner.invoke(app, ["verify", str(export), "--public-key", str(key_file)])
    assert bad.exit_code == 1
    assert "entry 12" in bad.output
    assert "changed" in bad.output


def test_verify_rejects_an_untrusted_key(exported: tuple[Path, Path, AuditLog]) -> None:
    export, _, _ = exported
    other = str(NoteSigner.generate("audit.symbi.test/log").verifier)
    result = runner.invoke(app, ["verify", str(export), "--public-key", other])
    assert result.exit_code == 1
    assert "bad-checkpoint" in result.output
    usage = runner.invoke(app, ["verify", str(export), "--public-key", "nonsense"])
    assert usage.exit_code == 2


def test_proof_commands(exported: tuple[Path, Path, AuditLog], tmp_path: Path) -> None:
    _, key_file, log = exported
    store = log.store
    proof_file = tmp_path / "inclusion.json"
    proof_file.write_text(json.dumps(store.inclusion_proof(7, 30).to_json()))
    checkpoint_file = tmp_path / "cp.note"
    checkpoint_file.write_text(log.checkpoint().note)
    ok = runner.invoke(
        app,
        [
            "proof", "inclusion", "--proof", str(proof_file),
            "--checkpoint", str(checkpoint_file), "--public-key", str(key_file),
            "--event", json.dumps(store.get(7).event.to_json_object()),
        ],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    wrong_event = runner.invoke(
        app,
        [
            "proof", "inclusion", "--proof", str(proof_file),
            "--root", store.root().hex(),
            "--event", json.dumps(store.get(8).event.to_json_object()),
        ],
    )  # fmt: skip
    assert wrong_event.exit_code == 1
    p = store.inclusion_proof(3, 30)
    manual = ["proof", "inclusion", "--index", "3", "--tree-size", "30"]
    manual += ["--leaf-hash", p.leaf_hash.hex(), "--root", store.root().hex()]
    for h in p.hashes:
        manual += ["--hash", h.hex()]
    assert runner.invoke(app, manual).exit_code == 0
    manual[manual.index("3")] = "4"
    assert runner.invoke(app, manual).exit_code == 1

    c = store.consistency_proof(11, 30)
    args = ["proof", "consistency", "--proof", json.dumps(c.to_json())]
    good = runner.invoke(
        app, [*args, "--old-root", store.root_at(11).hex(), "--new-root", store.root().hex()]
    )
    assert good.exit_code == 0, good.output
    bad = runner.invoke(
        app, [*args, "--old-root", store.root_at(12).hex(), "--new-root", store.root().hex()]
    )
    assert bad.exit_code == 1
    assert runner.invoke(app, args).exit_code == 2


def test_keygen_writes_a_usable_key(tmp_path: Path) -> None:
    out = tmp_path / "log.key"
    result = runner.invoke(app, ["keygen", "audit.example/prod", "--out", str(out)])
    assert result.exit_code == 0, result.output
    signer = NoteSigner.parse(out.read_text())
    assert str(signer.verifier) in result.output
    assert out.stat().st_mode & 0o777 == 0o600


def test_symbi_audit_verify_as_a_process(exported: tuple[Path, Path, AuditLog]) -> None:
    export, key_file, _ = exported
    cmd = [str(Path(sys.executable).with_name("symbi")), "audit", "verify", str(export)]
    proc = subprocess.run(
        [*cmd, "--public-key", str(key_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    lines = export.read_text().splitlines(keepends=True)
    del lines[10]
    export.write_text("".join(lines))
    proc = subprocess.run(
        [*cmd, "--public-key", str(key_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "entry" in proc.stderr
