"""Client channels to Symbi services: retries on UNAVAILABLE, a default deadline, tracing.

Use as an async context manager (the channel closes on exit)::

    async with open_channel("127.0.0.1:50051") as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        try:
            result = await stub.Evaluate(request, timeout=1.0)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None

mTLS: options with ``tls_ca_file`` (and this client's certificate and key). Options without
TLS take it from the environment when ``SYMBI_GRPC_TLS_CA`` is set, with
``SYMBI_GRPC_TLS_CERT``, ``SYMBI_GRPC_TLS_KEY`` and optionally ``SYMBI_GRPC_TLS_SERVER_NAME``:
that is how every ``symbi`` command reaches a cluster whose services require client
certificates (``symbi keys tls-issue <you> --role user``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from symbi_common.errors import InvalidArgument

__all__ = [
    "TLS_ENVIRONMENT",
    "ChannelOptions",
    "channel_credentials",
    "open_channel",
    "with_environment_tls",
]

#: Environment variables that give a client mTLS: CA, certificate, key, server name override.
TLS_ENVIRONMENT = (
    "SYMBI_GRPC_TLS_CA",
    "SYMBI_GRPC_TLS_CERT",
    "SYMBI_GRPC_TLS_KEY",
    "SYMBI_GRPC_TLS_SERVER_NAME",
)


@dataclass(frozen=True)
class ChannelOptions:
    """How a client channel behaves. Defaults suit calls between services on one cluster."""

    #: Deadline applied to calls that do not pass ``timeout=``.
    default_timeout_s: float = 30.0
    #: Attempts (including the first) for calls failing with UNAVAILABLE.
    max_attempts: int = 4
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    max_message_bytes: int = 16 * 1024 * 1024
    #: mTLS: CA file, and this client's certificate and key.
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    #: The name the server's certificate must carry when it differs from the target's host
    #: (e.g. a port-forward to 127.0.0.1 of a server whose certificate names its DNS name).
    tls_server_name: str | None = None
    tracing: bool = True

    @property
    def tls(self) -> bool:
        return self.tls_ca_file is not None


def _service_config(options: ChannelOptions) -> str:
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": [{}],  # every method of every service
                    "timeout": f"{options.default_timeout_s}s",
                    "retryPolicy": {
                        "maxAttempts": max(2, options.max_attempts),
                        "initialBackoff": f"{options.initial_backoff_s}s",
                        "maxBackoff": f"{options.max_backoff_s}s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )


def with_environment_tls(
    options: ChannelOptions, environ: Mapping[str, str] = os.environ
) -> ChannelOptions:
    """``options``, with TLS from ``SYMBI_GRPC_TLS_*`` when it has none of its own.

    A certificate goes with its key, and either needs the CA: anything else is refused with
    InvalidArgument naming the missing variable (a half-configured client would otherwise
    fall back to plaintext and fail with a less helpful handshake error)."""
    if options.tls:
        return options
    values = {name: environ.get(name) or None for name in TLS_ENVIRONMENT}
    files = {name: values[name] for name in TLS_ENVIRONMENT[:3]}
    if all(value is None for value in files.values()):
        return options
    missing = [name for name, value in files.items() if value is None]
    if missing:
        raise InvalidArgument(
            f"client TLS is half configured: set {' and '.join(missing)} too "
            f"(or unset {', '.join(TLS_ENVIRONMENT[:3])} for plaintext)",
            reason="CLIENT_TLS_INCOMPLETE",
            details={"missing": ",".join(missing)},
        )
    ca, cert, key = (Path(str(value)) for value in files.values())
    return dataclasses.replace(
        options,
        tls_ca_file=ca,
        tls_cert_file=cert,
        tls_key_file=key,
        tls_server_name=values["SYMBI_GRPC_TLS_SERVER_NAME"] or options.tls_server_name,
    )


def open_channel(target: str, options: ChannelOptions | None = None) -> grpc.aio.Channel:
    """An aio channel to ``host:port`` (also an async context manager that closes it); TLS
    from ``options``, else from the environment (see :func:`with_environment_tls`)."""
    options = with_environment_tls(options or ChannelOptions())
    channel_options: list[tuple[str, str | int]] = [
        ("grpc.service_config", _service_config(options)),
        ("grpc.enable_retries", 1),
        ("grpc.max_receive_message_length", options.max_message_bytes),
        ("grpc.max_send_message_length", options.max_message_bytes),
    ]
    interceptors = list(aio_client_interceptors()) if options.tracing else []  # type: ignore[no-untyped-call]
    if options.tls_ca_file is not None:
        if options.tls_server_name:
            channel_options.append(("grpc.ssl_target_name_override", options.tls_server_name))
        return grpc.aio.secure_channel(
            target, channel_credentials(options), options=channel_options, interceptors=interceptors
        )
    return grpc.aio.insecure_channel(target, options=channel_options, interceptors=interceptors)


def channel_credentials(options: ChannelOptions) -> grpc.ChannelCredentials:
    """TLS credentials from ``options``: the CA to trust and this client's certificate."""
    if options.tls_ca_file is None:
        raise ValueError("TLS credentials need tls_ca_file")
    return grpc.ssl_channel_credentials(
        root_certificates=options.tls_ca_file.read_bytes(),
        private_key=options.tls_key_file.read_bytes() if options.tls_key_file else None,
        certificate_chain=options.tls_cert_file.read_bytes() if options.tls_cert_file else None,
    )
