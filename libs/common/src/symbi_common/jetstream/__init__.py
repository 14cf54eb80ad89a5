"""NATS JetStream plumbing: connection with backoff, the platform's subjects, streams and
buckets, and idempotent provisioning."""

from symbi_common.jetstream.connection import ConnectionOptions, NatsClient, connect
from symbi_common.jetstream.provision import Provisioner, ProvisionReport, server_syncs_always
from symbi_common.jetstream.spec import (
    PLATFORM_BUCKETS,
    PLATFORM_STREAMS,
    BucketSpec,
    StreamSpec,
    Subjects,
)

__all__ = [
    "PLATFORM_BUCKETS",
    "PLATFORM_STREAMS",
    "BucketSpec",
    "ConnectionOptions",
    "NatsClient",
    "ProvisionReport",
    "Provisioner",
    "StreamSpec",
    "Subjects",
    "connect",
    "server_syncs_always",
]
