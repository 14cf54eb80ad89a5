"""``symbi sandbox``: base images and the local Docker (``build-images``, ``node``), the
node's sandbox service over gRPC (``run``, ``get``, ``kill``, ``logs``, ``info``), and a task's
output from the bus (``output``, as the CLI's service principal of ``symbi up``).

Exit codes: 0 done, 1 the work failed (Docker unreachable, a build step failed, the service
refused), 2 bad usage, 3 the sandbox service cannot be reached. ``run`` exits with the task's
own exit code when it exited, 137 when it was OOM-killed, 124 at its timeout, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import grpc
import nats
import nats.errors
import typer
from google.protobuf import duration_pb2
from rich.markup import escape
from rich.table import Table

from symbi.bus.v1 import events_pb2
from symbi.common.v1 import common_pb2
from symbi.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from symbi_cli.local import CLI_PRINCIPAL, read_state
from symbi_cli.output import BAD_INPUT, REFUSED, UNREACHABLE, fail
from symbi_cli.output import folded_err as _err
from symbi_cli.output import folded_out as _out
from symbi_cli.rpc import ExitCodes, ServiceClient
from symbi_common.bus import PLATFORM_TOPIC, BusEndpoint, load_credentials
from symbi_common.bus.permissions import inbox_prefix
from symbi_common.errors import SymbiError, Unavailable
from symbi_sandbox.images import IMAGES, build_images
from symbi_sandbox.output_follow import follow_task_output

app = typer.Typer(
    help="Sandbox: build the base images (symbi/busybox, symbi/python); show the node's tiers.",
    no_args_is_help=True,
)

_FAILED = REFUSED
_CALL_TIMEOUT_S = 30.0

AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="The sandbox service, host:port (default: SYMBI_SANDBOX_ADDRESS or `symbi up`'s).",
    ),
]
_TIERS = {
    "": common_pb2.SANDBOX_TIER_UNSPECIFIED,
    "docker": common_pb2.SANDBOX_TIER_DOCKER,
    "runc": common_pb2.SANDBOX_TIER_DOCKER,
    "gvisor": common_pb2.SANDBOX_TIER_GVISOR,
    "runsc": common_pb2.SANDBOX_TIER_GVISOR,
}
_TIER_NAMES = {
    common_pb2.SANDBOX_TIER_UNSPECIFIED: "-",
    common_pb2.SANDBOX_TIER_DOCKER: "docker",
    common_pb2.SANDBOX_TIER_GVISOR: "gvisor",
}


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
        raise typer.Exit(BAD_INPUT if exc.code.name == "NOT_FOUND" and image else _FAILED) from exc
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


# ---------------------------------------------------------------------- the sandbox service


def _sandbox_stub(channel: grpc.aio.Channel) -> sandbox_pb2_grpc.SandboxServiceAsyncStub:
    return sandbox_pb2_grpc.SandboxServiceStub(channel)


_SANDBOX = ServiceClient(
    service="sandbox",
    stub=_sandbox_stub,
    codes=ExitCodes(
        statuses={
            grpc.StatusCode.UNAVAILABLE: UNREACHABLE,
            grpc.StatusCode.INVALID_ARGUMENT: BAD_INPUT,
        }
    ),
    err=_err,
)
_call = _SANDBOX.call


def _state(execution: sandbox_pb2.Execution) -> str:
    return sandbox_pb2.ExecutionState.Name(execution.state).removeprefix("EXECUTION_STATE_")


def _show(execution: sandbox_pb2.Execution) -> None:
    table = Table("field", "value", show_header=False)
    exit_code = str(execution.exit_code) if execution.HasField("exit_code") else "-"
    for field, value in (
        ("task", execution.task_id),
        ("agent", execution.agent_id),
        ("state", _state(execution)),
        ("exit code", exit_code),
        ("reason", execution.reason or "-"),
        ("tier", f"{_TIER_NAMES.get(execution.tier, '?')} ({execution.tier_reason or '-'})"),
        ("container", execution.container_id[:12] or "-"),
        ("dispatch", execution.dispatch_id or "- (direct run)"),
        ("node", execution.node_id),
        ("output", f"{execution.log_bytes} bytes"),
    ):
        table.add_row(field, escape(value))
    _out.print(table)


def _exit_status(execution: sandbox_pb2.Execution) -> int:
    if execution.state == sandbox_pb2.EXECUTION_STATE_EXITED:
        return execution.exit_code
    if execution.state == sandbox_pb2.EXECUTION_STATE_OOM_KILLED:
        return 137
    if execution.state == sandbox_pb2.EXECUTION_STATE_TIMED_OUT:
        return 124
    return _FAILED


def _write(chunk: sandbox_pb2.LogChunk) -> None:
    if chunk.stream == "gap":
        _err.print(f"[yellow]… {escape(chunk.data.decode(errors='replace'))}[/yellow]")
        return
    stream = sys.stderr if chunk.stream == "stderr" else sys.stdout
    stream.buffer.write(chunk.data)
    stream.flush()


@app.command("run")
def run_command(
    image: Annotated[str, typer.Argument(help="Image, e.g. symbi/busybox or symbi/python.")],
    command: Annotated[list[str] | None, typer.Argument(help="Command and arguments.")] = None,
    agent: Annotated[str, typer.Option("--agent", help="The agent the task runs as.")] = (
        "agent-operator"
    ),
    tier: Annotated[
        str, typer.Option("--tier", help="docker or gvisor (default: the node's).")
    ] = "",
    memory_mb: Annotated[int, typer.Option("--memory", help="Memory limit in MiB.")] = 0,
    cpu_millicores: Annotated[int, typer.Option("--cpu", help="CPU in millicores.")] = 0,
    timeout_s: Annotated[int, typer.Option("--timeout", help="Wall-clock limit, seconds.")] = 0,
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="NAME=VALUE (repeatable).")
    ] = None,
    code: Annotated[
        Path | None,
        typer.Option("--code", help="A file (→ /agent/main.py) or tar archive (→ /agent)."),
    ] = None,
    network: Annotated[
        bool, typer.Option("--network", help="Egress through the channel's proxy.")
    ] = False,
    no_channel: Annotated[
        bool, typer.Option("--no-channel", help="No agent socket in the container.")
    ] = False,
    task_id: Annotated[str, typer.Option("--task-id", help="Default: generated.")] = "",
    address: AddressOption = None,
) -> None:
    """Runs a task on the node and streams its output; exits with the task's exit code."""
    if tier.lower() not in _TIERS:
        raise fail(f"unknown tier {tier!r}; use docker or gvisor", BAD_INPUT, console=_err)
    variables: dict[str, str] = {}
    for item in env or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise fail(f"--env {item!r}: expected NAME=VALUE", BAD_INPUT, console=_err)
        variables[name] = value
    try:
        payload = code.read_bytes() if code is not None else b""
    except OSError as exc:
        raise fail(f"--code {code}: {exc.strerror}", BAD_INPUT, console=_err) from None
    request = sandbox_pb2.RunRequest(
        task_id=task_id,
        agent_id=agent,
        image=image,
        command=command or [],
        env=variables,
        tier=_TIERS[tier.lower()],
        limits=common_pb2.ResourceLimits(
            memory_mb=memory_mb,
            cpu_millicores=cpu_millicores,
            execution_timeout=duration_pb2.Duration(seconds=timeout_s),
        ),
        code=payload,
        network=network,
        without_channel=no_channel,
    )

    async def action(
        stub: sandbox_pb2_grpc.SandboxServiceAsyncStub,
    ) -> sandbox_pb2.Execution | None:
        finished: sandbox_pb2.Execution | None = None
        async for event in stub.Run(request):
            kind = event.WhichOneof("event")
            if kind == "started":
                _err.print(
                    f"[dim]task {escape(event.started.task_id)} running on "
                    f"{_TIER_NAMES.get(event.started.tier, '?')} "
                    f"({escape(event.started.tier_reason)})[/dim]"
                )
            elif kind == "log":
                _write(event.log)
            elif kind == "finished":
                finished = event.finished
        return finished

    finished = _call(address, action, "run")
    if finished is None:
        raise fail("run: the stream ended without a result", _FAILED, console=_err)
    _err.print(f"[dim]{_state(finished)}: {escape(finished.reason)}[/dim]")
    raise typer.Exit(_exit_status(finished))


