"""``symbi keys``: the cluster root's credentials for principals (agents, nodes, services, users),
and the gRPC CA's X.509 certificates (``tls-ca``, ``tls-issue``) for mTLS between services."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from pathlib import Path
from typing import Annotated

import nats
import typer
from rich.console import Console
from rich.table import Table

from symbi_cli.local import CLI_PRINCIPAL, read_state, reload_nats, write_nats_users
from symbi_common.bus import ClusterAuthority, load_credentials
from symbi_common.bus.permissions import inbox_prefix
from symbi_common.crypto.identity import ROLES, Certificate
from symbi_common.errors import SymbiError
from symbi_common.grpc.tls import CA_CERT_FILE, CA_KEY_FILE, MAX_VALIDITY_DAYS, TlsAuthority

app = typer.Typer(
    help="Issue, list and revoke principals' credentials (signed by the cluster root)."
)
console = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir", envvar="SYMBI_HOME", help="The local platform's directory (holds keys/)."
    ),
]


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(1)


@app.command()
def issue(
    principal: Annotated[
        str, typer.Argument(help="Principal id, e.g. agent-alice (letters, digits, - and _).")
    ],
    role: Annotated[str, typer.Option(help="agent | node | service | user | issuer")] = "agent",
    data_dir: DataDir = Path(".symbi"),
    out: Annotated[
        Path | None, typer.Option(help="Also copy the credentials (and root.cert) here.")
    ] = None,
    validity_days: Annotated[
        float, typer.Option(min=0.01, help="How long the certificate is valid.")
    ] = 365,
) -> None:
    """Create a principal's key, certificate and NATS NKey, and let it connect."""
    if role not in ROLES - {"root"}:
        raise _fail(f"unknown role {role!r}; use one of {', '.join(sorted(ROLES - {'root'}))}")
    keys_dir = data_dir.resolve() / "keys"
    try:
        authority = ClusterAuthority.open(keys_dir)
        credentials = authority.issue(
            principal, role, reuse=False, validity_s=validity_days * 86_400
        )
    except SymbiError as error:
        raise _fail(error.message) from None
    (keys_dir / f"{principal}.revoked").unlink(missing_ok=True)
    write_nats_users(data_dir.resolve())
    state = read_state(data_dir.resolve())
    reloaded = state is not None and reload_nats(state)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for suffix in (".key", ".cert", ".nkey"):
            shutil.copy2(keys_dir / f"{principal}{suffix}", out / f"{principal}{suffix}")
        shutil.copy2(keys_dir / "root.cert", out / "root.cert")
    console.print(f"issued [bold]{principal}[/] ({role}), key id {credentials.keys.key_id}")
    console.print(f"credentials: {(out or keys_dir).resolve()}")
    console.print(
        "NATS: "
        + ("reloaded, it may connect now" if reloaded else "users written; start with `symbi up`")
    )


@app.command("list")
def list_(data_dir: DataDir = Path(".symbi")) -> None:
    """Every principal with credentials in the keys directory."""
    keys_dir = data_dir.resolve() / "keys"
    if not keys_dir.is_dir():
        raise _fail(f"no keys in {keys_dir}; `symbi up` creates them")
    table = Table("principal", "role", "key id", "valid until", "status")
    now = dt.datetime.now(dt.UTC)
    for cert_file in sorted(keys_dir.glob("*.cert")):
        cert = Certificate.load(cert_file)
        until = dt.datetime.fromtimestamp(cert.proto.not_after_ms / 1000, dt.UTC)
        status = (
            "revoked"
            if (keys_dir / f"{cert.principal_id}.revoked").exists()
            else ("expired" if until < now else "valid")
        )
        table.add_row(
            cert.principal_id, cert.role, cert.key_id, until.strftime("%Y-%m-%d %H:%M"), status
        )
    console.print(table)


async def _publish_revocation(
    keys_dir: Path, nats_url: str, revocation_bytes: bytes, key: str
) -> None:
    credentials = load_credentials(keys_dir, CLI_PRINCIPAL)
    nc = await nats.connect(
        nats_url,
        nkeys_seed_str=credentials.nkey_seed,
        inbox_prefix=inbox_prefix(CLI_PRINCIPAL),
        connect_timeout=3,
    )
    try:
        kv = await nc.jetstream().key_value("symbi_keyring")
        await kv.put(key, revocation_bytes)
    finally:
        await nc.close()


