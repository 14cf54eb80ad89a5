"""``symbi audit``: the audit log — offline checks, and the running service.

Offline (nothing but files and a trusted key): ``verify`` an export, check a ``proof``,
``keygen`` a log key. Against the service (``--address``, ``SYMBI_AUDIT_ADDRESS`` or the local
platform of ``symbi up``): ``tail`` (follow new events), ``query``, ``export``, ``report``,
``checkpoint``, ``status``, ``check`` (the service re-hashes its store), and
``inclusion-proof`` / ``consistency-proof`` (fetch proofs in the form ``proof`` checks).

Exit codes: 0 done/verified, 1 verification failed (tampering, a bad proof) or the service
refused, 2 bad usage or input, or the service cannot be found.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
from rich.markup import escape
from rich.table import Table

from symbi.audit.v1 import audit_pb2, audit_pb2_grpc
from symbi_audit.checkpoint import SignedCheckpoint
from symbi_audit.errors import NoteError, ProofError
from symbi_audit.event import AuditEvent
from symbi_audit.merkle import leaf_hash
from symbi_audit.note import NoteSigner, NoteVerifier
from symbi_audit.proof import ConsistencyProof, InclusionProof, parse_hash
from symbi_audit.query import encode_cursor
from symbi_audit.verify import verify_export_file
from symbi_cli.output import BAD_INPUT, REFUSED, echo_json, fail
from symbi_cli.output import folded_err as _err
from symbi_cli.output import folded_out as _out
from symbi_cli.rpc import ExitCodes, ServiceClient
from symbi_common.errors import InvalidArgument
from symbi_common.grpc import open_channel
from symbi_common.grpc.client import ChannelOptions

app = typer.Typer(
    help="Audit log: follow, query, export and report from the service; verify exports and "
    "Merkle proofs offline; generate log keys.",
    no_args_is_help=True,
)
proof_app = typer.Typer(
    help="Check inclusion and consistency proofs given as files or options.",
    no_args_is_help=True,
)
app.add_typer(proof_app, name="proof")

_FAILED = REFUSED

PublicKeyOption = Annotated[
    str,
    typer.Option(
        "--public-key",
        help="The trusted log key (<name>+<id>+<base64>), or a file that holds it.",
    ),
]


def _bad_input(message: str) -> typer.Exit:
    return fail(message, BAD_INPUT, console=_err)


def _text_or_file(value: str) -> str:
    """The value itself, or the contents of the file it names (``@FILE`` or an existing path)."""
    if value.startswith("@"):
        path = Path(value[1:])
    elif value.lstrip().startswith(("{", "[")) or "\n" in value:
        return value  # inline JSON or a pasted note
    else:
        path = Path(value)
        try:
            if not path.is_file():
                return value
        except OSError:  # e.g. a name too long to be a path: it is the value itself
            return value
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _bad_input(f"cannot read {path}: {exc}") from exc


def _verifier(key: str) -> NoteVerifier:
    try:
        return NoteVerifier.parse(_text_or_file(key).strip())
    except NoteError as exc:
        raise _bad_input(f"--public-key: {exc.message}") from exc


def _publisher_keys(path: Path | None) -> dict[str, bytes] | None:
    if path is None:
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("expected a JSON object of key id -> base64 public key")
        return {str(k): base64.b64decode(v, validate=True) for k, v in raw.items()}
    except (OSError, ValueError, TypeError, binascii.Error) as exc:
        raise _bad_input(f"--publisher-keys {path}: {exc}") from exc


@app.command()
def verify(
    export: Annotated[Path, typer.Argument(help="The export file (JSON Lines).")],
    public_key: PublicKeyOption,
    publisher_keys: Annotated[
        Path | None,
        typer.Option(
            "--publisher-keys",
            help="JSON file {key id: base64 Ed25519 public key}: also check every event's "
            "publisher signature.",
        ),
    ] = None,
) -> None:
    """Recompute the chain, the Merkle tree and every checkpoint signature of an export."""
    verifier = _verifier(public_key)
    keys = _publisher_keys(publisher_keys)
    try:
        result = verify_export_file(export, [verifier], publisher_keys=keys)
    except OSError as exc:
        raise _bad_input(f"cannot read {export}: {exc}") from exc
    table = Table(show_header=False, box=None)
    table.add_row("export", str(export))
    table.add_row("log", result.origin or "?")
    table.add_row("entries", f"{result.start}..{result.end - 1}" if result.end else "none")
    table.add_row(
        "checked", f"{result.entries_checked} entries, {result.checkpoints_checked} checkpoints"
    )
    if keys is not None:
        table.add_row("publisher signatures", str(result.publisher_signatures_checked))
    if result.ok:
        table.add_row("root", base64.b64encode(result.root_hash).decode())
        _out.print(table)
        if result.start:
            _out.print(
                f"[yellow]note[/]: a segment — entries before {result.start} are not in this "
                "export (archived); its frontier hashes were checked against the checkpoints"
            )
        _out.print("[bold green]verified[/]: chain, tree and checkpoint signatures match")
        return
    _out.print(table)
    problem = result.problem
    assert problem is not None  # not ok means a problem was recorded
    _err.print(f"[bold red]FAILED[/] ({problem.kind.value}): {problem}")
    raise typer.Exit(_FAILED)


def _load_json(value: str, what: str) -> Any:
    try:
        return json.loads(_text_or_file(value))
    except ValueError as exc:
        raise _bad_input(f"{what} is not JSON: {exc}") from exc


def _checkpoint(value: str, key: str | None, what: str) -> SignedCheckpoint:
    if key is None:
        raise _bad_input(f"{what} needs --public-key to check its signature")
    try:
        return SignedCheckpoint.open(_text_or_file(value), [_verifier(key)])
    except NoteError as exc:
        _err.print(f"[bold red]FAILED[/]: {what}: {exc.message}")
        raise typer.Exit(_FAILED) from exc


def _hash(value: str, what: str) -> bytes:
    try:
        return parse_hash(value, what)
    except InvalidArgument as exc:
        raise _bad_input(exc.message) from exc


def _event_leaf(value: str) -> bytes:
    obj = _load_json(value, "--event")
    if isinstance(obj, dict) and obj.get("type") == "entry":
        obj = obj.get("event")  # a whole export line
    try:
        return leaf_hash(AuditEvent.from_json_object(obj).canonical_bytes)
    except InvalidArgument as exc:
        raise _bad_input(f"--event: {exc.message}") from exc


def _hashes(values: list[str] | None) -> tuple[bytes, ...]:
    return tuple(_hash(h, f"--hash #{i + 1}") for i, h in enumerate(values or []))


@proof_app.command("inclusion")
def proof_inclusion(
    proof: Annotated[
        str | None,
        typer.Option(help="Proof JSON (inline, a file, or @FILE) as the service returns it."),
    ] = None,
    index: Annotated[int | None, typer.Option(help="Leaf index (without --proof).")] = None,
    tree_size: Annotated[int | None, typer.Option(help="Tree size (without --proof).")] = None,
    hash_: Annotated[
        list[str] | None, typer.Option("--hash", help="Proof hash in hex; repeat in order.")
    ] = None,
    leaf_hash_hex: Annotated[
        str | None, typer.Option("--leaf-hash", help="The leaf hash in hex.")
    ] = None,
    event: Annotated[
        str | None,
        typer.Option(help="The event JSON (or an export line): its leaf hash is computed."),
    ] = None,
    root: Annotated[str | None, typer.Option(help="The expected root hash in hex.")] = None,
    checkpoint: Annotated[
        str | None, typer.Option(help="A signed checkpoint (file) giving size and root.")
    ] = None,
    public_key: Annotated[
        str | None, typer.Option("--public-key", help="Trusted log key for --checkpoint.")
    ] = None,
) -> None:
    """Check that a leaf is included in the tree with the given root."""
    try:
        if proof is not None:
            parsed = InclusionProof.from_json(_load_json(proof, "--proof"))
        else:
            if index is None or tree_size is None:
                raise _bad_input("give --proof, or --index and --tree-size with --hash")
            leaf = _hash(leaf_hash_hex, "--leaf-hash") if leaf_hash_hex else bytes(32)
            parsed = InclusionProof(index, tree_size, leaf, _hashes(hash_))
    except InvalidArgument as exc:
        raise _bad_input(exc.message) from exc
    leaf = parsed.leaf_hash
    if event is not None:
        computed = _event_leaf(event)
        if (proof is not None or leaf_hash_hex) and computed != leaf:
            _err.print("[bold red]FAILED[/]: the event does not hash to the proof's leaf")
            raise typer.Exit(_FAILED)
        leaf = computed
    elif proof is None and not leaf_hash_hex:
        raise _bad_input("give the leaf as --leaf-hash or --event")
    size = parsed.tree_size
    if checkpoint is not None:
        signed = _checkpoint(checkpoint, public_key, "--checkpoint")
        if signed.size != size:
            raise _bad_input(f"the proof is for size {size}, the checkpoint for {signed.size}")
        expected = signed.root_hash
    elif root is not None:
        expected = _hash(root, "--root")
    else:
        raise _bad_input("give the expected root as --root or --checkpoint")
    table = Table(show_header=False, box=None)
    table.add_row("leaf index", str(parsed.index))
    table.add_row("tree size", str(size))
    table.add_row("leaf hash", leaf.hex())
    table.add_row("root", expected.hex())
    for i, h in enumerate(parsed.hashes):
        table.add_row(f"proof[{i}]", h.hex())
    _out.print(table)
    try:
        InclusionProof(parsed.index, size, leaf, parsed.hashes).verify(expected)
    except ProofError as exc:
        _err.print(f"[bold red]FAILED[/]: {exc.message}")
        raise typer.Exit(_FAILED) from exc
    _out.print("[bold green]verified[/]: the leaf is in the tree")


@proof_app.command("consistency")
def proof_consistency(
    proof: Annotated[
        str | None,
        typer.Option(help="Proof JSON (inline, a file, or @FILE) as the service returns it."),
    ] = None,
    old_size: Annotated[int | None, typer.Option(help="Old tree size (without --proof).")] = None,
    new_size: Annotated[int | None, typer.Option(help="New tree size (without --proof).")] = None,
    hash_: Annotated[
        list[str] | None, typer.Option("--hash", help="Proof hash in hex; repeat in order.")
    ] = None,
    old_root: Annotated[str | None, typer.Option(help="Root hash (hex) at the old size.")] = None,
    new_root: Annotated[str | None, typer.Option(help="Root hash (hex) at the new size.")] = None,
    old_checkpoint: Annotated[
        str | None, typer.Option(help="Signed checkpoint (file) at the old size.")
    ] = None,
    new_checkpoint: Annotated[
        str | None, typer.Option(help="Signed checkpoint (file) at the new size.")
    ] = None,
    public_key: Annotated[
        str | None, typer.Option("--public-key", help="Trusted log key for the checkpoints.")
    ] = None,
) -> None:
    """Check that the newer tree is an append-only extension of the older one."""
    try:
        if proof is not None:
            parsed = ConsistencyProof.from_json(_load_json(proof, "--proof"))
        else:
            if old_size is None or new_size is None:
                raise _bad_input("give --proof, or --old-size and --new-size with --hash")
            parsed = ConsistencyProof(old_size, new_size, _hashes(hash_))
    except InvalidArgument as exc:
        raise _bad_input(exc.message) from exc
    roots: list[bytes] = []
    for label, size, root_hex, cp in (
        ("old", parsed.old_size, old_root, old_checkpoint),
        ("new", parsed.new_size, new_root, new_checkpoint),
    ):
        if cp is not None:
            signed = _checkpoint(cp, public_key, f"--{label}-checkpoint")
            if signed.size != size:
                raise _bad_input(
                    f"the proof's {label} size is {size}, the checkpoint's {signed.size}"
                )
            roots.append(signed.root_hash)
        elif root_hex is not None:
            roots.append(_hash(root_hex, f"--{label}-root"))
        else:
            raise _bad_input(f"give --{label}-root or --{label}-checkpoint")
    table = Table(show_header=False, box=None)
    table.add_row("old size", str(parsed.old_size))
    table.add_row("new size", str(parsed.new_size))
    table.add_row("old root", roots[0].hex())
    table.add_row("new root", roots[1].hex())
    for i, h in enumerate(parsed.hashes):
        table.add_row(f"proof[{i}]", h.hex())
    _out.print(table)
    try:
        parsed.verify(roots[0], roots[1])
    except ProofError as exc:
        _err.print(f"[bold red]FAILED[/]: {exc.message}")
        raise typer.Exit(_FAILED) from exc
    _out.print("[bold green]verified[/]: the new tree extends the old one")


@app.command()
def keygen(
    name: Annotated[
        str, typer.Argument(help="Key name = the log origin, e.g. audit.example/prod.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Write the private key here (mode 0600) instead of printing it."),
    ] = None,
) -> None:
    """Generate an Ed25519 log key in the signed-note encoding."""
    try:
        signer = NoteSigner.generate(name)
    except NoteError as exc:
        raise _bad_input(exc.message) from exc
    if out is None:
        _out.print(signer.private_key_text())
    else:
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise _bad_input(f"cannot create {out}: {exc}") from exc
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(signer.private_key_text() + "\n")
        _err.print(f"private key written to {out}")
    _out.print(str(signer.verifier))


# ---------------------------------------------------------------------------------- service

_TIMEOUT_S = 60.0
# A followed stream is resumed after this long (and after any dropped connection).
_FOLLOW_SESSION_S = 3600.0
_RESUMABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
)

AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="host:port of the audit service's gRPC API (default: SYMBI_AUDIT_ADDRESS or "
        "the local platform).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
SinceOption = Annotated[
    str | None,
    typer.Option(help="From this time: ISO 8601 (UTC if no zone) or an age like 15m, 2h, 7d."),
]
UntilOption = Annotated[str | None, typer.Option(help="Before this time (same forms as --since).")]

_STATUS = {
    audit_pb2.PUBLISHER_STATUS_VERIFIED: "[green]verified[/]",
    audit_pb2.PUBLISHER_STATUS_UNSIGNED: "[red]unsigned[/]",
    audit_pb2.PUBLISHER_STATUS_UNKNOWN_KEY: "[red]unknown key[/]",
    audit_pb2.PUBLISHER_STATUS_BAD_SIGNATURE: "[bold red]bad signature[/]",
}
_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def _millis(value: str | None, option: str) -> int:
    """Milliseconds since the epoch of an ISO time or an age (``15m`` = 15 minutes ago)."""
    if not value:
        return 0
    age = _AGE.match(value.strip())
    if age:
        moment = datetime.now(UTC) - timedelta(seconds=float(age[1]) * _AGE_UNITS[age[2]])
    else:
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _bad_input(
                f"{option} {value!r} is neither an ISO 8601 time nor an age like 15m, 2h, 7d"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return max(1, int(moment.timestamp() * 1000))


def _audit_stub(channel: grpc.aio.Channel) -> audit_pb2_grpc.AuditServiceAsyncStub:
    return audit_pb2_grpc.AuditServiceStub(channel)


_AUDIT = ServiceClient(
    service="audit",
    stub=_audit_stub,
    codes=ExitCodes(missing=BAD_INPUT),
    show_reason=True,
    err=_err,
)
_call = _AUDIT.call


def _moment(timestamp_us: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=timestamp_us)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _entry_line(entry: audit_pb2.LogEntry) -> str:
    event = entry.event
    status = _STATUS.get(entry.publisher_status, "[dim]?[/]")
    agent = f" agent={escape(event.agent_id)}" if event.agent_id else ""
    return (
        f"[dim]{entry.index:>8}[/] {_moment(event.timestamp_us)} [bold]{escape(event.event_type)}"
        f"[/] actor={escape(event.actor)}{agent} {status} {escape(event.details_json)}"
    )


def _query_request(
    agent: str | None,
    actor: str | None,
    event_type: list[str] | None,
    tag: str | None,
    text: str | None,
    since: str | None,
    until: str | None,
) -> audit_pb2.QueryRequest:
    return audit_pb2.QueryRequest(
        agent_id=agent or "",
        actor=actor or "",
        event_types=event_type or [],
        compliance_tag=tag or "",
        text=text or "",
        since_ms=_millis(since, "--since"),
        until_ms=_millis(until, "--until"),
    )


AgentOption = Annotated[str | None, typer.Option("--agent", help="Only this agent's events.")]
ActorOption = Annotated[str | None, typer.Option("--actor", help="Only this actor's events.")]
TypeOption = Annotated[
    list[str] | None, typer.Option("--type", help="Only these event types (repeat).")
]
TagOption = Annotated[str | None, typer.Option("--tag", help="Only with this compliance tag.")]
TextOption = Annotated[
    str | None, typer.Option("--text", help="Case-insensitive substring anywhere in the event.")
]


@app.command()
def tail(
    last: Annotated[int, typer.Option("--last", "-n", help="Start with the newest N.")] = 10,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Keep printing new events.")
    ] = True,
    count: Annotated[
        int, typer.Option("--count", help="Stop after printing this many (0: never).")
    ] = 0,
    agent: AgentOption = None,
    actor: ActorOption = None,
    event_type: TypeOption = None,
    tag: TagOption = None,
    text: TextOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One canonical event JSON object per line.")
    ] = False,
    address: AddressOption = None,
) -> None:
    """Print the newest events, then follow new ones as the log appends them (Ctrl-C stops)."""
    if last < 0 or count < 0:
        raise _bad_input("--last and --count must not be negative")
    request = _query_request(agent, actor, event_type, tag, text, None, None)
    request.last = last
    request.follow = follow
    target = _AUDIT.target(address)
    printed = 0
    last_index = -1

    async def session(channel: grpc.aio.Channel, req: audit_pb2.QueryRequest) -> None:
        nonlocal printed, last_index
        stub: Any = audit_pb2_grpc.AuditServiceStub(channel)
        stream: AsyncIterator[audit_pb2.LogEntry] = stub.QueryStream(
            req, timeout=_FOLLOW_SESSION_S if follow else _TIMEOUT_S
        )
        async for entry in stream:
            if as_json:
                sys.stdout.write(entry.canonical_event.decode("utf-8") + "\n")
                sys.stdout.flush()
            else:
                _out.print(_entry_line(entry))
            printed += 1
            last_index = entry.index
            if count and printed >= count:
                return

    async def run() -> None:
        options = ChannelOptions(default_timeout_s=_FOLLOW_SESSION_S)
        while True:
            req = request
            if last_index >= 0:  # a resumed session continues after the last entry printed
                req = audit_pb2.QueryRequest()
                req.CopyFrom(request)
                req.last = 0
                req.page.page_token = encode_cursor(last_index, False)
            async with open_channel(target, options) as channel:
                try:
                    await session(channel, req)
                except grpc.aio.AioRpcError as exc:
                    if not follow or exc.code() not in _RESUMABLE:
                        raise
                    _err.print(f"[dim]reconnecting ({exc.code().name.lower()})…[/]")
            if not follow or (count and printed >= count):
                return
            await asyncio.sleep(1.0)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return
    except grpc.aio.AioRpcError as exc:
        raise _AUDIT.failed(exc) from None


@app.command()
def query(
    agent: AgentOption = None,
    actor: ActorOption = None,
    event_type: TypeOption = None,
    tag: TagOption = None,
    text: TextOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int, typer.Option(help="Page size (at most 1000).")] = 50,
    newest_first: Annotated[bool, typer.Option("--newest-first", help="Newest first.")] = False,
    page_token: Annotated[
        str | None, typer.Option(help="Continue after a previous page (its next token).")
    ] = None,
    as_json: JsonOption = False,
    address: AddressOption = None,
) -> None:
    """One page of events matching the filters."""
    request = _query_request(agent, actor, event_type, tag, text, since, until)
    request.descending = newest_first
    request.page.page_size = limit
    request.page.page_token = page_token or ""
    response = _call(address, lambda stub: stub.Query(request, timeout=_TIMEOUT_S))
    if as_json:
        echo_json(response)
        return
    for entry in response.entries:
        _out.print(_entry_line(entry))
    if not response.entries:
        _out.print("no matching events")
    if response.page.next_page_token:
        _out.print(f"[dim]more: --page-token {response.page.next_page_token}[/]")


def _write_atomically(out: Path, chunks: Callable[[Any], Coroutine[Any, Any, None]]) -> None:
    """Write ``out`` through a temp file in the same directory, renamed once complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            asyncio.run(chunks(handle))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


