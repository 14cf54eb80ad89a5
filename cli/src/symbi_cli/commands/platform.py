"""``symbi up``, ``symbi status`` and ``symbi down``: the local platform."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import grpc
import typer
from rich.console import Console
from rich.table import Table

from symbi_cli.demo import run_demo
from symbi_cli.local import (
    LocalPlatform,
    PlatformState,
    pid_alive,
    read_state,
    require_state,
    service_health,
    stop_recorded,
)
from symbi_common.errors import SymbiError

console = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="SYMBI_HOME",
        help="Where the local platform keeps its state, data and logs.",
    ),
]


def _table(state: PlatformState, health: dict[str, str]) -> Table:
    table = Table(title=f"Symbi — {state.data_dir}", title_justify="left")
    table.add_column("part")
    table.add_column("pid", justify="right")
    table.add_column("gRPC")
    table.add_column("metrics")
    table.add_column("health")
    nats_health = "RUNNING" if pid_alive(state.nats_pid) else "DOWN"
    table.add_row(
        "nats",
        str(state.nats_pid or ""),
        state.nats_url,
        state.nats_monitor_url or "",
        _colour(nats_health),
    )
    for name, info in state.services.items():
        table.add_row(
            name,
            str(info.get("pid") or ""),
            info.get("grpc") or "",
            info.get("metrics") or "",
            _colour(health.get(name, "?")),
        )
    return table


def _colour(status: str) -> str:
    good = status in ("SERVING", "RUNNING")
    return f"[{'green' if good else 'red'}]{status}[/]"


async def _foreground(platform: LocalPlatform, demo: bool = False) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.ensure_future(platform.start())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, SymbiError):
                await starting
            err.print("interrupted during start-up; stopping what was started")
            return 130
        try:
            starting.result()
        except SymbiError as error:
            err.print(f"[red]start-up failed:[/] {error}")
            platform.state.status = "failed"
            return 1
        console.print(_table(platform.state, await service_health(platform.state)))
        _tls_note(platform.state)
        if demo:
            console.print(
                "[bold]Running the platform's main job (an example agent, end to end):[/]"
            )
            try:
                await run_demo(platform.state, lambda line: console.print(f"  {line}"))
            except (SymbiError, grpc.aio.AioRpcError) as error:
                err.print(f"[red]the demo job failed:[/] {error}")
        console.print("All services are SERVING. Ctrl-C stops the platform.")
        await platform.watch(stop)
        return 0
    finally:
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        await asyncio.to_thread(platform.stop)


def _tls_note(state: PlatformState) -> None:
    tls = state.local_tls
    if tls is None:
        return
    console.print(
        f"gRPC is mTLS: `symbi` commands with this data directory call as {tls.operator!r} "
        f'(a member of Role::"operators"). Other clients:\n'
        + "\n".join(f"  export {name}={value}" for name, value in tls.client_environment().items()),
        soft_wrap=True,  # the export lines are for copying: never wrapped
        highlight=False,
    )


def _detach(data_dir: Path, ephemeral: bool, timeout: float, tls: bool = False) -> int:
    """Run the supervisor in the background and return once the platform is up."""
    existing = read_state(data_dir.resolve())
    if existing is not None and pid_alive(existing.supervisor_pid):
        err.print(
            f"the platform is already running (pid {existing.supervisor_pid}); `symbi status` shows it"
        )
        return 1
    log_dir = data_dir.resolve() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "symbi_cli",
        "up",
        "--data-dir",
        str(data_dir.resolve()),
        "--timeout",
        str(timeout),
    ]
    if ephemeral:
        cmd.append("--ephemeral")
    if tls:
        cmd.append("--tls")
    with (log_dir / "supervisor.log").open("ab") as log:
        supervisor = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout + 10
    with console.status("starting the platform in the background…"):
        while time.monotonic() < deadline:
            state = read_state(data_dir.resolve())
            if supervisor.poll() is not None:
                err.print(f"[red]the platform failed to start[/]; see {log_dir / 'supervisor.log'}")
                return 1
            if (
                state is not None
                and state.status == "running"
                and state.supervisor_pid == supervisor.pid
            ):
                console.print(_table(state, asyncio.run(service_health(state))))
                _tls_note(state)
                console.print(
                    f"Running in the background (pid {supervisor.pid}); `symbi down` stops it."
                )
                return 0
            time.sleep(0.1)
    err.print("[red]the platform did not come up in time[/]; stopping it")
    with contextlib.suppress(ProcessLookupError):
        os.kill(supervisor.pid, signal.SIGTERM)
    supervisor.wait(30)
    return 1


def up(
    data_dir: DataDir = Path(".symbi"),
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background.")] = False,
    ephemeral: Annotated[
        bool,
        typer.Option(
            "--ephemeral", help="Pick free ports instead of the defaults (4222, 50051-50057, …)."
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every service to be SERVING.")
    ] = 20.0,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo", help="Once up, run an example agent end to end (what `make up` does)."
        ),
    ] = False,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls",
            help="gRPC over mTLS from a CA in the data directory's keys; later `symbi` "
            'commands call as the local operator (a member of Role::"operators").',
        ),
    ] = False,
) -> None:
    """Start NATS JetStream and all seven services locally; Ctrl-C stops them all."""
    if detach:
        raise typer.Exit(_detach(data_dir, ephemeral, timeout, tls))
    platform = LocalPlatform(
        data_dir,
        ephemeral_ports=ephemeral,
        tls=tls,
        start_timeout_s=timeout,
        on_progress=lambda m: err.print(f"[dim]{m}[/]"),
    )
    raise typer.Exit(asyncio.run(_foreground(platform, demo)))


def status(data_dir: DataDir = Path(".symbi")) -> None:
    """Health of every part of the local platform (exit 1 when any is not SERVING)."""
    try:
        state = require_state(data_dir)
    except SymbiError as error:
        err.print(str(error))
        raise typer.Exit(1) from None
    health = asyncio.run(service_health(state))
    console.print(_table(state, health))
    healthy = all(h == "SERVING" for h in health.values()) and pid_alive(state.nats_pid)
    raise typer.Exit(0 if healthy else 1)


def down(data_dir: DataDir = Path(".symbi")) -> None:
    """Stop the local platform and every process it started."""
    state = read_state(data_dir.resolve())
    if state is None:
        console.print("the platform is not running")
        return
    with console.status("stopping the platform…"):
        killed = stop_recorded(state)
    if killed:
        err.print(f"killed processes that did not stop in time: {killed}")
    console.print("stopped")


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(status)
    app.command()(down)
