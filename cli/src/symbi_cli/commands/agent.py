"""``symbi agent``: agents in the lifecycle service — create, list, get, watch, suspend,
resume, terminate, history.

Exit codes: 0 ok; 1 the service refused (bad definition, wrong state, denied, lost a race) or
the agent ended FAILED on create; 2 bad usage or input; 3 the service cannot be reached.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import grpc
import typer
from rich.markup import escape
from rich.table import Table

from symbi.common.v1 import common_pb2
from symbi.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from symbi_cli.output import (
    BAD_INPUT,
    REFUSED,
    UNREACHABLE,
    fail,
    fields,
    message_dict,
    message_json,
    styled,
    when,
)
from symbi_cli.output import out as _out
from symbi_cli.rpc import ExitCodes, ServiceClient
from symbi_common.dsl import format_of

if TYPE_CHECKING:  # the async stub exists in the typing stubs only
    from symbi.lifecycle.v1.lifecycle_pb2_grpc import LifecycleServiceAsyncStub as Stub

app = typer.Typer(
    help="Agents: create them from DSL/TOML/YAML, list, inspect, watch and change their state.",
    no_args_is_help=True,
)

#: Deadline of each unary call to the service.
_CALL_TIMEOUT_S = 30.0


_STATE_VALUES = lifecycle_pb2.AgentState.DESCRIPTOR.values_by_name
_STATES = [n.removeprefix("AGENT_STATE_") for n in _STATE_VALUES][1:]
_STATE_STYLE = {
    "READY": "green",
    "RUNNING": "bold green",
    "COMPLETED": "cyan",
    "FAILED": "bold red",
    "SUSPENDED": "yellow",
    "WAITING": "blue",
    "TERMINATED": "dim",
}
_TIERS = {common_pb2.SANDBOX_TIER_DOCKER: "docker", common_pb2.SANDBOX_TIER_GVISOR: "gvisor"}

AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="The lifecycle service, host:port (default: SYMBI_LIFECYCLE_ADDRESS or `symbi up`'s).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (kept in the history).")]
RevisionOption = Annotated[
    int,
    typer.Option(
        "--revision",
        help="Only if the agent is still at this revision (compare-and-set); 0: current.",
    ),
]


def _state_name(value: int) -> str:
    return lifecycle_pb2.AgentState.Name(value).removeprefix("AGENT_STATE_")


def _styled(state: str) -> str:
    return styled(state, _STATE_STYLE)


def _as_json(message: Any) -> str:
    return message_json(message, sort_keys=True, ascii_only=True)


def _lifecycle_stub(channel: grpc.aio.Channel) -> Stub:
    return lifecycle_pb2_grpc.LifecycleServiceStub(channel)


_LIFECYCLE = ServiceClient(
    service="lifecycle",
    stub=_lifecycle_stub,
    codes=ExitCodes(statuses={grpc.StatusCode.UNAVAILABLE: UNREACHABLE}),
)
_call = _LIFECYCLE.call


def _show(agent: lifecycle_pb2.Agent, *, source: bool = False) -> None:
    state = _state_name(agent.state)
    rows = [
        ("id", agent.id),
        ("name", agent.name),
        ("state", _styled(state)),
        ("reason", escape(agent.reason)),
        ("revision", str(agent.revision)),
        ("owner", agent.owner or "-"),
        ("tier", _TIERS.get(agent.tier, "-")),
        (
            "limits",
            f"{agent.limits.memory_mb} MiB, {agent.limits.cpu_millicores}m CPU, "
            f"{agent.limits.execution_timeout.seconds} s",
        ),
        ("capabilities", ", ".join(agent.capabilities) or "-"),
        ("policies", ", ".join(agent.policy_ids) or "-"),
        ("restarts", f"{agent.restarts} of {agent.max_restarts}"),
        ("created", when(agent.created_at_ms)),
        ("updated", when(agent.updated_at_ms)),
    ]
    if agent.task_id:
        rows.append(("task", agent.task_id))
    if agent.restart_at_ms:
        rows.append(("recovery at", when(agent.restart_at_ms)))
    if agent.source_file:
        rows.append(("source", f"{agent.source_file} ({agent.source_format})"))
    if agent.version or agent.description:
        rows.append(("about", escape(f"{agent.version} {agent.description}".strip())))
    _out.print(fields(rows))
    if source and agent.source:
        _out.print()
        _out.print(agent.source, markup=False)


@app.command()
def create(
    file: Annotated[Path, typer.Argument(help="A .symbi DSL file, or a .toml / .yaml config.")],
    agent_id: Annotated[
        str, typer.Option("--id", help="The agent id (agent-…); generated when omitted.")
    ] = "",
    owner: Annotated[str, typer.Option("--owner", help="Who owns it (seen by policy).")] = "",
    name: Annotated[
        str, typer.Option("--name", help="Which agent, when the file defines several.")
    ] = "",
    as_json: JsonOption = False,
    address: AddressOption = None,
) -> None:
    """Creates an agent: validated, registered with policy, READY (or FAILED with why)."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"{file}: cannot read: {exc!s}", BAD_INPUT) from None
    kind = format_of(file.name)
    request = lifecycle_pb2.CreateAgentRequest(
        file_name=file.name, agent_id=agent_id, owner=owner, name=name, **{kind: text}
    )

    async def action(stub: Stub) -> lifecycle_pb2.Agent:
        agent: lifecycle_pb2.Agent = await stub.CreateAgent(request, timeout=_CALL_TIMEOUT_S)
        return agent

    agent = _call(address, action, f"create {file}")
    if as_json:
        _out.print(_as_json(agent), markup=False)
    else:
        _show(agent)
    if agent.state == lifecycle_pb2.AGENT_STATE_FAILED:
        raise typer.Exit(REFUSED)


