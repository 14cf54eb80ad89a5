"""``python -m symbi_common.grpc.probe``: a readiness/liveness probe for a service listening
with mTLS (Kubernetes' own gRPC probe speaks plaintext only).

It reads the process's settings as the service does (``SYMBI_CONFIG_PATH``, ``SYMBI_GRPC__*``),
asks the health service on the loopback address, presenting the service's own certificate,
and exits 0 when SERVING, 1 otherwise (2 on invalid configuration). The server's certificate is
checked against the name it carries itself (its first DNS name) unless it names 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys

from cryptography import x509

from symbi_common.config import ServiceSettings, exit_on_config_error, load_settings
from symbi_common.errors import ConfigError
from symbi_common.grpc.client import ChannelOptions
from symbi_common.grpc.health import check_health

__all__ = ["main"]

_LOOPBACK = ipaddress.ip_address("127.0.0.1")


def _server_name(pem: bytes) -> str | None:
    certificate = x509.load_pem_x509_certificate(pem)
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    if _LOOPBACK in san.get_values_for_type(x509.IPAddress):
        return None
    names = san.get_values_for_type(x509.DNSName)
    return names[0] if names else None


def main(timeout_s: float = 3.0) -> int:
    try:
        settings = load_settings(ServiceSettings)
    except ConfigError as error:
        exit_on_config_error(error, "symbi-probe")
    grpc = settings.grpc
    tls: ChannelOptions | None = None
    if grpc.mtls:
        assert grpc.tls_cert_file is not None  # mtls: all three files are set
        try:
            server_name = _server_name(grpc.tls_cert_file.read_bytes())
        except (OSError, ValueError) as exc:
            sys.stderr.write(f"symbi-probe: grpc.tls_cert_file = {grpc.tls_cert_file}: {exc}\n")
            return 1
        tls = ChannelOptions(
            tls_ca_file=grpc.tls_ca_file,
            tls_cert_file=grpc.tls_cert_file,
            tls_key_file=grpc.tls_key_file,
            tls_server_name=server_name,
        )
    status = asyncio.run(check_health(f"127.0.0.1:{grpc.port}", timeout_s=timeout_s, tls=tls))
    sys.stdout.write(f"{status}\n")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
