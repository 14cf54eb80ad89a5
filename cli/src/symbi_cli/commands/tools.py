"""``symbi tools``: the MCP gateway's servers, verified tools, pins and approvals.

Every command talks to a running gateway (``--address``, ``SYMBI_MCP_GATEWAY_ADDRESS``, or the
local platform started by ``symbi up``).

Exit codes: 0 done; 1 the gateway refused or failed (the reason is printed), or ``verify``
found the tool not usable; 2 bad usage or the gateway cannot be found.
"""

from __future__ import annotations

import getpass
import json
import time
from typing import Annotated

import grpc
import typer
from rich.table import Table

from symbi.mcp_gateway.v1 import mcp_gateway_pb2 as pb
from symbi.mcp_gateway.v1 import mcp_gateway_pb2_grpc as pb_grpc
from symbi_cli.output import BAD_INPUT, REFUSED, echo_json, fail
from symbi_cli.output import folded_err as _err
from symbi_cli.output import folded_out as _out
from symbi_cli.rpc import ExitCodes, ServiceClient

app = typer.Typer(
    help="MCP tools: list verified tools, verify one, show pins, approve a quarantined tool, "
    "decide calls waiting for approval.",
    no_args_is_help=True,
)

_FAILED = REFUSED
_TIMEOUT_S = 60.0


AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="host:port of the gateway's gRPC API (default: SYMBI_MCP_GATEWAY_ADDRESS or "
        "the local platform).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

_STATUS_STYLE = {
    pb.TOOL_STATUS_VERIFIED: "[green]verified[/green]",
    pb.TOOL_STATUS_ALLOWED_UNVERIFIED: "[yellow]allowed (unverified)[/yellow]",
    pb.TOOL_STATUS_UNSIGNED: "[red]unsigned[/red]",
    pb.TOOL_STATUS_INVALID: "[red]invalid[/red]",
    pb.TOOL_STATUS_QUARANTINED: "[bold red]quarantined[/bold red]",
}


def _status_name(status: int) -> str:
    return pb.ToolStatus.Name(status).removeprefix("TOOL_STATUS_").lower()


def _gateway_stub(channel: grpc.aio.Channel) -> pb_grpc.McpGatewayServiceAsyncStub:
    return pb_grpc.McpGatewayServiceStub(channel)


_GATEWAY = ServiceClient(
    service="mcp-gateway",
    stub=_gateway_stub,
    codes=ExitCodes(missing=BAD_INPUT),
    show_reason=True,
    err=_err,
)
_call = _GATEWAY.call


def _short(text: str, keep: int = 19) -> str:
    return text if len(text) <= keep else text[:keep] + "…"


def _tool_table(tools: list[pb.Tool]) -> Table:
    table = Table("tool", "status", "definition", "key", "detail")
    for tool in tools:
        table.add_row(
            f"{tool.server}/{tool.name}",
            _STATUS_STYLE.get(tool.status, _status_name(tool.status)),
            _short(tool.definition_hash),
            _short(tool.key_fingerprint) or "-",
            tool.detail + (f" (approved by {tool.approved_by})" if tool.approved_by else ""),
        )
    return table


@app.command("servers")
def servers_command(address: AddressOption = None, as_json: JsonOption = False) -> None:
    """The MCP servers the gateway serves, with their session state."""
    response = _call(
        address, lambda stub: stub.ListServers(pb.ListServersRequest(), timeout=_TIMEOUT_S)
    )
    if as_json:
        echo_json(response)
        return
    table = Table("server", "transport", "trust", "state", "tools", "in flight", "last error")
    for server in response.servers:
        table.add_row(
            server.name + (" [dim](configured)[/dim]" if server.configured else ""),
            server.transport,
            server.trust_mode,
            server.state,
            str(server.tool_count),
            str(server.in_flight),
            server.last_error or "-",
        )
    _out.print(table)


@app.command("list")
def list_command(
    server: Annotated[str | None, typer.Option("--server", help="Only this server.")] = None,
    agent: Annotated[
        str | None,
        typer.Option("--agent", help="What this agent sees: usable tools its policy allows."),
    ] = None,
    include_hidden: Annotated[
        bool,
        typer.Option("--all", help="Include hidden tools (unsigned, invalid, quarantined)."),
    ] = False,
    address: AddressOption = None,
    as_json: JsonOption = False,
) -> None:
    """Tools with their verification status (usable ones only, unless --all)."""
    request = pb.ListToolsRequest(
        server=server or "", agent_id=agent or "", include_hidden=include_hidden
    )
    response = _call(address, lambda stub: stub.ListTools(request, timeout=_TIMEOUT_S))
    if as_json:
        echo_json(response)
        return
    if not response.tools:
        _out.print("no tools" + ("" if include_hidden else " (try --all for hidden ones)"))
        return
    _out.print(_tool_table(list(response.tools)))


