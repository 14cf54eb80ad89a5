"""gRPC mTLS for the local platform (``symbi up --tls``, ADR 0012 addendum).

``prepare_local_tls`` creates, once, the gRPC CA in ``<data dir>/keys/tls``, a certificate for
each service principal (server and client: ``localhost`` and ``127.0.0.1``, where the local
services listen) and a user certificate for the local operator, and never replaces any of them
(a second ``symbi up --tls`` reuses what is there). The state file records the operator's files
(:meth:`LocalTls.as_state`), so every later ``symbi`` command against that data directory calls
over mTLS as the operator, unless ``SYMBI_GRPC_TLS_CA``/``_CERT``/``_KEY`` say otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from symbi_common.grpc import ChannelOptions
from symbi_common.grpc.client import TLS_ENVIRONMENT, with_environment_tls
from symbi_common.grpc.tls import CA_CERT_FILE, CA_KEY_FILE, TlsAuthority

__all__ = [
    "LOCAL_OPERATOR",
    "LocalTls",
    "adopt_client_environment",
    "client_options",
    "prepare_local_tls",
    "server_environment",
    "tls_dir",
]

#: The user the local platform's CLI calls as; a member of ``Role::"operators"``.
LOCAL_OPERATOR = "operator"

#: The variables naming a client's CA, certificate and key (the server name is optional).
_CLIENT_FILES = TLS_ENVIRONMENT[:3]


def tls_dir(data_dir: Path) -> Path:
    """Where ``symbi keys tls-ca``/``tls-issue`` keep the gRPC CA and certificates."""
    return data_dir / "keys" / "tls"


@dataclass(frozen=True)
class LocalTls:
    """The CA to trust and the local operator's client certificate."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    operator: str = LOCAL_OPERATOR

    def as_state(self) -> dict[str, str]:
        """What ``state.json`` records under ``tls``."""
        return {
            "ca": str(self.ca_file),
            "cert": str(self.cert_file),
            "key": str(self.key_file),
            "operator": self.operator,
        }

    @classmethod
    def from_state(cls, raw: Mapping[str, str] | None) -> LocalTls | None:
        """The recorded TLS of a platform; None for a plaintext one."""
        if not raw:
            return None
        return cls(
            Path(raw["ca"]),
            Path(raw["cert"]),
            Path(raw["key"]),
            raw.get("operator", LOCAL_OPERATOR),
        )

    def options(self, base: ChannelOptions | None = None) -> ChannelOptions:
        """``base`` (or the defaults) presenting the operator's certificate."""
        return dataclasses.replace(
            base or ChannelOptions(),
            tls_ca_file=self.ca_file,
            tls_cert_file=self.cert_file,
            tls_key_file=self.key_file,
        )

    def client_environment(self) -> dict[str, str]:
        """``SYMBI_GRPC_TLS_CA``, ``_CERT`` and ``_KEY`` for these files."""
        return dict(
            zip(
                _CLIENT_FILES,
                (str(self.ca_file), str(self.cert_file), str(self.key_file)),
                strict=True,
            )
        )


def _issue_once(
    authority: TlsAuthority, directory: Path, principal: str, role: str, *, server: bool
) -> tuple[Path, Path]:
    cert, key = directory / f"{principal}.crt", directory / f"{principal}.key"
    if cert.is_file() and key.is_file():
        return cert, key
    issued = authority.issue(
        principal,
        role,
        dns_names=("localhost",) if server else (),
        ip_addresses=("127.0.0.1",) if server else (),
    )
    return issued.write(directory)


def prepare_local_tls(
    data_dir: Path, principals: Iterable[tuple[str, str]], operator: str = LOCAL_OPERATOR
) -> LocalTls:
    """The CA (created when absent), a server certificate for each ``(principal, role)`` and
    the operator's user certificate, each issued only when its files are absent.

    Half a CA or half a certificate (one of its two files) is an error from the CA, never
    silently replaced: replacing the CA would invalidate every certificate it issued."""
    directory = tls_dir(data_dir)
    if (directory / CA_CERT_FILE).exists() or (directory / CA_KEY_FILE).exists():
        authority = TlsAuthority.open(directory)
    else:
        authority = TlsAuthority.create(directory)
    for principal, role in principals:
        _issue_once(authority, directory, principal, role, server=True)
    cert, key = _issue_once(authority, directory, operator, "user", server=False)
    return LocalTls(directory / CA_CERT_FILE, cert, key, operator)


def server_environment(data_dir: Path, principal: str) -> dict[str, str]:
    """``[grpc] tls_*`` of a service presenting ``principal``'s certificate."""
    directory = tls_dir(data_dir)
    return {
        "SYMBI_GRPC__TLS_CERT_FILE": str(directory / f"{principal}.crt"),
        "SYMBI_GRPC__TLS_KEY_FILE": str(directory / f"{principal}.key"),
        "SYMBI_GRPC__TLS_CA_FILE": str(directory / CA_CERT_FILE),
    }


def _explicit(environ: Mapping[str, str]) -> bool:
    return any(environ.get(name) for name in _CLIENT_FILES)


def client_options(
    tls: LocalTls | None,
    environ: Mapping[str, str],
    base: ChannelOptions | None = None,
) -> ChannelOptions:
    """How to call a local platform: explicit ``SYMBI_GRPC_TLS_*`` first, else its recorded
    TLS (as the operator), else plaintext."""
    base = base or ChannelOptions()
    if _explicit(environ) or tls is None:
        return with_environment_tls(base, environ)
    return tls.options(base)


def adopt_client_environment(tls: LocalTls | None, environ: MutableMapping[str, str]) -> bool:
    """Make a local platform's TLS this process's client TLS, as if its variables had been
    exported, unless the environment names a CA, certificate or key itself; True when adopted.

    Every channel the CLI opens takes TLS from the environment (``open_channel``), so this is
    what makes ``symbi policy push`` and the rest speak mTLS to ``symbi up --tls``."""
    if tls is None or _explicit(environ):
        return False
    environ.update(tls.client_environment())
    return True
