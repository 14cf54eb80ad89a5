"""Operators' view: Prometheus (Debian's) scrapes every service of a running platform."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from symbi_common.launcher import SERVICES
from symbi_testing import LocalPlatform, eventually_sync

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def query(port: int, expression: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_prometheus_scrapes_every_service(tmp_path: Path, local_platform: LocalPlatform) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: `make test` installs it (scripts/ensure-host.sh)")
    prometheus = None
    try:
        state = local_platform.state
        targets = [
            {"targets": [info["metrics"]], "labels": {"service": name}}
            for name, info in state["services"].items()
        ]
        (tmp_path / "targets.json").write_text(json.dumps(targets))
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: symbi\n"
            f"    file_sd_configs: [{{files: ['{tmp_path / 'targets.json'}']}}]\n"
        )
        port = free_port()
        prometheus = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def all_up() -> bool:
            try:
                results = query(port, 'up{job="symbi"} == 1')
            except OSError as exc:  # Prometheus still starting
                raise AssertionError(f"prometheus not answering yet: {exc}") from None
            return {r["metric"]["service"] for r in results} == set(SERVICES)  # type: ignore[index]

        eventually_sync(all_up, timeout=60, interval=0.5, message="every service scraped and up")
        # gRPC metrics are there for every service (health checks during start-up count).
        handled = query(port, "sum by (service) (grpc_server_handled_total)")
        assert {r["metric"]["service"] for r in handled} == set(SERVICES)  # type: ignore[index]
        # Every metric the Grafana dashboard charts is one the services really export.
        exported = set()
        for info in state["services"].values():
            with urllib.request.urlopen(f"http://{info['metrics']}/metrics", timeout=5) as response:
                for line in response.read().decode().splitlines():
                    if line.startswith("# TYPE "):
                        exported.add(line.split()[2])
        dashboard = json.loads((ROOT / "deploy" / "grafana" / "symbi-overview.json").read_text())
        expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
        charted = {
            re.sub(r"_(bucket|sum|count)$", "", name)
            for expr in expressions
            for name in re.findall(r"\b((?:symbi|grpc_server)_[a-z_]+)\b", expr)
        }
        assert charted, "the dashboard charts nothing"
        assert charted <= exported, f"charted but never exported: {sorted(charted - exported)}"
        for expr in expressions:  # and Prometheus accepts every expression
            query(port, expr.replace("$service", ".*"))
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(10)
