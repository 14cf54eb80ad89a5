"""``symbi policy``: Cedar policies offline (validate, eval) and in the service (push, list).

Exit codes: 0 ok; 1 policies invalid, or the service refused a write; 2 bad usage or input;
3 the service cannot be reached.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import grpc
import typer
from rich.markup import escape
from rich.table import Table

from symbi.policy.v1 import policy_pb2, policy_pb2_grpc
from symbi_cli.output import BAD_INPUT, REFUSED, UNREACHABLE, fail, when
from symbi_cli.output import err as _err
from symbi_cli.output import out as _out
from symbi_cli.rpc import ExitCodes, ServiceClient
from symbi_common.errors import InvalidArgument
from symbi_policy import (
    AuthzRequest,
    PolicyEngine,
    PolicyProblem,
    PolicyValidationError,
    QueueAuditSink,
    decision_to_dict,
)
from symbi_policy.entities import normalize_entities
from symbi_policy.offline import load_policy_directory, offline_engine, validate_files

if TYPE_CHECKING:  # the async stub exists in the typing stubs only
    from symbi.policy.v1.policy_pb2_grpc import PolicyServiceAsyncStub as Stub

app = typer.Typer(
    help="Cedar policies: validate and evaluate offline; push to and list the policy service.",
    no_args_is_help=True,
)

_INVALID = REFUSED
#: Deadline of each call to the service.
_CALL_TIMEOUT_S = 10.0


AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="The policy service, host:port (default: SYMBI_POLICY_ADDRESS or `symbi up`'s).",
    ),
]


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Cedar policy files to check.")],
) -> None:
    """Check policy files against Symbi's schema; print every problem as FILE:LINE:COL."""
    ok, problems = validate_files(files)
    for path, document in ok:
        typer.echo(f"ok: {path} ({len(document.policies)} policies)")
    for problem in problems:
        typer.echo(str(problem), err=True)
    if problems:
        raise typer.Exit(_INVALID)


