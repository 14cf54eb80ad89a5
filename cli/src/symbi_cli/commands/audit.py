"""``symbi audit``: verify exports and proofs offline (``tail`` needs the bus: later phase).

Exit codes: 0 verified, 1 verification failed (tampering or a bad proof), 2 bad usage/input.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from symbi_audit.checkpoint import SignedCheckpoint
from symbi_audit.errors import NoteError, ProofError
from symbi_audit.event import AuditEvent
from symbi_audit.merkle import leaf_hash
from symbi_audit.note import NoteSigner, NoteVerifier
from symbi_audit.proof import ConsistencyProof, InclusionProof, parse_hash
from symbi_audit.verify import verify_export_file
from symbi_common.errors import InvalidArgument

app = typer.Typer(
    help="Audit log: verify exports and Merkle proofs offline; generate log keys.",
    no_args_is_help=True,
)
proof_app = typer.Typer(
    help="Check inclusion and consistency proofs given as files or options.",
    no_args_is_help=True,
)
app.add_typer(proof_app, name="proof")

_FAILED = 1
_BAD_INPUT = 2

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)

PublicKeyOption = Annotated[
    str,
    typer.Option(
        "--public-key",
        help="The trusted log key (<name>+<id>+<base64>), or a file that holds it.",
    ),
]


def _bad_input(message: str) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(_BAD_INPUT)


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
