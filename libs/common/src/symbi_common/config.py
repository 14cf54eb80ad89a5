"""Settings of every Symbi process: defaults < TOML file < environment.

The TOML file is ``$SYMBI_CONFIG_PATH``, else ``/etc/symbi/config.toml`` when it exists. The
sections of the original runtime (``[runtime] [security] [context] [mcp]``) are accepted as
they were; Symbi adds ``[nats] [grpc] [telemetry] [bus]`` and one section per service. Every
key can be set from the environment as ``SYMBI_<SECTION>__<KEY>`` (``SYMBI_NATS__URL``);
top-level keys as ``SYMBI_<KEY>`` (``SYMBI_LOG_LEVEL``).

Invalid configuration raises :class:`~symbi_common.errors.ConfigError` whose message names the
key, the value, where it came from and what is allowed; ``__main__`` modules turn it into exit
status 2 without a traceback (see :func:`load_settings`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from symbi_common.errors import ConfigError

__all__ = [
    "CONFIG_PATH_ENV",
    "DEFAULT_CONFIG_PATH",
    "BusSection",
    "ContextSection",
    "GrpcSection",
    "McpSection",
    "NatsSection",
    "RuntimeSection",
    "Section",
    "SecuritySection",
    "ServiceSettings",
    "TelemetrySection",
    "config_path",
    "load_settings",
    "parse_byte_size",
]

CONFIG_PATH_ENV = "SYMBI_CONFIG_PATH"
DEFAULT_CONFIG_PATH = Path("/etc/symbi/config.toml")
ENV_PREFIX = "SYMBI_"
ENV_NESTED_DELIMITER = "__"

#: Every top-level section any Symbi process reads. A TOML file shared by all services may
#: hold all of them; a key outside this list is a typo and stops the process.
KNOWN_SECTIONS: frozenset[str] = frozenset(
    {
        "runtime",
        "security",
        "context",
        "mcp",
        "nats",
        "grpc",
        "telemetry",
        "bus",
        "scheduler",
        "lifecycle",
        "policy",
        "audit",
        "sandbox",
        "mcp_gateway",
    }
)

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "K": 1000,
    "KB": 1000,
    "KIB": 1024,
    "M": 1000**2,
    "MB": 1000**2,
    "MIB": 1024**2,
    "G": 1000**3,
    "GB": 1000**3,
    "GIB": 1024**3,
    "T": 1000**4,
    "TB": 1000**4,
    "TIB": 1024**4,
}


def parse_byte_size(value: object) -> int:
    """``"1GB"`` → 1_000_000_000, ``"512MiB"`` → 536_870_912, ``4096`` → 4096."""
    if isinstance(value, bool):
        raise ValueError("a size must be a number of bytes or a string like '512MiB'")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if match:
            number, unit = match.groups()
            factor = _SIZE_UNITS.get((unit or "").upper())
            if factor is not None:
                return int(float(number) * factor)
    raise ValueError("a size must be a number of bytes or a string like '1GB' or '512MiB'")


ByteSize = Annotated[int, BeforeValidator(parse_byte_size)]


class Section(BaseModel):
    """A TOML section: unknown keys are errors (they are almost always typos)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RuntimeSection(Section):
    """``[runtime]`` of the original runtime."""

    max_concurrent_agents: int = Field(10_000, ge=1, le=1_000_000)
    scheduler_threads: int = Field(8, ge=1, le=1024)
    message_buffer_size: ByteSize = Field(1_048_576, ge=1024)
    gc_interval_ms: int = Field(100, ge=1)


class SecuritySection(Section):
    """``[security]``: sandbox tier default, enforcement switches, key material."""

    default_sandbox_tier: Literal["docker", "gvisor"] = "gvisor"
    enforce_policies: bool = True
    audit_enabled: bool = True
    # Accepted for compatibility with the original runtime's files; Symbi's crypto is PyNaCl
    # (Ed25519, X25519) and OpenSSL through `cryptography` (AES-256-GCM, HKDF) whatever it says.
    crypto_provider: Literal["ring", "pynacl", "openssl"] = "ring"
    #: Directory holding this principal's keys and certificate (see symbi_common.crypto).
    keys_dir: Path | None = None
    #: The cluster root's public key certificate file; verifiers check chains up to it.
    root_certificate: Path | None = None


