"""Where the CLI finds a service: ``--address``, ``SYMBI_<SERVICE>_ADDRESS``, or the local
platform's state file (``symbi up``)."""

from __future__ import annotations

import os
from pathlib import Path

import grpc

from symbi_cli.local import read_state
from symbi_common.errors import Unavailable
from symbi_common.grpc import open_channel

__all__ = ["channel_to", "service_address"]


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
            return str(info["grpc"])
    raise Unavailable(
        f"cannot find the {service} service: pass --address host:port, set {variable}, "
        f"or start the local platform with `symbi up` (looked in {home.resolve()})"
    )


def channel_to(service: str, *, address: str | None = None) -> grpc.aio.Channel:
    return open_channel(service_address(service, address=address))