@app.command("get")
def get_command(
    task_id: Annotated[str, typer.Argument(help="The task.")], address: AddressOption = None
) -> None:
    """Shows a running or recently finished task of the node."""

    async def action(stub: sandbox_pb2_grpc.SandboxServiceAsyncStub) -> sandbox_pb2.Execution:
        return await stub.Get(sandbox_pb2.GetRequest(task_id=task_id), timeout=_CALL_TIMEOUT_S)

    _show(_call(address, action, "get"))


@app.command("kill")
def kill_command(
    task_id: Annotated[str, typer.Argument(help="The task.")],
    grace_ms: Annotated[
        int, typer.Option("--grace-ms", help="SIGTERM, then SIGKILL after this (0: the node's).")
    ] = 0,
    address: AddressOption = None,
) -> None:
    """Stops a running task (a dispatched one is reported cancelled to the platform)."""

    async def action(stub: sandbox_pb2_grpc.SandboxServiceAsyncStub) -> sandbox_pb2.Execution:
        request = sandbox_pb2.KillRequest(task_id=task_id, grace_ms=grace_ms)
        return await stub.Kill(request, timeout=_CALL_TIMEOUT_S + grace_ms / 1000)

    _show(_call(address, action, "kill"))


@app.command("logs")
def logs_command(
    task_id: Annotated[str, typer.Argument(help="The task.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming until the task ends.")
    ] = False,
    address: AddressOption = None,
) -> None:
    """Prints a task's output (the retained last 1 MiB), optionally following it."""

    async def action(stub: sandbox_pb2_grpc.SandboxServiceAsyncStub) -> None:
        request = sandbox_pb2.LogsRequest(task_id=task_id, follow=follow)
        async for chunk in stub.Logs(request, timeout=None if follow else _CALL_TIMEOUT_S):
            _write(chunk)

    _call(address, action, "logs")


