"""``symbi sandbox``: base images for sandboxed tasks, and a look at this node.

Exit codes: 0 done, 1 the work failed (Docker unreachable, a build step failed), 2 bad usage.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from symbi_common.errors import SymbiError
from symbi_sandbox.images import IMAGES, build_images

app = typer.Typer(
    help="Sandbox: build the base images (symbi/busybox, symbi/python); show the node's tiers.",
    no_args_is_help=True,
)

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)
_FAILED = 1
_BAD_USAGE = 2


def _docker(timeout: int = 300) -> Any:
    import docker

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:
        _err.print(
            f"[red]Docker is not reachable[/red] ({exc}).\n"
            "Start it with scripts/ensure-host.sh (make host), which also registers gVisor."
        )
        raise typer.Exit(_FAILED) from exc
    return client


@app.command("build-images")
def build_images_command(
    if_missing: Annotated[
        bool,
        typer.Option(
            "--if-missing",
            help="Keep images that exist and were built by the current recipe.",
        ),
    ] = False,
    image: Annotated[
        list[str] | None,
        typer.Option(
            "--image",
            help=f"Build only this image (repeatable): {', '.join(r.name for r in IMAGES)}.",
        ),
    ] = None,
) -> None:
    """Builds the base images locally (no registry needed): busybox, then Python from Debian packages."""
    client = _docker()
    started = time.monotonic()
    try:
        with _out.status("building sandbox images…") as status:

            def progress(line: str) -> None:
                status.update(line)
                _out.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim] {line}")

            results = build_images(client, if_missing=if_missing, names=image, progress=progress)
    except SymbiError as exc:
        _err.print(f"[red]image build failed:[/red] {exc.message}")
        raise typer.Exit(_BAD_USAGE if exc.code.name == "NOT_FOUND" and image else _FAILED) from exc
    finally:
        client.close()
    table = Table("image", "id", "result")
    for result in results:
        table.add_row(
            result.name,
            result.image_id.removeprefix("sha256:")[:12],
            f"built in {result.seconds:.1f} s" if result.built else "present, kept",
        )
    _out.print(table)


@app.command("node")
def node_command() -> None:
    """Shows what this node offers: Docker version, runtimes (tiers), memory and CPUs."""
    client = _docker(timeout=30)
    try:
        info = client.info()
    finally:
        client.close()
    runtimes = info.get("Runtimes") or {}
    table = Table("tier", "runtime", "registered", "runtime arguments")
    for tier, runtime in (("docker (1)", "runc"), ("gvisor (2)", "runsc")):
        body = runtimes.get(runtime)
        args = " ".join((body or {}).get("runtimeArgs") or [])
        table.add_row(tier, runtime, "yes" if body is not None else "[red]no[/red]", args)
    _out.print(
        f"Docker {info.get('ServerVersion')} · {info.get('NCPU')} CPUs · "
        f"{int(info.get('MemTotal', 0)) // 2**20} MiB"
    )
    _out.print(table)
    runsc = runtimes.get("runsc") or {}
    runsc_args = runsc.get("runtimeArgs") or []
    if runsc and not any(a in ("--host-uds=open", "--host-uds=all") for a in runsc_args):
        _out.print(
            "[yellow]runsc lacks --host-uds=open: gVisor tasks cannot use the agent socket[/yellow]"
        )