@app.command()
def export(
    out: Annotated[Path, typer.Argument(help="Where to write the export (JSON Lines).")],
    since: SinceOption = None,
    until: UntilOption = None,
    start_index: Annotated[
        int | None, typer.Option(help="Instead of a window: every entry from this index on.")
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key", help="Verify the written export against this trusted log key."
        ),
    ] = None,
    address: AddressOption = None,
) -> None:
    """Export the log (or the smallest verifiable range holding a time window) to a file
    that ``symbi audit verify`` checks offline."""
    request = audit_pb2.ExportRequest(
        since_ms=_millis(since, "--since"), until_ms=_millis(until, "--until")
    )
    if start_index is not None:
        request.start_index = start_index
    verifier = _verifier(public_key) if public_key else None
    target = _AUDIT.target(address)
    info: list[audit_pb2.ExportInfo] = []

    async def write(handle: Any) -> None:
        async with open_channel(target, ChannelOptions(default_timeout_s=3600)) as channel:
            stub: Any = audit_pb2_grpc.AuditServiceStub(channel)
            async for chunk in stub.Export(request, timeout=3600):
                if chunk.HasField("info"):
                    info.append(chunk.info)
                handle.write(chunk.data)

    try:
        _write_atomically(out, write)
    except grpc.aio.AioRpcError as exc:
        raise _AUDIT.failed(exc) from None
    except OSError as exc:
        raise _bad_input(f"cannot write {out}: {exc}") from None
    table = Table(show_header=False, box=None)
    table.add_row("export", str(out))
    if info:
        table.add_row("log", info[0].origin)
        table.add_row("entries", f"{info[0].start}..{info[0].end - 1}" if info[0].end else "none")
        table.add_row("checkpoints", str(info[0].checkpoints))
        table.add_row("log key (as served)", info[0].log_key)
    _out.print(table)
    if verifier is None:
        _out.print(
            "[yellow]not verified[/]: check it with `symbi audit verify "
            f"{escape(str(out))} --public-key KEY` using the log key you trust (pinned out of "
            "band, e.g. the service's data-dir audit/log.pub), not the one served"
        )
        return
    result = verify_export_file(out, [verifier])
    if not result.ok:
        assert result.problem is not None
        _err.print(f"[bold red]FAILED[/] ({result.problem.kind.value}): {result.problem}")
        raise typer.Exit(_FAILED)
    _out.print(f"[bold green]verified[/]: {result.entries_checked} entries against the given key")


