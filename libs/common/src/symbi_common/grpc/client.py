"""Client channels to Symbi services: retries on UNAVAILABLE, a default deadline, tracing.

Use as an async context manager (the channel closes on exit)::

    async with open_channel("127.0.0.1:50051") as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        try:
            result = await stub.Evaluate(request, timeout=1.0)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from None
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

__all__ = ["ChannelOptions", "channel_credentials", "open_channel"]


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


def open_channel(target: str, options: ChannelOptions | None = None) -> grpc.aio.Channel:
    """An aio channel to ``host:port`` (also an async context manager that closes it)."""
    options = options or ChannelOptions()
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
