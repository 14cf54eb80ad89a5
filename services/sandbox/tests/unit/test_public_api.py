"""The curated public API stays importable and complete."""

from __future__ import annotations

import ast
from pathlib import Path

import symbi_sandbox
import symbi_sandbox.channel


def test_all_names_resolve_once() -> None:
    for module in (symbi_sandbox, symbi_sandbox.channel):
        assert len(module.__all__) == len(set(module.__all__))
        for name in module.__all__:
            assert getattr(module, name) is not None, name


WIRING = {
    "__main__.py",
    "agent_sessions.py",
    "app.py",
    "bus_channel.py",
    "events.py",
    "identity.py",
    "output_follow.py",
    "servicer.py",
    "settings.py",
}


def test_domain_core_imports_neither_grpc_nor_nats() -> None:
    root = Path(symbi_sandbox.__file__).parent
    for path in root.rglob("*.py"):
        if path.name in WIRING:
            continue  # the service process: gRPC and the bus, around the domain core
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"grpc", "nats"}, f"{path}: imports {name}"
