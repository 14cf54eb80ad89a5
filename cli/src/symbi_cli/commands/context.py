"""``symbi context``: agent memory, the knowledge base and answers, from the running service.

The service is found with ``--address``, ``SYMBI_CONTEXT_ADDRESS`` or the local platform of
``symbi up``. Calls go over gRPC as an operator: ``--agent`` names whose context is used.

Exit codes: 0 done, 1 the service refused (the reason is printed), 2 bad usage or input, or
the service cannot be found.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import grpc
import typer
from google.protobuf import json_format
from rich.markup import escape
from rich.table import Table

from symbi.context.v1 import context_pb2 as pb
from symbi.context.v1 import context_pb2_grpc as pb_grpc
from symbi_cli.output import BAD_INPUT, fail
from symbi_cli.output import folded_err as _err
from symbi_cli.output import folded_out as _out
from symbi_cli.rpc import ExitCodes, ServiceClient

if TYPE_CHECKING:  # the async stub exists in the typing stubs only
    from symbi.context.v1.context_pb2_grpc import ContextServiceAsyncStub as Stub

app = typer.Typer(
    help="Agent memory, knowledge base and cited answers (the context service).",
    no_args_is_help=True,
)

_PIECE = 256 * 1024


AgentOption = Annotated[str, typer.Option("--agent", "-a", help="Whose context (agent id).")]
AddressOption = Annotated[
    str | None, typer.Option("--address", help="host:port of the context service.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")]

_TYPES = {
    "short_term": pb.MEMORY_TYPE_SHORT_TERM,
    "long_term": pb.MEMORY_TYPE_LONG_TERM,
    "working": pb.MEMORY_TYPE_WORKING,
    "shared": pb.MEMORY_TYPE_SHARED,
}
_LEVELS = {
    "public": pb.ACCESS_LEVEL_PUBLIC,
    "restricted": pb.ACCESS_LEVEL_RESTRICTED,
    "confidential": pb.ACCESS_LEVEL_CONFIDENTIAL,
    "secret": pb.ACCESS_LEVEL_SECRET,
}
_CONTENT_TYPES = {".md": "text/markdown", ".markdown": "text/markdown", ".json": "application/json"}


def _bad_input(message: str) -> typer.Exit:
    return fail(message, BAD_INPUT, console=_err)


def _choice(value: str | None, table: dict[str, Any], what: str) -> Any:
    if value is None:
        return 0
    try:
        return table[value]
    except KeyError:
        raise _bad_input(f"{what} {value!r}: one of {', '.join(table)}") from None


def _context_stub(channel: grpc.aio.Channel) -> Stub:
    return pb_grpc.ContextServiceStub(channel)


_CONTEXT = ServiceClient(
    service="context",
    stub=_context_stub,
    codes=ExitCodes(missing=BAD_INPUT),
    show_reason=True,
    err=_err,
)
_call = _CONTEXT.call


def _print_json(message: Any) -> None:
    _out.print_json(json_format.MessageToJson(message, preserving_proto_field_name=True))


@app.command()
def store(
    agent: AgentOption,
    content: Annotated[str, typer.Argument(help="The memory's text.")],
    memory_type: Annotated[
        str | None, typer.Option("--type", help="short_term | long_term | working | shared")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    access: Annotated[
        str | None, typer.Option(help="Share at: public | restricted | confidential | secret")
    ] = None,
    task: Annotated[str | None, typer.Option(help="Task id (working memory).")] = None,
    ttl: Annotated[float, typer.Option(help="Lifetime in seconds (short-term).")] = 0.0,
    address: AddressOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store one memory; prints its id."""
    item = pb.MemoryItem(
        content=content,
        type=_choice(memory_type, _TYPES, "--type"),
        tags=tag or [],
        access=_choice(access, _LEVELS, "--access"),
        task_id=task or "",
        ttl_s=ttl,
    )
    reply = _call(
        address,
        lambda stub: stub.StoreContext(pb.StoreContextRequest(agent_id=agent, item=item)),
    )
    if as_json:
        _print_json(reply)
    else:
        _out.print(reply.id)


