"""Settings of the audit service (see symbi_common.config for the shared sections).

``[audit]`` in the TOML file, ``SYMBI_AUDIT__<KEY>`` in the environment::

    [audit]
    origin = "audit.example.com/prod"      # the log's name; default symbi.audit/<instance>
    key_file = "/etc/symbi/audit-log.key"  # default <data_dir>/audit/log.key (made on first start)
    checkpoint_every_entries = 1000
    checkpoint_every_seconds = 5.0
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from symbi_common.config import BusSection, GrpcSection, Section, ServiceSettings, TelemetrySection

__all__ = ["AuditBusSection", "AuditSection", "AuditSettings"]

_ORIGIN = re.compile(r"^[^\s+]{1,200}$")


class AuditSection(Section):
    """``[audit]``: the log's identity and key, checkpoints, ingest and read concurrency."""

    #: The log's name: the checkpoint origin and the name of its signing key. Each replica
    #: keeps its own log and needs its own origin; empty means ``symbi.audit/<instance id>``.
    origin: str = ""
    #: The log's signing key (C2SP note encoding, ``symbi audit keygen``). Empty means
    #: ``<data_dir>/audit/log.key``, generated on first start; the verifier key is written
    #: next to it as ``log.pub``.
    key_file: Path | None = None
    #: The SQLite store; empty means ``<data_dir>/audit/audit.db``.
    store_path: Path | None = None
    #: Where ``Archive`` writes retention segments; empty means ``<data_dir>/audit/archive``.
    archive_dir: Path | None = None
    #: Sign a checkpoint after this many new entries, or after this many seconds when
    #: anything new arrived.
    checkpoint_every_entries: int = Field(1000, ge=1, le=10_000_000)
    checkpoint_every_seconds: float = Field(5.0, gt=0, le=86_400)
    #: Events fetched and appended per transaction (one fsync per batch).
    ingest_batch: int = Field(500, ge=1, le=10_000)
    #: How long JetStream waits for this replica's ack before redelivering (after a crash
    #: the unacknowledged tail comes back after this long).
    ack_wait_s: float = Field(10.0, ge=1, le=3600)
    #: Threads that check publisher signatures of a batch in parallel.
    verify_threads: int = Field(2, ge=1, le=64)
    #: Threads that serve reads (queries, proofs, exports) concurrently with ingest.
    reader_threads: int = Field(4, ge=1, le=64)
    #: Audit events the service emits about unverified or malformed input, per second per
    #: (sender, problem); the rest are counted and summarised in the next one.
    alarm_rate: float = Field(1.0, ge=0)

    @field_validator("origin")
    @classmethod
    def _check_origin(cls, value: str) -> str:
        if value and not _ORIGIN.match(value):
            raise ValueError(
                "must be 1-200 characters without spaces or '+' (e.g. audit.example.com/prod)"
            )
        return value


class AuditBusSection(BusSection):
    """``[bus]`` of the audit service: what the bus refuses on consume is lost to the log.

    - No per-sender rate limit: a refused audit event is terminated, i.e. never recorded.
      Publishers are authenticated platform principals; a flood is bounded by the stream's
      limits instead.
    - The longest lateness the envelope check allows (one hour): audit envelopes carry the
      bus's default time to live (minutes), so after an outage of the audit service longer
      than that its backlog would be refused as expired. Accepting late envelopes costs no
      safety here: a replayed audit event is recognised by its id and never appended twice.

    See docs/adr/0031-audit-ingest.md.
    """

    rate_per_sender: float = Field(0.0, ge=0)
    clock_skew_s: float = Field(3600.0, ge=0, le=3600)


class AuditSettings(ServiceSettings):
    service_name: ClassVar[str] = "audit"

    grpc: GrpcSection = GrpcSection(port=50054)
    telemetry: TelemetrySection = TelemetrySection(metrics_port=9467)
    bus: AuditBusSection = AuditBusSection()
    audit: AuditSection = AuditSection()

    @property
    def log_origin(self) -> str:
        """The configured origin, or ``symbi.audit/<instance id>``."""
        return self.audit.origin or f"symbi.audit/{self.instance_id}"

    @property
    def audit_dir(self) -> Path:
        """``<data_dir>/audit``: the store and the generated key live here."""
        return self.data_dir / "audit"

    @property
    def key_path(self) -> Path:
        """The log's signing key file."""
        return self.audit.key_file or self.audit_dir / "log.key"

    @property
    def archive_dir(self) -> Path:
        """Where retention segments go."""
        return self.audit.archive_dir or self.audit_dir / "archive"

    @property
    def store_path(self) -> Path:
        """The SQLite store file."""
        return self.audit.store_path or self.audit_dir / "audit.db"
