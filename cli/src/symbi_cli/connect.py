"""Where the CLI finds a service: ``--address``, ``SYMBI_<SERVICE>_ADDRESS``, or the local
platform's state file (``symbi up``); and how it talks to it: plaintext to the local platform,
mTLS to a cluster when ``SYMBI_GRPC_TLS_CA``, ``SYMBI_GRPC_TLS_CERT`` and
``SYMBI_GRPC_TLS_KEY`` name the gRPC CA and a user certificate (``symbi keys tls-issue``).
``SYMBI_GRPC_TLS_SERVER_NAME`` overrides the name checked in the server's certificate (for a
port-forward to 127.0.0.1).

A local platform started with ``symbi up --tls`` records its CA and the operator's
certificate in its state file: a command that finds its service there adopts them as if
``SYMBI_GRPC_TLS_*`` had been exported (explicit variables win), so every command against that
data directory speaks mTLS as the operator."""

from __future__ import annotations

import os
from pathlib import Path

import grpc

from symbi_cli.local import read_state
from symbi_cli.local_tls import adopt_client_environment
from symbi_common.errors import Unavailable
from symbi_common.grpc import ChannelOptions, open_channel
from symbi_common.grpc.client import with_environment_tls

__all__ = ["channel_options", "channel_to", "service_address"]


def service_address(
    service: str, *, address: str | None = None, data_dir: Path = Path(".symbi")
) -> str:
    """``host:port`` of ``service``; Unavailable with a hint when it cannot be found."""
    if address:
        return address
    variable = f"SYMBI_{service.upper().replace('-', '_')}_ADDRESS"
    if os.environ.get(variable):
        return os.environ[variable]
    home = Path(os.environ.get("SYMBI_HOME", str(data_dir)))
    state = read_state(home.resolve())
    if state is not None:
        info = state.services.get(service) or {}
        if info.get("grpc"):
            adopt_client_environment(state.local_tls, os.environ)
            return str(info["grpc"])
    raise Unavailable(
        f"cannot find the {service} service: pass --address host:port, set {variable}, "
        f"or start the local platform with `symbi up` (looked in {home.resolve()})"
    )


def channel_options(
    *,
    tls_ca: Path | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    tls_server_name: str | None = None,
) -> ChannelOptions:
    """Channel options for the CLI: TLS from the arguments (a command's flags) when given,
    else from ``SYMBI_GRPC_TLS_*``; InvalidArgument names what is missing."""
    explicit = {
        "SYMBI_GRPC_TLS_CA": tls_ca,
        "SYMBI_GRPC_TLS_CERT": tls_cert,
        "SYMBI_GRPC_TLS_KEY": tls_key,
        "SYMBI_GRPC_TLS_SERVER_NAME": tls_server_name,
    }
    if any(value is not None for value in explicit.values()):
        given = {name: str(value) for name, value in explicit.items() if value is not None}
        return with_environment_tls(ChannelOptions(), given)
    return with_environment_tls(ChannelOptions())


def channel_to(
    service: str, *, address: str | None = None, options: ChannelOptions | None = None
) -> grpc.aio.Channel:
    """A channel to ``service`` (see :func:`service_address`), over mTLS when configured."""
    return open_channel(service_address(service, address=address), options or channel_options())