@app.command()
def recall(
    agent: AgentOption,
    query: Annotated[str, typer.Argument(help="What to look for.")],
    limit: Annotated[int, typer.Option(help="At most this many memories (1..100).")] = 10,
    shared: Annotated[
        bool, typer.Option("--shared", help="Include other agents' shared memory (by policy).")
    ] = False,
    filter_json: Annotated[
        str | None, typer.Option("--filter", help="A JSON filter (see docs/context.md).")
    ] = None,
    address: AddressOption = None,
    as_json: JsonOption = False,
) -> None:
    """Retrieve memories relevant to QUERY, best first, with their scores."""
    request = pb.RetrieveContextRequest(
        agent_id=agent, query=query, limit=limit, include_shared=shared, filter=filter_json or ""
    )
    reply = _call(address, lambda stub: stub.RetrieveContext(request))
    if as_json:
        _print_json(reply)
        return
    table = Table("score", "type", "owner", "id", "content")
    for m in reply.items:
        kind = pb.MemoryType.Name(m.item.type).removeprefix("MEMORY_TYPE_").lower()
        table.add_row(f"{m.score:.3f}", kind, m.item.agent_id, m.item.id, escape(m.item.content))
    _out.print(table)


@app.command()
def ask(
    agent: AgentOption,
    question: Annotated[str, typer.Argument(help="The question.")],
    passages: Annotated[int, typer.Option(help="Passages to answer from (0: default).")] = 0,
    scope: Annotated[str, typer.Option(help="all | memory | knowledge")] = "all",
    address: AddressOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer QUESTION from the agent's memory and knowledge, with cited sources."""
    request = pb.AskRequest(agent_id=agent, question=question, limit=passages, scope=scope)
    reply = _call(address, lambda stub: stub.Ask(request))
    if as_json:
        _print_json(reply)
        return
    _out.print(escape(reply.answer))
    _out.print(f"[dim]({reply.mode}, {reply.timings_ms.get('total', 0.0):.1f} ms)[/]")
    for s in reply.sources:
        where = f"{s.document_id} {s.title}".strip() if s.kind == "knowledge" else s.chunk_id
        _out.print(f"[bold][{s.number}][/] {s.kind} {escape(where)} score {s.score:.3f}")


@app.command()
def search(
    agent: AgentOption,
    query: Annotated[str, typer.Argument(help="What to look for.")],
    limit: Annotated[int, typer.Option(help="At most this many passages (1..100).")] = 10,
    address: AddressOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search the knowledge base the agent may read."""
    request = pb.SearchKnowledgeRequest(agent_id=agent, query=query, limit=limit)
    reply = _call(address, lambda stub: stub.SearchKnowledge(request))
    if as_json:
        _print_json(reply)
        return
    table = Table("score", "document", "section", "text")
    for p in reply.passages:
        table.add_row(f"{p.score:.3f}", p.document_id, escape(p.section), escape(p.text[:200]))
    _out.print(table)


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Text, Markdown or JSON files.")],
    agent: Annotated[
        str, typer.Option("--agent", "-a", help="Owner (empty: the platform's knowledge base).")
    ] = "",
    access: Annotated[
        str | None, typer.Option(help="public (default) | restricted | confidential | secret")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    address: AddressOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest FILES into the knowledge base, one document per file (id: the file name)."""
    level = _choice(access, _LEVELS, "--access")
    for path in files:
        if not path.is_file():
            raise _bad_input(f"{path}: no such file")

    async def messages() -> AsyncIterator[pb.IngestRequest]:
        for path in files:
            data = path.read_bytes()
            pieces = [data[i : i + _PIECE] for i in range(0, len(data), _PIECE)] or [b""]
            for i, piece in enumerate(pieces):
                if i == 0:
                    yield pb.IngestRequest(
                        agent_id=agent,
                        document_id=path.name,
                        source=str(path),
                        title=path.stem,
                        content_type=_CONTENT_TYPES.get(path.suffix.lower(), "text/plain"),
                        access=level,
                        tags=tag or [],
                        chunk=piece,
                        end_of_document=len(pieces) == 1,
                    )
                else:
                    yield pb.IngestRequest(chunk=piece, end_of_document=i == len(pieces) - 1)

    reply = _call(address, lambda stub: stub.Ingest(messages()))
    if as_json:
        _print_json(reply)
        return
    table = Table("document", "chunks", "embedded", "reused", "removed", "duplicate")
    for d in reply.documents:
        table.add_row(
            d.document_id,
            str(d.chunks),
            str(d.embedded),
            str(d.reused),
            str(d.removed),
            "yes" if d.deduplicated else "",
        )
    _out.print(table)


@app.command()
def forget(
    agent: AgentOption,
    ids: Annotated[list[str] | None, typer.Argument(help="Memory or document ids.")] = None,
    task: Annotated[str | None, typer.Option(help="Also clear this task's working memory.")] = None,
    address: AddressOption = None,
) -> None:
    """Delete the agent's memories or documents (and a task's working memory)."""
    request = pb.ForgetRequest(agent_id=agent, ids=ids or [], task_id=task or "")
    reply = _call(address, lambda stub: stub.Forget(request))
    _out.print(
        json.dumps(
            {"memories": reply.memories, "documents": reply.documents, "working": reply.working}
        )
    )
