"""``symbi scheduler``: the scheduler service — status, nodes, tasks, schedule, cancel, watch,
remove-node.

The address comes from ``--address``, ``SYMBI_SCHEDULER_ADDRESS`` or the local platform of
``symbi up``. Any scheduler replica will do: a standby forwards ScheduleAgent, Cancel,
GetTask, ListTasks and RemoveNode to the leader and answers status and nodes itself; only
``watch`` needs the leader (a standby's refusal names it).

Exit codes: 0 ok; 1 the service refused (unknown task, wrong state, a request no node could
hold, a standby asked to watch); 2 bad usage or input (also the service's INVALID_ARGUMENT,
e.g. more memory than the hard limit); 3 the service cannot be found or reached.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import grpc
import typer
from rich.markup import escape
from rich.table import Table

from symbi.common.v1 import common_pb2
from symbi.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from symbi_cli.output import (
    BAD_INPUT,
    REFUSED,
    UNREACHABLE,
    fail,
    fields,
    message_dict,
    styled,
    when,
)
from symbi_cli.output import out as _out
from symbi_cli.rpc import ExitCodes, ServiceClient

if TYPE_CHECKING:  # the async stub exists in the typing stubs only
    from symbi.scheduler.v1.scheduler_pb2_grpc import SchedulerServiceAsyncStub as Stub

app = typer.Typer(
    help="Scheduler: cluster status, worker nodes and tasks; schedule, cancel and watch tasks.",
    no_args_is_help=True,
)

#: Deadline of each unary call to the service.
_CALL_TIMEOUT_S = 30.0
#: Most tasks ListTasks returns in one call (the service's cap).
_MAX_LIST = 10_000


_STATE_VALUES = scheduler_pb2.TaskState.DESCRIPTOR.values_by_name
_STATES = [n.removeprefix("TASK_STATE_") for n in _STATE_VALUES][1:]
_STATE_STYLE = {
    "QUEUED": "blue",
    "DISPATCHED": "cyan",
    "RUNNING": "bold green",
    "SUCCEEDED": "green",
    "FAILED": "bold red",
    "CANCELLED": "dim",
    "PREEMPTED": "yellow",
}
_PRIORITIES = {
    "critical": common_pb2.PRIORITY_CRITICAL,
    "high": common_pb2.PRIORITY_HIGH,
    "normal": common_pb2.PRIORITY_NORMAL,
    "low": common_pb2.PRIORITY_LOW,
}
_PRIORITY_NAMES: dict[int, str] = {value: name for name, value in _PRIORITIES.items()}
_TIERS = {"docker": common_pb2.SANDBOX_TIER_DOCKER, "gvisor": common_pb2.SANDBOX_TIER_GVISOR}
_TIER_NAMES: dict[int, str] = {value: name for name, value in _TIERS.items()}
_EVENT_STYLE = {
    "queued": "blue",
    "requeued": "yellow",
    "placed": "cyan",
    "started": "bold green",
    "preempted": "yellow",
    "succeeded": "green",
    "failed": "bold red",
    "cancelled": "dim",
}

AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="The scheduler service, host:port (default: SYMBI_SCHEDULER_ADDRESS or `symbi up`'s).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


# ---------------------------------------------------------------- helpers
def _state_name(value: int) -> str:
    return scheduler_pb2.TaskState.Name(value).removeprefix("TASK_STATE_")


def _styled(state: str) -> str:
    return styled(state, _STATE_STYLE)


def _priority(value: int) -> str:
    return _PRIORITY_NAMES.get(value, "normal")


def _clock(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.strftime("%H:%M:%S.%f")[:-3]


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def _dict(message: Any) -> dict[str, Any]:
    return message_dict(message, with_defaults=True)


def _print_json(value: Any) -> None:
    _out.print(json.dumps(value, indent=2, sort_keys=True), markup=False)


def _pairs(values: list[str], option: str) -> dict[str, str]:
    """``KEY=VALUE`` options as a dict (bad input names the option)."""
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            raise fail(f"{option} {value!r}: expected KEY=VALUE")
        pairs[key.strip()] = rest
    return pairs


def _millicores(value: str) -> int:
    """CPU as cores (``0.5``, ``2``) or millicores (``500m``)."""
    text = value.strip().lower()
    try:
        amount = int(text[:-1]) if text.endswith("m") else round(float(text) * 1000)
    except ValueError:
        raise fail(f"--cpu {value!r}: expected cores (0.5, 2) or millicores (500m)") from None
    if amount <= 0:
        raise fail(f"--cpu {value!r}: must be more than zero")
    return amount


def _scheduler_stub(channel: grpc.aio.Channel) -> Stub:
    return scheduler_pb2_grpc.SchedulerServiceStub(channel)


_SCHEDULER = ServiceClient(
    service="scheduler",
    stub=_scheduler_stub,
    codes=ExitCodes(
        # a standby (or a leader that just stepped down) answered: the request was refused
        reasons={"SCHEDULER_NOT_ACTIVE": REFUSED},
        statuses={
            grpc.StatusCode.UNAVAILABLE: UNREACHABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED: UNREACHABLE,
            grpc.StatusCode.INVALID_ARGUMENT: BAD_INPUT,
        },
    ),
    name_unreached=True,
)
_call = _SCHEDULER.call


def _limits_text(limits: common_pb2.ResourceLimits) -> str:
    parts = [f"{limits.memory_mb} MiB", f"{limits.cpu_millicores}m CPU"]
    if limits.disk_io_mbps:
        parts.append(f"disk {limits.disk_io_mbps} Mbit/s")
    if limits.network_io_mbps:
        parts.append(f"net {limits.network_io_mbps} Mbit/s")
    timeout = limits.execution_timeout.ToTimedelta().total_seconds()
    parts.append(f"timeout {timeout:g} s")
    if limits.max_processes:
        parts.append(f"{limits.max_processes} processes")
    return ", ".join(parts)


def _labels(labels: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-"


def _show_task(task: scheduler_pb2.Task) -> None:
    rows = [
        ("task", task.task_id),
        ("agent", task.agent_id),
        ("state", _styled(_state_name(task.state))),
        ("priority", _priority(task.priority)),
        ("node", task.node_id or "-"),
        ("tier", _TIER_NAMES.get(task.tier, "-")),
        ("limits", _limits_text(task.limits)),
        ("node selector", escape(_labels(task.node_selector))),
        ("preemptible", "yes" if task.preemptible else "no"),
        ("attempt", str(task.attempt)),
        ("dispatch", task.dispatch_id or "-"),
        ("submitted", when(task.submitted_at_ms)),
        ("started", when(task.started_at_ms)),
        ("updated", when(task.updated_at_ms)),
    ]
    if task.reason:
        rows.append(("reason", escape(task.reason)))
    if task.has_exit_code:
        rows.append(("exit code", str(task.exit_code)))
    if task.preempts:
        rows.append(("preempts", ", ".join(task.preempts)))
    if task.preemptions or task.node_losses:
        rows.append(("preempted", f"{task.preemptions} times"))
        rows.append(("node losses", str(task.node_losses)))
    _out.print(fields(rows))


# ---------------------------------------------------------------- commands
@app.command()
def status(as_json: JsonOption = False, address: AddressOption = None) -> None:
    """Shows the leader, queue depths by priority, nodes, utilisation and decision rate."""

    async def action(stub: Stub) -> scheduler_pb2.SystemStatus:
        answer: scheduler_pb2.SystemStatus = await stub.GetSystemStatus(
            scheduler_pb2.GetSystemStatusRequest(), timeout=_CALL_TIMEOUT_S
        )
        return answer

    s = _call(address, action, "status")
    if as_json:
        _print_json(_dict(s))
        return
    role = "[bold green]leader[/]" if s.leader else "standby"
    depths = ", ".join(f"{p} {s.queue_depth.get(p, 0)}" for p in _PRIORITIES)
    rows = [
        ("instance", f"{escape(s.instance_id)} ({role})"),
        ("leader", escape(s.leader_id) or "[yellow]none known[/]"),
        *([("term", str(s.term))] if s.leader else []),
        ("strategy", s.strategy or "-"),
        ("queued", f"{s.queued_total} ({depths})"),
        (
            "tasks",
            f"{s.dispatched_tasks} dispatched, {s.running_tasks} running, "
            f"{s.stopping_tasks} stopping",
        ),
        (
            "nodes",
            f"{s.nodes_total} known, {s.nodes_ready} ready, {s.nodes_unreachable} unreachable",
        ),
        (
            "utilisation",
            f"memory {_percent(s.memory_utilisation)}, CPU {_percent(s.cpu_utilisation)}, "
            f"disk I/O {_percent(s.disk_io_utilisation)}, "
            f"network I/O {_percent(s.network_io_utilisation)}",
        ),
        (
            "decisions",
            f"{s.decisions_per_second:.1f}/s, {s.decisions_total} total"
            + (
                f", p50 {s.decision_p50_ms:.2f} ms, p99 {s.decision_p99_ms:.2f} ms"
                if s.leader
                else ""
            ),
        ),
        ("preemptions", f"{s.preemptions_total} total, {s.preemptions_in_window} in the window"),
        ("failed", str(s.failed_total)),
        ("journal", f"position {s.journal_position}"),
    ]
    _out.print(fields(rows))


@app.command()
def nodes(as_json: JsonOption = False, address: AddressOption = None) -> None:
    """Lists the worker nodes the scheduler knows, with free and total capacity."""

    async def action(stub: Stub) -> scheduler_pb2.ListNodesResponse:
        answer: scheduler_pb2.ListNodesResponse = await stub.ListNodes(
            scheduler_pb2.ListNodesRequest(), timeout=_CALL_TIMEOUT_S
        )
        return answer

    response = _call(address, action, "nodes")
    if as_json:
        _print_json({"nodes": [_dict(n) for n in response.nodes]})
        return
    table = Table(
        "node", "state", "memory free", "CPU free", "tasks", "tiers", "labels", "heartbeat"
    )
    for n in response.nodes:
        if n.accepting:
            state = "[green]ready[/]"
        elif n.reachable:
            state = "[yellow]not accepting[/]"
        else:
            state = "[bold red]unreachable[/]"
        table.add_row(
            n.node_id,
            state,
            f"{n.memory_free_mb} / {n.memory_total_mb} MiB",
            f"{n.cpu_free_millicores} / {n.cpu_total_millicores}m",
            f"{n.running_tasks} / {n.max_tasks}",
            ", ".join(_TIER_NAMES.get(t, "?") for t in n.tiers) or "-",
            escape(_labels(n.labels)),
            when(n.last_heartbeat_ms),
        )
    _out.print(table)
    count = len(response.nodes)
    _out.print(f"{count} node{'s' if count != 1 else ''}")


@app.command()
def tasks(
    state: Annotated[
        str | None,
        typer.Option("--state", help=f"Only tasks in this state: {', '.join(_STATES)}."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", help=f"At most this many (1..{_MAX_LIST}).")
    ] = 100,
    as_json: JsonOption = False,
    address: AddressOption = None,
) -> None:
    """Lists live tasks in submission order (queued ones in queue order)."""
    state_value: scheduler_pb2.TaskState = scheduler_pb2.TASK_STATE_UNSPECIFIED
    if state:
        key = f"TASK_STATE_{state.strip().upper()}"
        if key not in _STATE_VALUES:
            raise fail(f"unknown state {state!r}; one of {', '.join(_STATES)}")
        state_value = getattr(scheduler_pb2, key)
    if not 1 <= limit <= _MAX_LIST:
        raise fail(f"--limit must be between 1 and {_MAX_LIST}")

    async def action(stub: Stub) -> scheduler_pb2.ListTasksResponse:
        answer: scheduler_pb2.ListTasksResponse = await stub.ListTasks(
            scheduler_pb2.ListTasksRequest(state=state_value, limit=limit),
            timeout=_CALL_TIMEOUT_S,
        )
        return answer

    response = _call(address, action, "tasks")
    if as_json:
        _print_json({"total": response.total, "tasks": [_dict(t) for t in response.tasks]})
        return
    table = Table("task", "agent", "state", "priority", "node", "attempt", "submitted", "reason")
    for t in response.tasks:
        table.add_row(
            t.task_id,
            t.agent_id,
            _styled(_state_name(t.state)),
            _priority(t.priority),
            t.node_id or "-",
            str(t.attempt),
            when(t.submitted_at_ms),
            escape(t.reason),
        )
    _out.print(table)
    shown = len(response.tasks)
    total = response.total
    _out.print(f"{shown} of {total} tasks" if shown < total else f"{total} task(s)")


@app.command()
def task(
    task_id: Annotated[str, typer.Argument(help="The task id.")],
    as_json: JsonOption = False,
    address: AddressOption = None,
) -> None:
    """Shows one live task."""

    async def action(stub: Stub) -> scheduler_pb2.Task:
        answer: scheduler_pb2.Task = await stub.GetTask(
            scheduler_pb2.GetTaskRequest(task_id=task_id), timeout=_CALL_TIMEOUT_S
        )
        return answer

    found = _call(address, action, f"task {task_id}")
    if as_json:
        _print_json(_dict(found))
    else:
        _show_task(found)


@app.command()
def schedule(
    agent_id: Annotated[str, typer.Argument(help="The agent to run.")],
    priority: Annotated[
        str, typer.Option("--priority", help="critical, high, normal or low.")
    ] = "normal",
    memory_mb: Annotated[
        int, typer.Option("--memory-mb", help="Memory in MiB (0: the scheduler's default).")
    ] = 0,
    cpu: Annotated[
        str,
        typer.Option(
            "--cpu", help="CPU as cores (0.5) or millicores (500m); default: the scheduler's."
        ),
    ] = "",
    tier: Annotated[
        str, typer.Option("--tier", help="docker or gvisor (default: the platform's).")
    ] = "",
    timeout: Annotated[
        float,
        typer.Option("--timeout", help="Execution timeout in seconds (0: the scheduler's)."),
    ] = 0.0,
    disk_io_mbps: Annotated[int, typer.Option("--disk-io-mbps", help="Disk I/O, Mbit/s.")] = 0,
    network_io_mbps: Annotated[
        int, typer.Option("--network-io-mbps", help="Network I/O, Mbit/s.")
    ] = 0,
    max_processes: Annotated[
        int, typer.Option("--max-processes", help="Process limit in the sandbox (0: default).")
    ] = 0,
    node_selector: Annotated[
        list[str] | None,
        typer.Option("--node-selector", "-l", help="KEY=VALUE a node's labels must match."),
    ] = None,
    image: Annotated[str, typer.Option("--image", help="The container image.")] = "",
    command: Annotated[
        list[str] | None,
        typer.Option("--command", help="The command, one --command per argument."),
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE for the task.")
    ] = None,
    code_file: Annotated[
        Path | None, typer.Option("--code-file", help="A file whose bytes the task carries.")
    ] = None,
    network: Annotated[
        bool,
        typer.Option("--network", help="Ask for the egress proxy (destinations policy-checked)."),
    ] = False,
    preemptible: Annotated[
        bool,
        typer.Option(
            "--preemptible/--not-preemptible", help="Whether more urgent work may stop it."
        ),
    ] = True,
    metadata: Annotated[
        list[str] | None, typer.Option("--meta", help="KEY=VALUE passed to the node.")
    ] = None,
    task_id: Annotated[
        str, typer.Option("--task-id", help="Idempotency key: the task's id (generated if empty).")
    ] = "",
    as_json: JsonOption = False,
    address: AddressOption = None,
) -> None:
    """Queues an agent task; prints its id (or the task, with --json)."""
    level = _PRIORITIES.get(priority.strip().lower())
    if level is None:
        raise fail(f"unknown priority {priority!r}; one of {', '.join(_PRIORITIES)}")
    tier_value = common_pb2.SANDBOX_TIER_UNSPECIFIED
    if tier:
        found_tier = _TIERS.get(tier.strip().lower())
        if found_tier is None:
            raise fail(f"unknown tier {tier!r}; one of {', '.join(_TIERS)}")
        tier_value = found_tier
    for option, value in (
        ("--memory-mb", memory_mb),
        ("--disk-io-mbps", disk_io_mbps),
        ("--network-io-mbps", network_io_mbps),
        ("--max-processes", max_processes),
    ):
        if value < 0:
            raise fail(f"{option} must be 0 or more")
    if timeout < 0:
        raise fail("--timeout must be 0 or more")
    code = b""
    if code_file is not None:
        try:
            code = code_file.read_bytes()
        except OSError as exc:
            raise fail(f"{code_file}: cannot read: {exc}") from None
    limits = common_pb2.ResourceLimits(
        memory_mb=memory_mb,
        cpu_millicores=_millicores(cpu) if cpu else 0,
        disk_io_mbps=disk_io_mbps,
        network_io_mbps=network_io_mbps,
        max_processes=max_processes,
    )
    if timeout:
        limits.execution_timeout.FromNanoseconds(round(timeout * 1e9))
    request = scheduler_pb2.ScheduleAgentRequest(
        agent_id=agent_id,
        priority=level,
        limits=limits,
        tier=tier_value,
        node_selector=_pairs(node_selector or [], "--node-selector"),
        image=image,
        command=command or [],
        env=_pairs(env or [], "--env"),
        code=code,
        task_id=task_id,
        preemptible=preemptible,
        network=network,
        metadata=_pairs(metadata or [], "--meta"),
    )

    async def action(stub: Stub) -> scheduler_pb2.ScheduleAgentResponse:
        answer: scheduler_pb2.ScheduleAgentResponse = await stub.ScheduleAgent(
            request, timeout=_CALL_TIMEOUT_S
        )
        return answer

    response = _call(address, action, f"schedule {agent_id}")
    if as_json:
        _print_json(_dict(response.task))
    else:
        _out.print(response.task.task_id, markup=False)


@app.command()
def cancel(
    task_id: Annotated[str, typer.Argument(help="The task id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the task).")] = "",
    as_json: JsonOption = False,
    address: AddressOption = None,
) -> None:
    """Cancels a task: dequeued, or stopped on its node."""

    async def action(stub: Stub) -> scheduler_pb2.CancelResponse:
        answer: scheduler_pb2.CancelResponse = await stub.Cancel(
            scheduler_pb2.CancelRequest(task_id=task_id, reason=reason), timeout=_CALL_TIMEOUT_S
        )
        return answer

    response = _call(address, action, f"cancel {task_id}")
    if as_json:
        _print_json(_dict(response.task))
        return
    t = response.task
    why = f" {escape(t.reason)}" if t.reason else ""
    _out.print(f"{t.task_id}: {_styled(_state_name(t.state))}{why}")


@app.command()
def watch(
    agent_id: Annotated[
        str, typer.Option("--agent", help="Only this agent's tasks (default: all).")
    ] = "",
    snapshot: Annotated[
        bool, typer.Option("--snapshot", help="First print every live task.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Stop after this many seconds (0: until Ctrl-C).")
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    address: AddressOption = None,
) -> None:
    """Prints queue events as they happen (from the leader) until Ctrl-C."""
    if timeout < 0:
        raise fail("--timeout must be 0 or more")

    def show(event: scheduler_pb2.QueueEvent) -> None:
        if as_json:
            _out.print(json.dumps(_dict(event), sort_keys=True), markup=False)
            return
        t = event.task
        style = _EVENT_STYLE.get(event.event)
        name = f"[{style}]{event.event:<9}[/]" if style else f"{event.event:<9}"
        where = f" on {t.node_id}" if t.node_id else ""
        why = f"  {escape(t.reason)}" if t.reason else ""
        _out.print(
            f"{_clock(event.timestamp_ms)} {name} {t.task_id} ({t.agent_id}, "
            f"{_priority(t.priority)}) {_state_name(t.state)}{where}{why}"
        )

    async def follow(stub: Stub) -> None:
        stream = stub.WatchQueue(
            scheduler_pb2.WatchQueueRequest(agent_id=agent_id, snapshot=snapshot)
        )
        async for event in stream:
            show(event)

    _SCHEDULER.follow(address, follow, "watch", seconds=timeout)


@app.command("remove-node")
def remove_node(
    node_id: Annotated[str, typer.Argument(help="The node id (node-…).")],
    as_json: JsonOption = False,
    address: AddressOption = None,
) -> None:
    """Forgets a node now: its tasks are requeued (or failed when out of attempts)."""

    async def action(stub: Stub) -> scheduler_pb2.RemoveNodeResponse:
        answer: scheduler_pb2.RemoveNodeResponse = await stub.RemoveNode(
            scheduler_pb2.RemoveNodeRequest(node_id=node_id), timeout=_CALL_TIMEOUT_S
        )
        return answer

    response = _call(address, action, f"remove-node {node_id}")
    if as_json:
        _print_json(_dict(response))
        return
    _out.print(
        f"{node_id} removed: {len(response.requeued)} task(s) requeued"
        + (f" ({', '.join(response.requeued)})" if response.requeued else "")
        + f", {len(response.failed)} failed"
        + (f" ({', '.join(response.failed)})" if response.failed else "")
    )
