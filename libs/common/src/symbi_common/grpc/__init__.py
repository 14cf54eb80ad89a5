"""gRPC for Symbi services: a server factory with health, reflection, error mapping, metrics and
tracing; a client channel factory with retries and deadlines; SymbiError ↔ status mapping."""

from symbi_common.grpc.client import ChannelOptions, open_channel
from symbi_common.grpc.server import GrpcServer, ServiceBinding
from symbi_common.grpc.status import ERROR_METADATA_KEY, error_from_rpc, error_info

__all__ = [
    "ERROR_METADATA_KEY",
    "ChannelOptions",
    "GrpcServer",
    "ServiceBinding",
    "error_from_rpc",
    "error_info",
    "open_channel",
]