@app.command()
def report(
    since: SinceOption = None,
    until: UntilOption = None,
    report_format: Annotated[
        str, typer.Option("--format", help="json, markdown or html.")
    ] = "markdown",
    out: Annotated[Path | None, typer.Option(help="Write to this file.")] = None,
    address: AddressOption = None,
) -> None:
    """A compliance report for a window: counts by type, agent, decision and tag; denied
    actions, policy changes and sandbox violations."""
    request = audit_pb2.ReportRequest(
        since_ms=_millis(since, "--since"),
        until_ms=_millis(until, "--until"),
        format=report_format,
    )
    response = _call(address, lambda stub: stub.Report(request, timeout=_TIMEOUT_S * 5))
    if out is None:
        sys.stdout.write(response.body.decode("utf-8"))
        return
    try:
        out.write_bytes(response.body)
    except OSError as exc:
        raise _bad_input(f"cannot write {out}: {exc}") from None
    _err.print(f"report ({response.content_type}) written to {out}")


@app.command()
def checkpoint(
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Sign one at the current size first.")
    ] = False,
    size: Annotated[int, typer.Option(help="The checkpoint at this tree size.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the signed note to this file.")] = None,
    address: AddressOption = None,
) -> None:
    """The latest (or a given) signed checkpoint, as a C2SP signed note."""
    request = audit_pb2.GetCheckpointRequest(fresh=fresh, tree_size=size)
    response = _call(address, lambda stub: stub.GetCheckpoint(request, timeout=_TIMEOUT_S))
    if out is not None:
        try:
            out.write_text(response.signed_note, encoding="utf-8")
        except OSError as exc:
            raise _bad_input(f"cannot write {out}: {exc}") from None
        _err.print(f"checkpoint at size {response.tree_size} written to {out}")
        return
    sys.stdout.write(response.signed_note)
    _err.print(f"log key (as served): {response.log_key}")