@app.command("list")
def list_agents(
    state: Annotated[
        str | None,
        typer.Option("--state", help=f"Only agents in this state: {', '.join(_STATES)}."),
    ] = None,
    name_prefix: Annotated[str, typer.Option("--name", help="Names starting with this.")] = "",
    owner: Annotated[str, typer.Option("--owner", help="Only this owner's agents.")] = "",
    limit: Annotated[int, typer.Option("--limit", help="At most this many (0: all).")] = 100,
    as_json: JsonOption = False,
    address: AddressOption = None,
) -> None:
    """Lists agents in id order, paging through the service's listing."""
    state_value: lifecycle_pb2.AgentState = lifecycle_pb2.AGENT_STATE_UNSPECIFIED
    if state:
        key = f"AGENT_STATE_{state.strip().upper()}"
        if key not in _STATE_VALUES:
            raise fail(f"unknown state {state!r}; one of {', '.join(_STATES)}", BAD_INPUT)
        state_value = getattr(lifecycle_pb2, key)
    if limit < 0:
        raise fail("--limit must be 0 or more", BAD_INPUT)

    async def action(stub: Stub) -> tuple[list[lifecycle_pb2.Agent], int]:
        agents: list[lifecycle_pb2.Agent] = []
        token, total = "", 0
        while True:
            page_size = min(1000, limit - len(agents)) if limit else 1000
            response = await stub.ListAgents(
                lifecycle_pb2.ListAgentsRequest(
                    state=state_value,
                    name_prefix=name_prefix,
                    owner=owner,
                    page=common_pb2.PageRequest(page_size=page_size, page_token=token),
                ),
                timeout=_CALL_TIMEOUT_S,
            )
            agents.extend(response.agents)
            total = response.total
            token = response.page.next_page_token
            if not token or (limit and len(agents) >= limit):
                return agents, total

    agents, total = _call(address, action, "list agents")
    if as_json:
        _out.print(
            json.dumps(
                {
                    "total": total,
                    "agents": [message_dict(a) for a in agents],
                },
                indent=2,
                sort_keys=True,
            ),
            markup=False,
        )
        return
    table = Table("id", "name", "state", "tier", "restarts", "updated", "reason")
    for agent in agents:
        table.add_row(
            agent.id,
            agent.name,
            _styled(_state_name(agent.state)),
            _TIERS.get(agent.tier, "-"),
            str(agent.restarts),
            when(agent.updated_at_ms),
            escape(agent.reason),
        )
    _out.print(table)
    shown = f"{len(agents)} of {total}" if len(agents) < total else str(total)
    _out.print(f"{shown} agent{'s' if total != 1 else ''}")


@app.command()
def get(
    agent_id: Annotated[str, typer.Argument(help="The agent id.")],
    source: Annotated[bool, typer.Option("--source", help="Also print its source.")] = False,
    as_json: JsonOption = False,
    address: AddressOption = None,
) -> None:
    """Shows one agent."""

    async def action(stub: Stub) -> lifecycle_pb2.Agent:
        agent: lifecycle_pb2.Agent = await stub.GetAgent(
            lifecycle_pb2.GetAgentRequest(id=agent_id), timeout=_CALL_TIMEOUT_S
        )
        return agent

    agent = _call(address, action, f"get {agent_id}")
    if as_json:
        _out.print(_as_json(agent), markup=False)
    else:
        _show(agent, source=source)


