"""The audit service process: the log, its ingest from the bus, checkpoints, and gRPC.

``build`` (before the process joins anything) loads the log's signing key — generating it on
first start — and writes the verifier key next to the store; a key of another log is a
configuration error (exit 2). ``start`` opens the store, then spawns the ingest consumer and
the checkpoint timer; ``close`` waits for the writer thread and closes the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from symbi.audit.v1 import audit_pb2, audit_pb2_grpc
from symbi_audit.authz import AUDIT_RULES
from symbi_audit.checkpoint import CheckpointPolicy
from symbi_audit.events import (
    CheckpointAnnouncer,
    IngestAlarms,
    Ingestor,
    ingest_consumer,
)
from symbi_audit.log import AuditLog
from symbi_audit.log_key import load_or_create_log_key, write_public_key
from symbi_audit.log_threads import LogThreads
from symbi_audit.note import NoteSigner
from symbi_audit.servicer import AuditServicer
from symbi_audit.settings import AuditSettings
from symbi_common.errors import SymbiError
from symbi_common.grpc.server import ServiceBinding
from symbi_common.jetstream.spec import PLATFORM_STREAMS, BucketSpec, StreamSpec
from symbi_common.runner import Runtime
from symbi_common.service import binding

__all__ = ["AuditService", "build"]

log = logging.getLogger(__name__)

_AUDIT_STREAM = next(s for s in PLATFORM_STREAMS if s.name == "AUDIT")
_HEALTH_COMPONENT = "audit-store"


class AuditService:
    """The :class:`~symbi_common.runner.Service` of the audit log."""

    def __init__(self, settings: AuditSettings, signer: NoteSigner) -> None:
        self.settings = settings
        self.signer = signer
        self.servicer = AuditServicer(settings.archive_dir)
        self.threads: LogThreads | None = None
        self.ingestor: Ingestor | None = None
        self.announcer: CheckpointAnnouncer | None = None

    def grpc_bindings(self) -> Sequence[ServiceBinding]:
        return [
            binding(
                audit_pb2,
                "AuditService",
                audit_pb2_grpc.add_AuditServiceServicer_to_server,
                self.servicer,
                rules=AUDIT_RULES,
            )
        ]

    def streams(self) -> Sequence[StreamSpec]:
        return ()  # the AUDIT stream is a platform stream

    def buckets(self) -> Sequence[BucketSpec]:
        return ()

    async def start(self, runtime: Runtime) -> None:
        section = self.settings.audit
        policy = CheckpointPolicy(
            every_entries=section.checkpoint_every_entries,
            every_seconds=section.checkpoint_every_seconds,
        )
        audit_log = await asyncio.to_thread(
            AuditLog.open, self.settings.store_path, signer=self.signer, policy=policy
        )
        threads = LogThreads(audit_log, readers=section.reader_threads)
        self.threads = threads
        bus = runtime.bus
        self.announcer = CheckpointAnnouncer(bus, audit_log.store.origin)
        self.ingestor = Ingestor(
            threads,
            bus,
            self.announcer,
            IngestAlarms(bus, rate=section.alarm_rate),
            verify_threads=section.verify_threads,
        )
        spec = ingest_consumer(
            runtime.provisioner.stream_name(_AUDIT_STREAM),
            self.settings.instance_id,
            batch=section.ingest_batch,
            ack_wait_s=section.ack_wait_s,
        )
        ingestor = self.ingestor
        self.servicer.attach(threads, lambda: ingestor.counts, spec.durable)
        await runtime.set_component_health(_HEALTH_COMPONENT, True)
        runtime.spawn(
            bus.consume_batches(spec, ingestor.handle, batch=section.ingest_batch),
            name="audit-ingest",
        )
        runtime.spawn(self._checkpoints(runtime), name="audit-checkpoints")
        log.info(
            "audit log %s open at %s: %d entries; key %s",
            audit_log.store.origin,
            self.settings.store_path,
            audit_log.store.size,
            self.signer.verifier,
        )

    async def _checkpoints(self, runtime: Runtime) -> None:
        """Sign checkpoints on time (the size rule also fires after each batch) and announce
        the latest one if its announcement failed or the process just started."""
        threads, announcer = self.threads, self.announcer
        assert threads is not None
        assert announcer is not None
        tick = min(max(self.settings.audit.checkpoint_every_seconds / 4, 0.05), 5.0)
        healthy = True
        while True:
            try:
                signed = await threads.write(threads.log.checkpoint_if_due)
                if signed is None:
                    signed = await threads.read(threads.log.store.latest_checkpoint)
                ok = True
            except (SymbiError, OSError) as exc:
                log.error("audit store cannot sign a checkpoint: %s", exc)
                signed, ok = None, False
            if ok != healthy:
                healthy = ok
                await runtime.set_component_health(_HEALTH_COMPONENT, ok)
            if signed is not None:
                await announcer.announce_quietly(signed)
            await asyncio.sleep(tick)

    async def close(self) -> None:
        if self.ingestor is not None:
            await asyncio.to_thread(self.ingestor.close)
        if self.threads is not None:
            await asyncio.to_thread(self.threads.close)


def build(settings: AuditSettings) -> AuditService:
    """The service, with its log key loaded (or generated) and its public key exported."""
    signer = load_or_create_log_key(settings.key_path, settings.log_origin)
    write_public_key(settings.audit_dir / "log.pub", signer)
    return AuditService(settings, signer)