@app.command()
def status(as_json: JsonOption = False, address: AddressOption = None) -> None:
    """This replica's log: size, root, latest checkpoint, log key, ingest counters."""
    response = _call(
        address, lambda stub: stub.GetStatus(audit_pb2.GetStatusRequest(), timeout=_TIMEOUT_S)
    )
    if as_json:
        echo_json(response)
        return
    table = Table(show_header=False, box=None)
    table.add_row("log", response.origin)
    table.add_row("entries", str(response.size))
    table.add_row("root", base64.b64encode(response.root_hash).decode())
    if response.archived_before:
        table.add_row("archived", f"entries below {response.archived_before}")
    if response.HasField("latest_checkpoint"):
        table.add_row("latest checkpoint", f"size {response.latest_checkpoint.tree_size}")
    table.add_row("log key", response.log_key)
    ingest = response.ingest
    table.add_row(
        "ingested",
        f"{ingest.events} events in {ingest.batches} batches, {ingest.duplicates} duplicates, "
        f"{ingest.unverified} unverified, {ingest.malformed} malformed ({ingest.consumer})",
    )
    _out.print(table)


@app.command()
def check(
    from_index: Annotated[int, typer.Option("--from", help="First entry.")] = 0,
    to_index: Annotated[int, typer.Option("--to", help="End (exclusive; 0: the end).")] = 0,
    address: AddressOption = None,
) -> None:
    """Have the service re-hash its stored entries and check its signed checkpoints."""
    request = audit_pb2.VerifyRequest(from_index=from_index, to_index=to_index)
    response = _call(address, lambda stub: stub.Verify(request, timeout=3600))
    if response.ok:
        _out.print(
            f"[bold green]ok[/]: entries {response.from_index}..{response.to_index - 1} "
            f"({response.checked} re-hashed), {response.checkpoints_checked} checkpoints"
        )
        return
    where = f"entry {response.first_bad_entry}: " if response.first_bad_entry else ""
    _err.print(f"[bold red]FAILED[/]: {where}{escape(response.problem)}")
    raise typer.Exit(_FAILED)


