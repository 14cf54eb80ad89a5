"""X.509 certificates for gRPC mTLS, and the caller they name.

The bus has its own Ed25519 root (``symbi_common.crypto``); TLS stacks need X.509, so gRPC has
a separate cluster CA (ECDSA P-256). Every certificate it issues names one principal in a URI
SAN, ``symbi://<role>/<principal_id>`` (roles as on the bus: service, node, agent, user …);
server certificates add the DNS names and IP addresses they are reached at. A certificate is
good for both ends of a connection (server and client authentication), so a service uses one
certificate to serve and to call other services.

Files, in a keys directory::

    grpc-ca.crt  grpc-ca.key           the CA (the key stays off the cluster)
    <principal>.crt  <principal>.key   a principal's certificate and key (0600)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from symbi_common.crypto.identity import PRINCIPAL_ID_RE, ROLES
from symbi_common.errors import AlreadyExists, InvalidArgument, NotFound

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "URI_SCHEME",
    "Caller",
    "IssuedCertificate",
    "TlsAuthority",
    "caller_from_auth_context",
    "caller_from_certificate",
]

CA_CERT_FILE = "grpc-ca.crt"
CA_KEY_FILE = "grpc-ca.key"
URI_SCHEME = "symbi"
#: The CA's validity; principals' certificates default to a year.
CA_VALIDITY_DAYS = 3650
MAX_VALIDITY_DAYS = 3650
_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Caller:
    """The principal on the other end of a gRPC connection, from its certificate's URI SAN."""

    role: str
    principal_id: str

    @property
    def uri(self) -> str:
        return f"{URI_SCHEME}://{self.role}/{self.principal_id}"

    @classmethod
    def parse(cls, uri: str) -> Caller | None:
        """``symbi://user/alice`` → Caller("user", "alice"); None for anything else."""
        prefix = f"{URI_SCHEME}://"
        if not uri.startswith(prefix):
            return None
        role, sep, principal_id = uri[len(prefix) :].partition("/")
        if not sep or role not in ROLES or not PRINCIPAL_ID_RE.match(principal_id):
            return None
        return cls(role, principal_id)


@dataclass(frozen=True)
class IssuedCertificate:
    """A principal's certificate and private key, PEM-encoded."""

    caller: Caller
    certificate_pem: bytes
    key_pem: bytes

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``<id>.crt`` and ``<id>.key`` (0600); refuses to overwrite either."""
        cert_path = directory / f"{self.caller.principal_id}.crt"
        key_path = directory / f"{self.caller.principal_id}.key"
        for path in (cert_path, key_path):
            if path.exists():
                raise AlreadyExists(
                    f"{path} exists; remove it first to issue a new certificate",
                    reason="TLS_CERTIFICATE_EXISTS",
                    details={"file": str(path)},
                )
        directory.mkdir(parents=True, exist_ok=True)
        _write_private(key_path, self.key_pem)
        _write_private(cert_path, self.certificate_pem)
        return cert_path, key_path


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class TlsAuthority:
    """The gRPC cluster CA: creates itself once, then issues principals' certificates."""

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.certificate = certificate
        self._key = key

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def create(
        cls, directory: Path, *, name: str = "Symbi gRPC CA", days: int = CA_VALIDITY_DAYS
    ) -> TlsAuthority:
        """A new CA written to ``directory``; AlreadyExists when one is there (never replaced:
        every certificate it issued would stop working)."""
        cert_path, key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
        for path in (cert_path, key_path):
            if path.exists():
                raise AlreadyExists(
                    f"{path} exists: the gRPC CA is already created (replacing it would "
                    "invalidate every certificate it issued)",
                    reason="TLS_CA_EXISTS",
                    details={"file": str(path)},
                )
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        _write_private(key_path, _key_pem(key))
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return cls(certificate, key)

    @classmethod
    def open(cls, directory: Path) -> TlsAuthority:
        """The CA in ``directory``; NotFound (with the command that creates it) when absent."""
        cert_path, key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
        if not (cert_path.is_file() and key_path.is_file()):
            raise NotFound(
                f"no gRPC CA in {directory} (need {CA_CERT_FILE} and {CA_KEY_FILE}); "
                "create it with `symbi keys tls-ca`",
                reason="TLS_CA_MISSING",
                details={"dir": str(directory)},
            )
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidArgument(
                f"{key_path}: not an ECDSA key",
                reason="TLS_CA_KEY",
                details={"file": str(key_path)},
            )
        return cls(certificate, key)

    def issue(
        self,
        principal_id: str,
        role: str,
        *,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        days: int = 365,
    ) -> IssuedCertificate:
        """A certificate for ``symbi://<role>/<principal_id>`` (plus DNS/IP SANs for a server)."""
        if role not in ROLES - {"root"}:
            raise InvalidArgument(
                f"unknown role {role!r}; use one of {', '.join(sorted(ROLES - {'root'}))}",
                reason="TLS_ROLE",
                details={"role": role},
            )
        if not PRINCIPAL_ID_RE.match(principal_id):
            raise InvalidArgument(
                f"principal id {principal_id!r}: use 1-128 letters, digits, '-' or '_'",
                reason="TLS_PRINCIPAL_ID",
                details={"principal": principal_id},
            )
        if not 1 <= days <= MAX_VALIDITY_DAYS:
            raise InvalidArgument(
                f"validity {days} days: use 1 to {MAX_VALIDITY_DAYS}",
                reason="TLS_VALIDITY",
                details={"days": str(days)},
            )
        names: list[x509.GeneralName] = [
            x509.UniformResourceIdentifier(Caller(role, principal_id).uri)
        ]
        names.extend(x509.DNSName(name) for name in dns_names)
        for address in ip_addresses:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(address)))
            except ValueError:
                raise InvalidArgument(
                    f"{address!r} is not an IP address",
                    reason="TLS_IP",
                    details={"ip": address},
                ) from None
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        ca_key_id = self.certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, principal_id)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(
                min(now + dt.timedelta(days=days), self.certificate.not_valid_after_utc)
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id), False
            )
            .sign(self._key, hashes.SHA256())
        )
        return IssuedCertificate(
            Caller(role, principal_id),
            certificate.public_bytes(serialization.Encoding.PEM),
            _key_pem(key),
        )


def _callers(uris: Iterable[str]) -> list[Caller]:
    return [caller for caller in map(Caller.parse, uris) if caller is not None]


def caller_from_certificate(pem: bytes) -> Caller | None:
    """The principal a certificate names (its one ``symbi://`` URI SAN); None when it names
    none or more than one (ambiguous certificates get no rights)."""
    certificate = x509.load_pem_x509_certificate(pem)
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    callers = _callers(san.get_values_for_type(x509.UniformResourceIdentifier))
    return callers[0] if len(callers) == 1 else None


def caller_from_auth_context(auth_context: Mapping[str, Iterable[bytes]]) -> Caller | None:
    """The principal of a gRPC peer, from ``context.auth_context()``: the verified peer
    certificate (``x509_pem_cert``), else its SAN entries; None without a client certificate."""
    pem = list(auth_context.get("x509_pem_cert", ()))
    if pem:
        return caller_from_certificate(pem[0])
    sans = [
        value.decode(errors="replace")
        for value in auth_context.get("x509_subject_alternative_name", ())
    ]
    callers = _callers(sans)
    return callers[0] if len(callers) == 1 else None
