"""mTLS material for tests: a gRPC CA in a temp directory, and certificates issued from it."""

from __future__ import annotations

from pathlib import Path

from symbi_common.grpc import ChannelOptions
from symbi_common.grpc.tls import CA_CERT_FILE, TlsAuthority

__all__ = ["TestTls"]


class TestTls:
    """A test cluster's gRPC CA; hands out server settings and client channel options."""

    __test__ = False  # not a test class, whatever pytest's name matching thinks

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.authority = TlsAuthority.create(directory)
        self.ca_file = directory / CA_CERT_FILE

    def issue(self, principal_id: str, role: str, *, server: bool = False) -> tuple[Path, Path]:
        """``<id>.crt`` and ``<id>.key``; a server certificate also names localhost and
        127.0.0.1 (where test processes listen)."""
        issued = self.authority.issue(
            principal_id,
            role,
            dns_names=("localhost",) if server else (),
            ip_addresses=("127.0.0.1",) if server else (),
        )
        return issued.write(self.directory)

    def server_env(self, principal_id: str = "svc-test") -> dict[str, str]:
        """Environment that turns a service process's gRPC listener to mTLS."""
        cert, key = self.issue(principal_id, "service", server=True)
        return {
            "SYMBI_GRPC__TLS_CERT_FILE": str(cert),
            "SYMBI_GRPC__TLS_KEY_FILE": str(key),
            "SYMBI_GRPC__TLS_CA_FILE": str(self.ca_file),
        }

    def client(self, principal_id: str, role: str) -> ChannelOptions:
        """Channel options presenting a new certificate for ``principal_id`` in ``role``."""
        cert, key = self.issue(principal_id, role)
        return ChannelOptions(
            tls_ca_file=self.ca_file, tls_cert_file=cert, tls_key_file=key, max_attempts=2
        )