_OUTPUT_STREAMS = {
    events_pb2.TaskOutput.STREAM_STDOUT: sys.stdout,
    events_pb2.TaskOutput.STREAM_STDERR: sys.stderr,
}


def _write_output(message: events_pb2.TaskOutput, last_attempt: int) -> None:
    if message.attempt != last_attempt:
        _err.print(f"[dim]── attempt {message.attempt} on {escape(message.node_id)}[/dim]")
    if message.data:
        target = _OUTPUT_STREAMS.get(message.stream, sys.stdout)
        target.buffer.write(message.data)
        target.flush()
    if message.truncated:
        _err.print(
            "[yellow]… output truncated: the node's per-task cap was reached "
            "(the rest is in `symbi sandbox logs` while the node retains it)[/yellow]"
        )
    if message.final:
        _err.print(
            f"[dim]── end of output: {message.total_bytes} bytes written, "
            f"{message.skipped_bytes} not published[/dim]"
        )


async def _bus_output(
    nats_url: str, keys_dir: Path, principal: str, task_id: str, follow: bool
) -> int:
    endpoint_task: asyncio.Task[None] | None = None
    credentials = load_credentials(keys_dir, principal)
    nc = await nats.connect(
        nats_url,
        nkeys_seed_str=credentials.nkey_seed,
        inbox_prefix=inbox_prefix(principal),
        connect_timeout=3,
        max_reconnect_attempts=3,
    )
    try:
        js = nc.jetstream()
        endpoint = await asyncio.wait_for(
            BusEndpoint.open(nc, js, credentials, manage_topics=()), _CALL_TIMEOUT_S
        )
        endpoint_task = asyncio.create_task(endpoint.run(), name="key-directory")
        deadline = time.monotonic() + 15.0
        while endpoint.bus.groups.latest(PLATFORM_TOPIC.topic) is None:
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"{principal} holds no platform key after 15 s: are the platform's services "
                    "running?",
                    reason="NO_GROUP_KEY",
                )
            await asyncio.sleep(0.1)  # the services seal the key to this principal
        count, attempt = 0, 0
        async for message in follow_task_output(endpoint.bus, task_id, follow=follow):
            _write_output(message, attempt)
            attempt = message.attempt
            count += 1
        if count == 0:
            _err.print(f"no output of task {escape(task_id)} on the bus (kept for an hour)")
            return _FAILED
        return 0
    finally:
        if endpoint_task is not None:
            endpoint_task.cancel()
            await asyncio.gather(endpoint_task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await nc.close()


@app.command("output")
def output_command(
    task_id: Annotated[str, typer.Argument(help="The task.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep reading until the task's output ends.")
    ] = False,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="The local platform's directory (`symbi up`).")
    ] = Path(".symbi"),
    nats_url: Annotated[
        str | None, typer.Option("--nats-url", help="NATS (default: the local platform's).")
    ] = None,
    keys_dir: Annotated[
        Path | None, typer.Option("--keys-dir", help="Credentials (default: <data-dir>/keys).")
    ] = None,
    principal: Annotated[
        str, typer.Option("--as", help="The service principal to read as.")
    ] = CLI_PRINCIPAL,
) -> None:
    """Prints a task's output from the bus (symbi.task.output.<task>, kept an hour), from any
    node and after the node forgot it; --follow waits for the end of the latest attempt."""
    if nats_url is None:
        try:
            state = read_state(data_dir.resolve())
        except SymbiError as exc:
            raise fail(exc.message, BAD_INPUT, console=_err) from None
        if state is None or not state.nats_url:
            _err.print(
                f"[bold red]error:[/] no running platform in {data_dir} (`symbi up`); "
                "or pass --nats-url and --keys-dir"
            )
            raise typer.Exit(UNREACHABLE)
        nats_url = state.nats_url
    keys = keys_dir or data_dir.resolve() / "keys"
    try:
        code = asyncio.run(_bus_output(nats_url, keys, principal, task_id, follow))
    except SymbiError as exc:
        _err.print(f"[bold red]error:[/] output: {escape(exc.message)}")
        raise typer.Exit(UNREACHABLE if exc.retryable else _FAILED) from None
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        raise fail(f"cannot reach NATS at {nats_url}: {exc}", UNREACHABLE, console=_err) from None
    raise typer.Exit(code)


