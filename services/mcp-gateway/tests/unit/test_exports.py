"""The package's public surface is curated, and the domain core stays free of grpc and nats."""

from __future__ import annotations

import ast
from pathlib import Path

import symbi_mcp_gateway


def test_all_names_exist_once() -> None:
    names = symbi_mcp_gateway.__all__
    assert len(names) == len(set(names))
    missing = [name for name in names if not hasattr(symbi_mcp_gateway, name)]
    assert missing == []


#: The process edge (the service wiring and the adapters of the ports) may import the transport.
EDGE = {
    "__main__.py",
    "app.py",
    "servicer.py",
    "settings.py",
    "events.py",
    "convert.py",
    "bus_ports.py",
    "kv_approvals.py",
    "kv_keys.py",
    "kv_pins.py",
    "kv_servers.py",
}


def test_no_domain_module_imports_grpc_or_nats() -> None:
    package = Path(symbi_mcp_gateway.__file__).parent
    offenders = []
    for source in sorted(p for p in package.glob("*.py") if p.name not in EDGE):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            offenders += [
                f"{source.name}: {module}"
                for module in modules
                if module.split(".")[0] in ("grpc", "nats", "symbi")
            ]
    assert offenders == []