class ContextSection(Section):
    """``[context]`` of the original runtime."""

    vector_db_url: str | None = None
    embedding_dimension: int = Field(384, ge=8, le=8192)
    context_cache_size: ByteSize = Field(1_000_000_000, ge=0)
    knowledge_retention_days: int = Field(365, ge=1)


class McpSection(Section):
    """``[mcp]`` of the original runtime. The gateway extends it with its server list."""

    model_config = ConfigDict(extra="allow", frozen=True)  # the gateway's own keys

    discovery_enabled: bool = True
    tool_verification: Literal["strict", "permissive", "development"] = "strict"
    connection_timeout_s: float = Field(30.0, gt=0, le=3600)
    max_concurrent_connections: int = Field(100, ge=1, le=10_000)


class NatsSection(Section):
    """``[nats]``: how this process reaches NATS JetStream."""

    url: str = "nats://127.0.0.1:4222"
    #: NKey seed file of this principal (NATS connection authentication).
    nkey_seed_file: Path | None = None
    connect_timeout_s: float = Field(2.0, gt=0, le=60)
    #: Replicas of the platform's streams and buckets (3 in a cluster).
    replicas: int = Field(1, ge=1, le=5)
    #: The server's HTTP monitoring URL; when set, provisioning checks that JetStream syncs
    #: every write to disk (``sync_interval: always``).
    monitor_url: str | None = None
    #: Refuse to start when the server is known not to sync every write.
    require_sync_always: bool = False
    #: Prefix of stream and bucket names; tests use it to isolate runs on one server.
    name_prefix: str = Field("SYMBI", pattern=r"^[A-Za-z0-9_-]{1,32}$")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        for server in value.split(","):
            if not re.match(r"^(nats|tls|ws|wss)://[^\s/]+$", server.strip()):
                raise ValueError("must be nats://host:port (comma-separated for a cluster)")
        return value


class GrpcSection(Section):
    """``[grpc]``: the process's gRPC listener."""

    host: str = "127.0.0.1"
    port: int = Field(50051, ge=0, le=65535)  # 0: any free port (printed in the ready line)
    grace_s: float = Field(5.0, ge=0, le=300)
    max_message_bytes: ByteSize = Field(16 * 1024 * 1024, ge=1024)
    max_concurrent_rpcs: int = Field(1000, ge=1)
    #: Unary calls that arrive without a deadline get this one (streams are not limited).
    default_deadline_s: float = Field(60.0, gt=0, le=3600)
    #: mTLS from the cluster's gRPC CA: all three set → TLS, client certificates required and
    #: only callers with the roles service, node or user let through (ADR 0012); none set →
    #: plaintext. Anything in between is refused.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = Field(None, validate_default=True)
    tls_ca_file: Path | None = Field(None, validate_default=True)
    #: Dev only: listen on a non-loopback host without TLS (anyone who can reach the port can
    #: call every API). Without it such a listener refuses to start.
    allow_insecure: bool = Field(False, validate_default=True)

    @field_validator("tls_key_file", "tls_ca_file")
    @classmethod
    def _check_tls_complete(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        # Fields validate in order, so the earlier tls_* keys are in info.data by now.
        if info.field_name == "tls_key_file":
            if (value is None) != (info.data.get("tls_cert_file") is None):
                missing = "tls_key_file" if value is None else "tls_cert_file"
                raise ValueError(
                    f"grpc.tls_cert_file and grpc.tls_key_file go together; set grpc.{missing} "
                    "too (or neither, for plaintext on a loopback host)"
                )
        elif (value is None) != (info.data.get("tls_cert_file") is None):
            raise ValueError(
                "mTLS needs grpc.tls_ca_file with grpc.tls_cert_file and grpc.tls_key_file; "
                "set all three (or none, for plaintext on a loopback host)"
            )
        return value

    @field_validator("allow_insecure")
    @classmethod
    def _check_exposure(cls, value: bool, info: ValidationInfo) -> bool:
        host = info.data.get("host")
        if value or host is None or "tls_ca_file" not in info.data:
            return value  # allowed, or an earlier key is already invalid
        if info.data["tls_ca_file"] is None and not _is_loopback(host):
            raise ValueError(
                f"gRPC would listen on {host} without TLS, open to anyone who can reach it; "
                "set grpc.tls_cert_file, grpc.tls_key_file and grpc.tls_ca_file, or "
                "grpc.allow_insecure = true (dev only)"
            )
        return value

    @property
    def mtls(self) -> bool:
        """TLS with client certificates (and the caller check) is on."""
        return self.tls_cert_file is not None and self.tls_ca_file is not None


class TelemetrySection(Section):
    """``[telemetry]``: logs, traces and metrics."""

    metrics_enabled: bool = True
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9464, ge=0, le=65535)  # 0: any free port
    #: OTLP/gRPC endpoint for traces (e.g. http://jaeger:4317); off when unset.
    otlp_endpoint: str | None = None
    trace_sample_ratio: float = Field(1.0, ge=0.0, le=1.0)