@app.command("verify")
def verify_command(
    server: Annotated[str, typer.Argument(help="The server.")],
    tool: Annotated[str, typer.Argument(help="The tool's name on that server.")],
    address: AddressOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-verify a tool now (fresh listing and SchemaPin discovery); exit 1 if not usable."""
    request = pb.VerifyToolRequest(server=server, tool=tool)
    view = _call(address, lambda stub: stub.VerifyTool(request, timeout=_TIMEOUT_S))
    if as_json:
        echo_json(view)
    else:
        _out.print(_tool_table([view]))
    if not view.usable:
        raise typer.Exit(_FAILED)


@app.command("pins")
def pins_command(
    server: Annotated[str | None, typer.Option("--server", help="Only this server.")] = None,
    address: AddressOption = None,
    as_json: JsonOption = False,
) -> None:
    """Trust-on-first-use pins: the definition and key accepted for each tool."""
    request = pb.ListPinsRequest(server=server or "")
    response = _call(address, lambda stub: stub.ListPins(request, timeout=_TIMEOUT_S))
    if as_json:
        echo_json(response)
        return
    table = Table("tool", "definition", "key", "domain", "approved by")
    for pin in response.pins:
        table.add_row(
            pin.tool_id,
            _short(pin.definition_hash),
            _short(pin.key_fingerprint) or "(unsigned)",
            pin.domain or "-",
            pin.approved_by or "-",
        )
    _out.print(table)


@app.command("approve")
def approve_command(
    server: Annotated[str, typer.Argument(help="The server.")],
    tool: Annotated[str, typer.Argument(help="The quarantined tool.")],
    definition_hash: Annotated[
        str | None,
        typer.Option(
            "--hash",
            help="The definition hash you reviewed (sha256:…); refused if the tool changed "
            "since. Without it, the current definition is shown and must be confirmed.",
        ),
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who approves (default: your user name).")
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Approve the shown definition without asking.")
    ] = False,
    address: AddressOption = None,
) -> None:
    """Approve a quarantined tool's current definition (and new key): calls work again."""
    if definition_hash is None:
        listing = _call(
            address,
            lambda stub: stub.ListTools(
                pb.ListToolsRequest(server=server, include_hidden=True), timeout=_TIMEOUT_S
            ),
        )
        found = [candidate for candidate in listing.tools if candidate.name == tool]
        if not found:
            raise fail(f"server {server} lists no tool {tool!r}", _FAILED, console=_err)
        current = found[0]
        _out.print(_tool_table([current]))
        _out.print(json.dumps(json.loads(current.document_json), indent=2, ensure_ascii=False))
        if not yes and not typer.confirm(f"approve {current.definition_hash}?"):
            raise typer.Exit(_FAILED)
        definition_hash = current.definition_hash
    request = pb.ApproveToolRequest(
        server=server,
        tool=tool,
        definition_hash=definition_hash,
        actor=actor or getpass.getuser(),
    )
    view = _call(address, lambda stub: stub.ApproveTool(request, timeout=_TIMEOUT_S))
    _out.print(
        f"approved {view.server}/{view.name} {view.definition_hash}: now {_status_name(view.status)}"
    )


@app.command("unpin")
def unpin_command(
    tool_id: Annotated[str, typer.Argument(help="<server>/<tool>")],
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who removes it (default: your user name).")
    ] = None,
    address: AddressOption = None,
) -> None:
    """Forget a tool's pin: it is trusted on first use again at the next discovery."""
    request = pb.UnpinRequest(tool_id=tool_id, actor=actor or getpass.getuser())
    response = _call(address, lambda stub: stub.Unpin(request, timeout=_TIMEOUT_S))
    _out.print(f"unpinned {tool_id}" if response.existed else f"{tool_id} had no pin")