@app.command("eval")
def evaluate(
    policies: Annotated[
        Path, typer.Option("--policies", help="Directory of *.cedar files (searched recursively).")
    ],
    request: Annotated[
        str,
        typer.Option(
            "--request",
            help='The request as JSON, or @FILE: {"principal": "Agent::\\"a\\"", '
            '"action": "publish", "resource": "Topic::\\"t\\"", "context": {}}',
        ),
    ],
    entities: Annotated[
        Path | None, typer.Option("--entities", help="Cedar entities JSON file.")
    ] = None,
) -> None:
    """Decide one request against a policy directory; print the decision as JSON."""
    try:
        raw = Path(request[1:]).read_text(encoding="utf-8") if request.startswith("@") else request
        parsed = AuthzRequest.from_mapping(json.loads(raw))
        engine = offline_engine(policies, entities)
    except PolicyValidationError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(_INVALID) from None
    except (InvalidArgument, ValueError, OSError) as exc:
        message = exc.message if isinstance(exc, InvalidArgument) else str(exc)
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(BAD_INPUT) from None
    decision = engine.evaluate(parsed)
    json.dump(decision_to_dict(decision), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


@app.command()
def push(
    directory: Annotated[
        Path, typer.Argument(help="Directory of *.cedar files (searched recursively).")
    ],
    entities: Annotated[
        Path | None,
        typer.Option("--entities", help="Cedar entities JSON file to upsert (by uid) first."),
    ] = None,
    address: AddressOption = None,
) -> None:
    """Store every *.cedar file of DIR as a policy document (named by its relative path
    without .cedar); every replica has it in force within a second.

    Everything is checked locally first (syntax, schema, annotations, unique ids); nothing
    is sent when a file is invalid. Documents are written one by one.
    """
    try:
        snapshot = load_policy_directory(directory, entities)
        files = sorted(p for p in directory.rglob("*.cedar") if p.is_file())
        _, problems = validate_files(files)
        if problems:
            raise PolicyValidationError(problems)
        # Across documents (unique ids) and the entities file: build the set, as a replica
        # would, without putting it in force anywhere.
        PolicyEngine(audit=QueueAuditSink()).prepare(snapshot)
    except PolicyValidationError as exc:
        for problem in exc.problems:
            _err.print(_with_file(directory, problem), markup=False)
        raise typer.Exit(_INVALID) from None
    except InvalidArgument as exc:
        raise fail(exc.message, BAD_INPUT) from None
    entity_messages = _entity_messages(snapshot.entities.text) if snapshot.entities else []

    async def run(stub: Any) -> int:
        if entity_messages:
            done = await stub.PutEntities(
                policy_pb2.PutEntitiesRequest(entities=entity_messages), timeout=_CALL_TIMEOUT_S
            )
            _out.print(f"entities: {len(entity_messages)} upserted (v{done.entities_version})")
        version = 0
        for document in snapshot.policies:
            put = await stub.PutPolicy(
                policy_pb2.PutPolicyRequest(id=document.name, source=document.text),
                timeout=_CALL_TIMEOUT_S,
            )
            version = max(version, put.policy.version)
            _out.print(f"pushed {document.name} (v{put.policy.version})")
        return version

    version = _call(address, run, "push")
    _out.print(f"{len(snapshot.policies)} documents pushed; policy set version {version}")


@app.command("list")
def list_policies(
    address: AddressOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List the policy documents the service holds."""

    async def run(stub: Any) -> tuple[list[policy_pb2.Policy], int]:
        found: list[policy_pb2.Policy] = []
        token = ""
        version = 0
        while True:
            page = await stub.ListPolicies(
                policy_pb2.ListPoliciesRequest(page={"page_size": 500, "page_token": token}),
                timeout=_CALL_TIMEOUT_S,
            )
            found.extend(page.policies)
            version = page.version
            token = page.page.next_page_token
            if not token:
                return found, version

    documents, version = _call(address, run, "list")
    if as_json:
        for document in documents:
            typer.echo(
                json.dumps(
                    {
                        "id": document.id,
                        "version": document.version,
                        "origin": document.origin,
                        "updated_by": document.updated_by,
                        "updated_at_ms": document.updated_at_ms,
                        "source": document.source,
                    },
                    ensure_ascii=False,
                )
            )
        return
    table = Table("id", "version", "origin", "updated by", "updated (UTC)", "lines")
    for document in documents:
        table.add_row(
            escape(document.id),
            str(document.version),
            escape(document.origin),
            escape(document.updated_by),
            when(document.updated_at_ms),
            str(document.source.count("\n") + 1),
        )
    _out.print(table)
    _out.print(f"{len(documents)} documents; policy set version {version}")


def _entity_messages(text: str) -> list[policy_pb2.Entity]:
    try:
        entities = normalize_entities(json.loads(text) if text.strip() else [])
    except ValueError as exc:
        raise fail(f"--entities: {exc!s}", BAD_INPUT) from None
    messages = []
    for raw in entities:
        message = policy_pb2.Entity(uid=policy_pb2.EntityRef(**raw["uid"]))
        message.attrs.update(raw["attrs"])
        message.parents.extend(policy_pb2.EntityRef(**p) for p in raw["parents"])
        messages.append(message)
    return messages


def _with_file(directory: Path, problem: PolicyProblem) -> str:
    """A problem naming the file its document came from, when there is one."""
    candidate = directory / f"{problem.document}.cedar"
    if candidate.is_file():
        return str(dataclasses.replace(problem, document=str(candidate)))
    return str(problem)


def _policy_stub(channel: grpc.aio.Channel) -> Stub:
    return policy_pb2_grpc.PolicyServiceStub(channel)


_POLICY = ServiceClient(
    service="policy",
    stub=_policy_stub,
    codes=ExitCodes(statuses={grpc.StatusCode.UNAVAILABLE: UNREACHABLE}, refused=_INVALID),
)
_call = _POLICY.call
