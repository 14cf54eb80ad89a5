"""The package's curated public API, and the domain rule: no grpc, no nats."""

from __future__ import annotations

import ast
from pathlib import Path

import symbi_audit

SRC = Path(symbi_audit.__file__).parent
# The process edge (STYLE.md service skeleton) may talk to grpc and nats; the domain may not.
EDGE = {"__main__.py", "app.py", "servicer.py", "events.py", "convert.py", "settings.py"}


def test_all_is_sorted_and_every_name_exists() -> None:
    assert list(symbi_audit.__all__) == sorted(
        symbi_audit.__all__, key=lambda n: (not n.isupper(), n)
    )
    for name in symbi_audit.__all__:
        assert hasattr(symbi_audit, name), name


def test_domain_modules_import_neither_grpc_nor_nats() -> None:
    offenders = []
    for path in SRC.glob("*.py"):
        if path.name in EDGE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in {"grpc", "nats"}]
    assert offenders == []