def _write_note(path: Path | None, note: str) -> None:
    if path is None or not note:
        return
    try:
        path.write_text(note, encoding="utf-8")
    except OSError as exc:
        raise _bad_input(f"cannot write {path}: {exc}") from None


@app.command("inclusion-proof")
def inclusion_proof(
    event_id: Annotated[str | None, typer.Option(help="The event's id.")] = None,
    index: Annotated[int | None, typer.Option(help="Or the entry's index.")] = None,
    tree_size: Annotated[int, typer.Option(help="Tree size (0: latest checkpoint).")] = 0,
    checkpoint_out: Annotated[
        Path | None, typer.Option(help="Write the signed checkpoint at that size here.")
    ] = None,
    address: AddressOption = None,
) -> None:
    """Fetch an inclusion proof as JSON (check it with `symbi audit proof inclusion --proof`)."""
    if (event_id is None) == (index is None):
        raise _bad_input("give exactly one of --event-id and --index")
    request = audit_pb2.GetInclusionProofRequest(tree_size=tree_size)
    if event_id is not None:
        request.event_id = event_id
    else:
        assert index is not None
        request.index = index
    response = _call(address, lambda stub: stub.GetInclusionProof(request, timeout=_TIMEOUT_S))
    _write_note(checkpoint_out, response.checkpoint_note)
    proof = InclusionProof(
        response.index, response.tree_size, response.leaf_hash, tuple(response.hashes)
    )
    typer.echo(json.dumps({**proof.to_json(), "root_hash": response.root_hash.hex()}, indent=2))