class BusSection(Section):
    """``[bus]``: the secure bus (envelopes, limits, replay protection)."""

    #: Largest envelope accepted on consume (and produced on publish).
    max_envelope_bytes: ByteSize = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    #: How far a sender's clock may be ahead of ours, and how late after its TTL we still accept.
    clock_skew_s: float = Field(30.0, ge=0, le=3600)
    #: Default time to live of events and requests.
    default_ttl_s: float = Field(300.0, gt=0, le=7 * 86_400)
    #: Time to live of audit events: they wait in the stream through an audit-service outage.
    audit_ttl_s: float = Field(7 * 86_400.0, gt=0, le=7 * 86_400)
    #: Default time to live of direct messages (they may wait for an offline recipient).
    direct_ttl_s: float = Field(86_400.0, gt=0, le=7 * 86_400)
    #: Per-sender token bucket on consume: messages per second and burst (0 disables).
    rate_per_sender: float = Field(5_000.0, ge=0)
    rate_burst: float = Field(10_000.0, ge=1)
    #: Message ids remembered per consumer to drop replays and redeliveries.
    seen_set_size: int = Field(200_000, ge=1000)
    #: Pull consumers: messages fetched per request, and unacknowledged messages in flight.
    fetch_batch: int = Field(256, ge=1, le=10_000)
    max_ack_pending: int = Field(4096, ge=1)
    ack_wait_s: float = Field(30.0, gt=0)
    max_deliver: int = Field(10, ge=1)
    #: How long a publisher waits for a topic's group key to arrive before failing.
    group_key_wait_s: float = Field(10.0, ge=0)
    #: Audit events for refused envelopes, per second per (reason, sender).
    reject_audit_rate: float = Field(5.0, ge=0)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def config_path() -> Path | None:
    """The TOML file to read: ``$SYMBI_CONFIG_PATH``, else the default when it exists."""
    explicit = os.environ.get(CONFIG_PATH_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(
                f"{CONFIG_PATH_ENV}={explicit!r}: no such file; point it at a TOML file or unset it",
                reason="CONFIG_FILE_MISSING",
                details={"key": CONFIG_PATH_ENV, "value": explicit},
            )
        return path
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


class _CheckedTomlSource(TomlConfigSettingsSource):
    """TOML source that refuses unknown top-level keys and unreadable files with clear errors."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        self.path = path
        if path is not None:
            try:
                with path.open("rb") as handle:
                    tomllib.load(handle)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(
                    f"{path}: not valid TOML: {exc}",
                    reason="CONFIG_NOT_TOML",
                    details={"file": str(path)},
                ) from None
            except OSError as exc:
                raise ConfigError(
                    f"{path}: cannot read: {exc.strerror}",
                    reason="CONFIG_UNREADABLE",
                    details={"file": str(path)},
                ) from None
        super().__init__(settings_cls, toml_file=path)

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        allowed = KNOWN_SECTIONS | set(self.settings_cls.model_fields)
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(
                f"{self.path}: unknown key {unknown[0]!r}; allowed top-level keys and sections: "
                + ", ".join(sorted(allowed)),
                reason="CONFIG_UNKNOWN_KEY",
                details={"key": unknown[0], "file": str(self.path)},
            )
        return data


class ServiceSettings(BaseSettings):
    """Settings every Symbi process has. Services subclass it and add their own section."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    #: The service this process is ("policy", "audit", ...); set by the service's subclass.
    service_name: ClassVar[str] = "symbi"

    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["console", "json"] = "console"
    runtime_mode: Literal["development", "production"] = "development"
    #: Where this process keeps local state (keys, embedded stores).
    data_dir: Path = Path(".symbi")
    #: Unique id of this process among replicas; the principal id on the bus.
    instance_id: str = Field(default_factory=lambda: socket.gethostname().split(".")[0])

    runtime: RuntimeSection = RuntimeSection()
    security: SecuritySection = SecuritySection()
    context: ContextSection = ContextSection()
    mcp: McpSection = McpSection()
    nats: NatsSection = NatsSection()
    grpc: GrpcSection = GrpcSection()
    telemetry: TelemetrySection = TelemetrySection()
    bus: BusSection = BusSection()

    #: Role of this process's principal on the bus ("service"; the sandbox is a "node").
    principal_role: ClassVar[str] = "service"

    @field_validator("instance_id")
    @classmethod
    def _check_instance_id(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_-]{1,64}$", value):
            raise ValueError(
                "must be 1-64 letters, digits, '-' or '_' (it becomes a NATS subject token)"
            )
        return value

    @property
    def principal_id(self) -> str:
        """This process's identity on the bus: ``svc-<service>-<instance>`` (``node-<instance>``
        for a worker node)."""
        if self.principal_role == "node":
            return f"node-{self.instance_id}"
        return f"svc-{self.service_name}-{self.instance_id}"

    @property
    def keys_dir(self) -> Path:
        """Where this principal's key, certificate and NKey seed are (``security.keys_dir``,
        else ``<data_dir>/keys``)."""
        return self.security.keys_dir or self.data_dir / "keys"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest precedence first: explicit arguments, environment, the TOML file.
        return (init_settings, env_settings, _CheckedTomlSource(settings_cls, config_path()))


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def _env_name(loc: Iterable[str | int]) -> str:
    parts = [str(p).upper() for p in loc]
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(parts)


def _lookup(data: Mapping[str, Any], loc: tuple[str | int, ...]) -> tuple[bool, Any]:
    node: Any = data
    for part in loc:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


def _describe(exc: ValidationError, settings_cls: type[ServiceSettings]) -> str:
    """One line per problem: key = value (source): what is allowed."""
    path = config_path()
    toml_data: dict[str, Any] = {}
    if path is not None:
        with path.open("rb") as handle:
            toml_data = tomllib.load(handle)
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = ".".join(str(p) for p in loc)
        env_name = _env_name(loc)
        if env_name in os.environ:
            source = f"from environment {env_name}"
            value: Any = os.environ[env_name]
        else:
            found, value = _lookup(toml_data, loc)
            source = f"from {path}" if found else "default"
            if not found:
                value = error.get("input")
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            section = settings_cls.model_fields.get(str(loc[0])) if loc else None
            allowed = ""
            annotation = section.annotation if section is not None else None
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                allowed = "; allowed keys: " + ", ".join(sorted(annotation.model_fields))
            message = f"unknown key{allowed}"
        lines.append(f"{key} = {value!r} ({source}): {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(settings_cls: type[SettingsT], **overrides: Any) -> SettingsT:
    """Build settings, turning every validation problem into one :class:`ConfigError`."""
    try:
        return settings_cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, settings_cls), reason="CONFIG_INVALID") from None


def exit_on_config_error(error: ConfigError, program: str) -> None:
    """Print a configuration error the way every Symbi process does, and exit with status 2."""
    sys.stderr.write(f"{program}: {error.message}\n")
    raise SystemExit(2)