@app.command("info")
def info_command(address: AddressOption = None) -> None:
    """What the node's sandbox service offers: tiers that work, capacity, running tasks."""

    async def action(
        stub: sandbox_pb2_grpc.SandboxServiceAsyncStub,
    ) -> sandbox_pb2.NodeInfoResponse:
        return await stub.NodeInfo(sandbox_pb2.NodeInfoRequest(), timeout=_CALL_TIMEOUT_S)

    info = _call(address, action, "info")
    tiers = ", ".join(_TIER_NAMES.get(t, "?") for t in info.tiers) or "none"
    channel = ", ".join(_TIER_NAMES.get(t, "?") for t in info.channel_tiers) or "none"
    _out.print(
        f"node [bold]{escape(info.node_id)}[/bold] (instance {escape(info.instance_id)}) · "
        f"Docker {escape(info.docker_version)}"
    )
    _out.print(f"tiers: {tiers} · agent socket on: {channel}")
    for tier, why in info.broken_tiers.items():
        _out.print(f"[red]tier {escape(tier)} does not work here:[/red] {escape(why)}")
    _out.print(
        f"memory {info.memory_free_mb}/{info.memory_total_mb} MiB free · CPU "
        f"{info.cpu_free_millicores}/{info.cpu_total_millicores} millicores free · "
        f"{info.running_tasks}/{info.max_concurrent_tasks} tasks"
    )
    if info.labels:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(info.labels.items()))
        _out.print(f"labels: {escape(labels)}")
    for running in info.running_task_ids:
        _out.print(f"  running: {escape(running)}")