@app.command("consistency-proof")
def consistency_proof(
    old_size: Annotated[int, typer.Argument(help="The older tree size.")],
    new_size: Annotated[int, typer.Argument(help="The newer size (0: latest checkpoint).")] = 0,
    old_checkpoint_out: Annotated[
        Path | None, typer.Option(help="Write the signed checkpoint at the old size here.")
    ] = None,
    new_checkpoint_out: Annotated[
        Path | None, typer.Option(help="Write the signed checkpoint at the new size here.")
    ] = None,
    address: AddressOption = None,
) -> None:
    """Fetch a consistency proof as JSON (check it with `symbi audit proof consistency`)."""
    request = audit_pb2.GetConsistencyProofRequest(old_size=old_size, new_size=new_size)
    response = _call(address, lambda stub: stub.GetConsistencyProof(request, timeout=_TIMEOUT_S))
    _write_note(old_checkpoint_out, response.old_checkpoint_note)
    _write_note(new_checkpoint_out, response.new_checkpoint_note)
    proof = ConsistencyProof(response.old_size, response.new_size, tuple(response.hashes))
    typer.echo(
        json.dumps(
            {
                **proof.to_json(),
                "old_root": response.old_root.hex(),
                "new_root": response.new_root.hex(),
            },
            indent=2,
        )
    )


@app.command()
def archive(
    fresh_checkpoint: Annotated[
        bool,
        typer.Option(
            "--fresh-checkpoint", help="Sign a checkpoint now, so everything is archived."
        ),
    ] = False,
    address: AddressOption = None,
) -> None:
    """Retention: move entries up to the latest checkpoint into a verified archive file on
    the service's host and drop their bodies from the store (proofs keep working)."""
    request = audit_pb2.ArchiveRequest(fresh_checkpoint=fresh_checkpoint)
    response = _call(address, lambda stub: stub.Archive(request, timeout=3600))
    if not response.archived:
        _out.print("nothing new to archive (no checkpoint beyond the last archive)")
        return
    _out.print(
        f"archived entries {response.start}..{response.end - 1} to {escape(response.path)} "
        f"({response.removed} event bodies removed from the store)"
    )
