"""``symbi scheduler`` as a process against a scheduler process with a simulated node."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from symbi.scheduler.v1 import scheduler_pb2 as pb
from symbi_testing import eventually

from .conftest import POLL_S, Cluster

CLI = [sys.executable, "-m", "symbi_cli", "scheduler"]


def _env(address: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SYMBI_SCHEDULER_ADDRESS"}
    env.update({"COLUMNS": "200", "NO_COLOR": "1"})
    if address is not None:
        env["SYMBI_SCHEDULER_ADDRESS"] = address
    env.update(extra or {})
    return env


def has(text: str, *parts: str) -> None:
    for part in parts:
        assert part in text, text


async def run(
    address: str | None, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [*CLI, *args],
        capture_output=True,
        text=True,
        env=_env(address, env),
        timeout=60,
        check=False,
    )


async def test_scheduler_commands(cluster: Cluster) -> None:
    # One small node whose tasks run until stopped, so the queue can be made to hold work.
    await cluster.start_node("a", memory_mb=1024, cpu_millicores=2000, run_s=None)
    scheduler = await cluster.start_scheduler("a")
    await cluster.leader()
    await cluster.wait_nodes(scheduler, 1)
    address = scheduler.process.grpc_address or ""

    # A task that fills the node and may not be preempted.
    filled = await run(
        address,
        "schedule",
        "agent-fill",
        "--task-id",
        "fill",
        "--memory-mb",
        "1024",
        "--cpu",
        "250m",
        "--priority",
        "low",
        "--not-preemptible",
    )
    assert filled.returncode == 0, filled.stderr
    assert filled.stdout.strip() == "fill"

    async def fill_running() -> bool:
        return (await scheduler.task("fill")).state == pb.TASK_STATE_RUNNING

    await eventually(fill_running, timeout=20, interval=POLL_S)

    # The watcher's snapshot shows it is connected before anything else happens.
    watcher = await asyncio.create_subprocess_exec(
        *CLI,
        "watch",
        "--snapshot",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(address),
    )
    assert watcher.stdout is not None
    watched: list[str] = []

    async def next_line() -> str:
        assert watcher.stdout is not None
        line = (await asyncio.wait_for(watcher.stdout.readline(), timeout=30)).decode()
        assert line, "the watcher ended early"
        watched.append(line)
        return line

    try:
        first = await next_line()
        has(first, "snapshot", "fill", "RUNNING on node-a")

        # A High task that needs the node's memory: it waits (the Low task is protected).
        queued = await run(
            address,
            "schedule",
            "agent-cli",
            "--priority",
            "high",
            "--memory-mb",
            "512",
            "--cpu",
            "0.5",
            "--tier",
            "docker",
            "--timeout",
            "120",
            "--env",
            "MODE=test",
            "--json",
        )
        assert queued.returncode == 0, queued.stderr
        task = json.loads(queued.stdout)
        task_id = task["task_id"]
        assert task["state"] == "TASK_STATE_QUEUED"
        assert task["priority"] == "PRIORITY_HIGH"
        assert task["limits"]["memory_mb"] == 512
        assert task["limits"]["cpu_millicores"] == 500

        line = await next_line()
        has(line, "queued", task_id, "agent-cli")

        listing = await run(address, "tasks")
        assert listing.returncode == 0, listing.stderr
        rows = [row for row in listing.stdout.splitlines() if row.startswith("│")]
        assert any("fill" in r and "RUNNING" in r and "node-a" in r for r in rows), listing.stdout
        assert any(task_id in r and "QUEUED" in r and "high" in r for r in rows), listing.stdout
        assert "2 task(s)" in listing.stdout

        only_queued = await run(address, "tasks", "--state", "queued", "--json")
        assert only_queued.returncode == 0, only_queued.stderr
        data = json.loads(only_queued.stdout)
        assert data["total"] == 1
        assert [t["task_id"] for t in data["tasks"]] == [task_id]

        shown = await run(address, "task", task_id)
        assert shown.returncode == 0, shown.stderr
        assert "QUEUED" in shown.stdout
        assert "agent-cli" in shown.stdout
        assert "512 MiB, 500m CPU, timeout 120 s" in shown.stdout
        assert "docker" in shown.stdout

        status = await run(address, "status")
        assert status.returncode == 0, status.stderr
        assert "a (leader)" in status.stdout
        assert "svc-scheduler-a" in status.stdout
        assert "queued       1 (critical 0, high 1, normal 0, low 0)" in status.stdout
        assert "1 known, 1 ready, 0 unreachable" in status.stdout
        assert "memory 100.0%" in status.stdout
        status_json = json.loads((await run(address, "status", "--json")).stdout)
        assert status_json["queue_depth"]["high"] == 1
        assert status_json["leader"] is True
        assert status_json["running_tasks"] == 1

        nodes = await run(address, "nodes")
        assert nodes.returncode == 0, nodes.stderr
        row = next(r for r in nodes.stdout.splitlines() if "node-a" in r)
        has(row, "ready", "0 / 1024 MiB", "1 / 16", "docker")

        cancelled = await run(address, "cancel", task_id, "--reason", "no longer needed")
        assert cancelled.returncode == 0, cancelled.stderr
        assert f"{task_id}: CANCELLED no longer needed" in cancelled.stdout
        line = await next_line()
        has(line, "cancelled", task_id)

        after = json.loads((await run(address, "status", "--json")).stdout)
        assert after["queued_total"] == 0

        # Ctrl-C ends the watch cleanly.
        watcher.send_signal(signal.SIGINT)
        _, errors = await asyncio.wait_for(watcher.communicate(), timeout=30)
        assert watcher.returncode == 0, errors.decode()
        assert "Traceback" not in errors.decode()
    finally:
        if watcher.returncode is None:
            watcher.kill()
            await watcher.wait()

    removed = await run(address, "remove-node", "node-a")
    assert removed.returncode == 0, removed.stderr
    assert "node-a removed: 1 task(s) requeued (fill), 0 failed" in removed.stdout


async def test_scheduler_command_errors(cluster: Cluster, tmp_path: Path) -> None:
    await cluster.start_node("a", memory_mb=1024)
    scheduler = await cluster.start_scheduler("a")
    await cluster.leader()
    await cluster.wait_nodes(scheduler, 1)
    address = scheduler.process.grpc_address or ""

    unknown = await run(address, "task", "t-nobody")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: task t-nobody: task 't-nobody' is not known"
    not_there = await run(address, "cancel", "t-nobody")
    assert not_there.returncode == 1
    assert "is not known" in not_there.stderr

    # Refused before it is sent, and by the service's hard limits.
    bad_priority = await run(address, "schedule", "agent-x", "--priority", "urgent")
    assert bad_priority.returncode == 2
    assert "unknown priority 'urgent'" in bad_priority.stderr
    too_big = await run(address, "schedule", "agent-x", "--memory-mb", "2000000")
    assert too_big.returncode == 2
    assert "memory_mb 2000000 exceeds the limit" in too_big.stderr

    # A tier no node offers is refused at once (once nodes have had time to report).
    async def refused() -> str:
        answer = await run(address, "schedule", "agent-x", "--tier", "gvisor")
        assert answer.returncode == 1, answer.stdout
        return answer.stderr

    message = await eventually(refused, timeout=30, interval=0.5)
    assert "can never be placed" in message

    # A standby answers status itself, and refuses to stream, naming the leader.
    standby = await cluster.start_scheduler("b")
    standby_address = standby.process.grpc_address or ""
    standby_status = await run(standby_address, "status")
    assert standby_status.returncode == 0, standby_status.stderr
    has(standby_status.stdout, "b (standby)", "svc-scheduler-a")
    refused_watch = await run(standby_address, "watch", "--timeout", "20")
    assert refused_watch.returncode == 1
    has(refused_watch.stderr, "this scheduler is a standby", "svc-scheduler-a")

    unreachable = await run("127.0.0.1:1", "status")
    assert unreachable.returncode == 3
    assert unreachable.stderr.startswith("error: status: cannot reach the scheduler at 127.0.0.1:1")
    assert "Traceback" not in unreachable.stderr
    nowhere = await run(None, "nodes", env={"SYMBI_HOME": str(tmp_path)})
    assert nowhere.returncode == 3
    assert "cannot find the scheduler service" in nowhere.stderr
    assert "SYMBI_SCHEDULER_ADDRESS" in nowhere.stderr
