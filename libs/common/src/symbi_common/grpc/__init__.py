"""gRPC for Symbi services: a server factory with health, reflection, error mapping, metrics,
tracing and (with mTLS) the caller's principal; a client channel factory with retries and
deadlines; SymbiError ↔ status mapping; the X.509 CA that issues gRPC certificates."""

from symbi_common.grpc.auth import CONTROL_PLANE_ROLES, caller
from symbi_common.grpc.client import ChannelOptions, open_channel
from symbi_common.grpc.server import GrpcServer, ServiceBinding
from symbi_common.grpc.status import ERROR_METADATA_KEY, error_from_rpc, error_info
from symbi_common.grpc.tls import Caller, TlsAuthority

__all__ = [
    "CONTROL_PLANE_ROLES",
    "ERROR_METADATA_KEY",
    "Caller",
    "ChannelOptions",
    "GrpcServer",
    "ServiceBinding",
    "TlsAuthority",
    "caller",
    "error_from_rpc",
    "error_info",
    "open_channel",
]