@app.command("call")
def call_command(
    server: Annotated[str, typer.Argument(help="The server.")],
    tool: Annotated[str, typer.Argument(help="The tool.")],
    agent: Annotated[str, typer.Option("--agent", help="The agent the call is made for.")],
    arguments: Annotated[
        str, typer.Option("--args", help="The arguments as a JSON object.")
    ] = "{}",
    address: AddressOption = None,
    as_json: JsonOption = False,
) -> None:
    """Call a tool for an agent through every check (policy, schema, limits, audit)."""
    try:
        parsed = json.loads(arguments)
    except ValueError as exc:
        raise fail(f"--args is not JSON: {exc}", BAD_INPUT, console=_err) from None
    if not isinstance(parsed, dict):
        raise fail("--args must be a JSON object", BAD_INPUT, console=_err)
    request = pb.InvokeToolRequest(
        agent_id=agent, server=server, tool=tool, arguments_json=json.dumps(parsed)
    )
    response = _call(address, lambda stub: stub.InvokeTool(request, timeout=_TIMEOUT_S))
    if as_json:
        echo_json(response)
    else:
        for text in response.text:
            _out.print(text)
        _out.print(
            f"[dim]result {response.result_hash} in {response.duration_ms_exact:.1f} ms[/dim]"
        )
    if response.is_error:
        raise typer.Exit(_FAILED)


@app.command("token")
def token_command(
    agent: Annotated[str, typer.Argument(help="The agent the token is for.")],
    ttl: Annotated[
        int, typer.Option("--ttl", help="Lifetime in seconds (0: the gateway's default).")
    ] = 0,
    address: AddressOption = None,
) -> None:
    """A bearer token for the gateway's MCP endpoint; prints the token, then the endpoint URL."""
    request = pb.IssueAgentTokenRequest(agent_id=agent, ttl_s=ttl)
    response = _call(address, lambda stub: stub.IssueAgentToken(request, timeout=_TIMEOUT_S))
    typer.echo(response.token)
    if response.endpoint_url:
        _err.print(f"endpoint: {response.endpoint_url}")


def _age(ms: int) -> str:
    seconds = int(ms / 1000 - time.time())
    sign = "" if seconds >= 0 else "-"
    seconds = abs(seconds)
    if seconds >= 3600:
        return f"{sign}{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{sign}{seconds // 60}m{seconds % 60:02d}s"


@app.command("approvals")
def approvals_command(
    server: Annotated[str | None, typer.Option("--server", help="Only this server.")] = None,
    include_closed: Annotated[
        bool, typer.Option("--all", help="Also denied, used and expired approvals.")
    ] = False,
    address: AddressOption = None,
    as_json: JsonOption = False,
) -> None:
    """Calls that policy allows only with a human approval (require_approval)."""
    request = pb.ListApprovalsRequest(server=server or "", include_closed=include_closed)
    response = _call(address, lambda stub: stub.ListApprovals(request, timeout=_TIMEOUT_S))
    if as_json:
        echo_json(response)
        return
    table = Table("id", "agent", "tool", "arguments", "state", "expires in", "decided by")
    for approval in response.approvals:
        table.add_row(
            approval.approval_id,
            approval.agent_id,
            f"{approval.server}/{approval.tool}",
            _short(approval.arguments_sha256),
            approval.state + (" (expired)" if approval.expired else ""),
            _age(approval.expires_at_ms),
            approval.decided_by or "-",
        )
    _out.print(table)


def _decide(approval_id: str, approve: bool, actor: str | None, address: str | None) -> None:
    listing = _call(
        address,
        lambda stub: stub.ListApprovals(
            pb.ListApprovalsRequest(include_closed=True), timeout=_TIMEOUT_S
        ),
    )
    found = [a for a in listing.approvals if a.approval_id == approval_id]
    if not found:
        raise fail(f"no approval {approval_id}", _FAILED, console=_err)
    request = pb.DecideApprovalRequest(
        approval_id=approval_id,
        approve=approve,
        server=found[0].server,
        tool=found[0].tool,
        actor=actor or getpass.getuser(),
    )
    decided = _call(address, lambda stub: stub.DecideApproval(request, timeout=_TIMEOUT_S))
    _out.print(
        f"{decided.state} {decided.approval_id}: {decided.agent_id} calling "
        f"{decided.server}/{decided.tool} with arguments {decided.arguments_sha256}"
        + (" may run once" if approve else " stays refused")
    )


ActorOption = Annotated[
    str | None,
    typer.Option("--actor", help="A label recorded beside your principal (default: user name)."),
]


@app.command("approve-call")
def approve_call_command(
    approval_id: Annotated[str, typer.Argument(help="The approval id (apr-…).")],
    actor: ActorOption = None,
    address: AddressOption = None,
) -> None:
    """Approve a pending call: the same agent, tool and arguments may run once."""
    _decide(approval_id, True, actor, address)


@app.command("deny-call")
def deny_call_command(
    approval_id: Annotated[str, typer.Argument(help="The approval id (apr-…).")],
    actor: ActorOption = None,
    address: AddressOption = None,
) -> None:
    """Deny a pending call: it stays refused until the approval expires."""
    _decide(approval_id, False, actor, address)