@app.command()
def revoke(
    principal: Annotated[str, typer.Argument(help="The principal to revoke.")],
    key_id: Annotated[
        str, typer.Option(help="Revoke only this key (default: every key of the principal).")
    ] = "",
    reason: Annotated[str, typer.Option(help="Recorded in the signed revocation.")] = "",
    data_dir: DataDir = Path(".symbi"),
) -> None:
    """Revoke a principal: verifiers refuse its envelopes, NATS refuses its connection."""
    keys_dir = data_dir.resolve() / "keys"
    try:
        authority = ClusterAuthority.open(keys_dir, create=False)
    except SymbiError as error:
        raise _fail(error.message) from None
    revocation = authority.root.revoke(principal, key_id, reason)
    if not key_id:
        (keys_dir / f"{principal}.revoked").write_text(reason or "revoked\n")
    write_nats_users(data_dir.resolve())
    state = read_state(data_dir.resolve())
    if state is None:
        console.print(
            f"revoked {principal} locally; the platform is not running, so the keyring is updated at its next start"
        )
        (keys_dir / f"{principal}.revocation").write_bytes(revocation.SerializeToString())
        return
    suffix = f".{key_id}" if key_id else ""
    try:
        asyncio.run(
            _publish_revocation(
                keys_dir,
                state.nats_url,
                revocation.SerializeToString(),
                f"revoked.{principal}{suffix}",
            )
        )
    except Exception as exc:  # the CLI reports any failure to reach NATS as one line
        raise _fail(f"could not publish the revocation to the keyring: {exc}") from None
    reload_nats(state)
    console.print(
        f"revoked {principal}{' key ' + key_id if key_id else ''}: published to the keyring, NATS reloaded"
    )


def _tls_dir(data_dir: Path) -> Path:
    # A subdirectory: a principal's TLS key must not take the name of its bus key (<id>.key).
    return data_dir.resolve() / "keys" / "tls"


@app.command("tls-ca")
def tls_ca(
    data_dir: DataDir = Path(".symbi"),
    validity_days: Annotated[
        int, typer.Option("--days", min=1, max=MAX_VALIDITY_DAYS, help="How long the CA is valid.")
    ] = 3650,
) -> None:
    """Create the gRPC CA (X.509, ECDSA P-256) in keys/tls; refuses to replace an existing one."""
    tls_dir = _tls_dir(data_dir)
    if (tls_dir / CA_CERT_FILE).is_file() and (tls_dir / CA_KEY_FILE).is_file():
        console.print(f"the gRPC CA exists: {tls_dir / CA_CERT_FILE} (left as it is)")
        return
    try:
        authority = TlsAuthority.create(tls_dir, days=validity_days)
    except SymbiError as error:  # half a CA (one of the two files) is never completed
        raise _fail(error.message) from None
    until = authority.certificate.not_valid_after_utc.strftime("%Y-%m-%d")
    console.print(f"created the gRPC CA, valid until {until}")
    console.print(f"certificate: {tls_dir / CA_CERT_FILE} (ca.crt in the cluster's TLS Secret)")
    console.print(f"key: {tls_dir / CA_KEY_FILE} (keep it off the cluster)")


@app.command("tls-issue")
def tls_issue(
    principal: Annotated[
        str,
        typer.Argument(help="Principal id, e.g. alice or svc-policy-0 (letters, digits, - and _)."),
    ],
    role: Annotated[str, typer.Option(help="service | node | user | agent | issuer")] = "user",
    dns: Annotated[
        list[str] | None,
        typer.Option("--dns", help="A DNS name the server is reached at (repeatable)."),
    ] = None,
    ip: Annotated[
        list[str] | None,
        typer.Option("--ip", help="An IP address the server is reached at (repeatable)."),
    ] = None,
    validity_days: Annotated[
        int,
        typer.Option(
            "--days", min=1, max=MAX_VALIDITY_DAYS, help="How long the certificate is valid."
        ),
    ] = 365,
    data_dir: DataDir = Path(".symbi"),
    out: Annotated[
        Path | None, typer.Option(help="Write <id>.crt and <id>.key here (default: keys/tls).")
    ] = None,
) -> None:
    """Issue a gRPC certificate naming symbi://ROLE/PRINCIPAL (and, for a server, its names)."""
    tls_dir = _tls_dir(data_dir)
    target = (out or tls_dir).resolve()
    try:
        authority = TlsAuthority.open(tls_dir)
        issued = authority.issue(
            principal, role, dns_names=dns or (), ip_addresses=ip or (), days=validity_days
        )
        cert_path, key_path = issued.write(target)
    except SymbiError as error:
        raise _fail(error.message) from None
    names = ", ".join([issued.caller.uri, *(dns or ()), *(ip or ())])
    console.print(f"issued a gRPC certificate for [bold]{principal}[/] ({role}): {names}")
    console.print(f"certificate: {cert_path}")
    console.print(f"key: {key_path} (0600)")
    console.print(f"CA: {tls_dir / CA_CERT_FILE}")