@app.command()
def history(
    agent_id: Annotated[str, typer.Argument(help="The agent id.")],
    as_json: JsonOption = False,
    address: AddressOption = None,
) -> None:
    """Shows an agent's transitions, oldest first."""

    async def action(stub: Stub) -> lifecycle_pb2.GetHistoryResponse:
        response: lifecycle_pb2.GetHistoryResponse = await stub.GetHistory(
            lifecycle_pb2.GetHistoryRequest(id=agent_id), timeout=_CALL_TIMEOUT_S
        )
        return response

    response = _call(address, action, f"history of {agent_id}")
    if as_json:
        _out.print(_as_json(response), markup=False)
        return
    if response.truncated:
        _out.print("[dim](older transitions were dropped; the audit log has them all)[/]")
    for transition in response.transitions:
        _out.print(_transition_line(transition))


def _transition_line(transition: lifecycle_pb2.Transition, *, with_agent: bool = False) -> str:
    before = _state_name(transition.from_state) if transition.from_state else "-"
    after = _state_name(transition.to_state)
    who = f"{transition.agent_id} " if with_agent else ""
    return (
        f"{when(transition.timestamp_ms)} {who}#{transition.seq} {before} → {_styled(after)}"
        f"  {escape(transition.reason)} [dim]({escape(transition.actor)}, rev "
        f"{transition.revision})[/]"
    )


@app.command()
def watch(
    agent_id: Annotated[str, typer.Argument(help="The agent id; omit to watch every agent.")] = "",
    until: Annotated[
        str | None,
        typer.Option("--until", help="Stop once the agent reaches this state."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Stop after this many seconds (0: never).")
    ] = 0.0,
    address: AddressOption = None,
) -> None:
    """Prints transitions as they happen (an agent's stream ends when it is terminated)."""
    stop_at = until.strip().upper() if until else None
    if stop_at is not None and stop_at not in _STATES:
        raise fail(f"unknown state {until!r}; one of {', '.join(_STATES)}", BAD_INPUT)
    if stop_at is not None and not agent_id:
        raise fail("--until needs an agent id", BAD_INPUT)

    async def follow(stub: Stub) -> None:
        stream = stub.WatchAgent(
            lifecycle_pb2.WatchAgentRequest(id=agent_id, include_current=bool(agent_id))
        )
        async for transition in stream:
            _out.print(_transition_line(transition, with_agent=not agent_id))
            if stop_at is not None and _state_name(transition.to_state) == stop_at:
                stream.cancel()
                return

    _LIFECYCLE.follow(address, follow, f"watch {agent_id or 'agents'}", seconds=timeout)


def _transition(
    method: str, agent_id: str, reason: str, revision: int, address: str | None, as_json: bool
) -> None:
    request = lifecycle_pb2.TransitionRequest(
        id=agent_id, reason=reason, expected_revision=revision
    )

    async def action(stub: Stub) -> lifecycle_pb2.Agent:
        agent: lifecycle_pb2.Agent = await getattr(stub, method)(request, timeout=_CALL_TIMEOUT_S)
        return agent

    agent = _call(address, action, f"{method.lower()} {agent_id}")
    if as_json:
        _out.print(_as_json(agent), markup=False)
        return
    state = _state_name(agent.state)
    _out.print(f"{agent.id}: {_styled(state)} (revision {agent.revision}) {escape(agent.reason)}")


@app.command()
def suspend(
    agent_id: Annotated[str, typer.Argument(help="The agent id.")],
    reason: ReasonOption = "",
    revision: RevisionOption = 0,
    as_json: JsonOption = False,
    address: AddressOption = None,
) -> None:
    """Suspends an agent (from READY, RUNNING or WAITING)."""
    _transition("Suspend", agent_id, reason, revision, address, as_json)


@app.command()
def resume(
    agent_id: Annotated[str, typer.Argument(help="The agent id.")],
    reason: ReasonOption = "",
    revision: RevisionOption = 0,
    as_json: JsonOption = False,
    address: AddressOption = None,
) -> None:
    """Resumes a suspended agent, if policy allows it (modify_agent)."""
    _transition("Resume", agent_id, reason, revision, address, as_json)


@app.command()
def terminate(
    agent_id: Annotated[str, typer.Argument(help="The agent id.")],
    reason: ReasonOption = "",
    revision: RevisionOption = 0,
    as_json: JsonOption = False,
    address: AddressOption = None,
) -> None:
    """Terminates an agent: its policies and policy entity are removed."""
    _transition("Terminate", agent_id, reason, revision, address, as_json)
