"""Idempotent provisioning of streams and KV buckets from their specs.

Every service provisions what it uses at start-up; several may do it at once, so a lost race
("already in use") is resolved by reading the winner's configuration and updating it when it
differs. A running stream is updated in place, never deleted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import BadRequestError, NotFoundError

from symbi_common.config import NatsSection
from symbi_common.errors import FailedPrecondition
from symbi_common.jetstream.spec import PLATFORM_BUCKETS, PLATFORM_STREAMS, BucketSpec, StreamSpec

__all__ = ["ProvisionReport", "Provisioner", "server_syncs_always"]

log = logging.getLogger(__name__)

_RETENTION = {
    "limits": js_api.RetentionPolicy.LIMITS,
    "workqueue": js_api.RetentionPolicy.WORK_QUEUE,
    "interest": js_api.RetentionPolicy.INTEREST,
}


@dataclass
class ProvisionReport:
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    sync_always: bool | None  # None: unknown (no monitor URL)


def server_syncs_always(monitor_url: str, timeout_s: float = 2.0) -> bool:
    """Whether the server fsyncs every JetStream write (``/varz`` → jetstream.config.sync_always)."""
    with urllib.request.urlopen(f"{monitor_url.rstrip('/')}/varz", timeout=timeout_s) as response:
        varz = json.load(response)
    return bool(varz.get("jetstream", {}).get("config", {}).get("sync_always", False))


class Provisioner:
    """Creates or updates the streams and buckets a process needs."""

    def __init__(self, js: JetStreamContext, section: NatsSection) -> None:
        self.js = js
        self.section = section

    def stream_name(self, spec: StreamSpec) -> str:
        return f"{self.section.name_prefix}_{spec.name}"

    def bucket_name(self, spec: BucketSpec) -> str:
        return f"{self.section.name_prefix.lower()}_{spec.name}"

    def _stream_config(self, spec: StreamSpec) -> js_api.StreamConfig:
        return js_api.StreamConfig(
            name=self.stream_name(spec),
            description=spec.description,
            subjects=list(spec.subjects),
            retention=_RETENTION[spec.retention],
            max_age=spec.max_age_s or None,
            max_bytes=spec.max_bytes,
            max_msgs_per_subject=spec.max_msgs_per_subject,
            max_msg_size=spec.max_msg_size,
            storage=js_api.StorageType.MEMORY if spec.memory else js_api.StorageType.FILE,
            num_replicas=self.section.replicas,
            duplicate_window=spec.duplicate_window_s,
            allow_rollup_hdrs=spec.allow_rollup,
            discard=js_api.DiscardPolicy.OLD,
        )

    @staticmethod
    def _differs(current: js_api.StreamConfig, wanted: js_api.StreamConfig) -> list[str]:
        fields = (
            "subjects",
            "retention",
            "max_age",
            "max_bytes",
            "max_msgs_per_subject",
            "max_msg_size",
            "num_replicas",
            "duplicate_window",
            "description",
            "allow_rollup_hdrs",
        )
        changed = []
        for name in fields:
            have, want = getattr(current, name), getattr(wanted, name)
            if name == "subjects":
                have, want = sorted(have or []), sorted(want or [])
            if name in ("max_age", "duplicate_window"):
                have, want = float(have or 0), float(want or 0)
            if have != want:
                changed.append(name)
        return changed

    async def ensure_stream(self, spec: StreamSpec) -> str:
        """Create or update one stream; returns "created", "updated" or "unchanged"."""
        wanted = self._stream_config(spec)
        for _ in range(3):  # a concurrent creator may win between our read and our write
            try:
                info = await self.js.stream_info(wanted.name or "")
            except NotFoundError:
                try:
                    await self.js.add_stream(wanted)
                    return "created"
                except BadRequestError as exc:
                    if "already in use" not in str(exc).lower():
                        raise
                    await asyncio.sleep(0.05)
                    continue
            changed = self._differs(info.config, wanted)
            if not changed:
                return "unchanged"
            log.info("updating stream %s: %s", wanted.name, ", ".join(changed))
            await self.js.update_stream(wanted)
            return "updated"
        raise FailedPrecondition(f"could not create or update stream {wanted.name}")

    async def ensure_bucket(self, spec: BucketSpec) -> str:
        name = self.bucket_name(spec)
        config = js_api.KeyValueConfig(
            bucket=name,
            description=spec.description,
            history=spec.history,
            ttl=spec.ttl_s or None,
            max_value_size=spec.max_value_size,
            storage=js_api.StorageType.FILE,
            replicas=self.section.replicas,
        )
        try:
            info = await self.js.stream_info(f"KV_{name}")
        except NotFoundError:
            try:
                await self.js.create_key_value(config)
                return "created"
            except BadRequestError as exc:
                if "already in use" not in str(exc).lower():
                    raise
                info = await self.js.stream_info(f"KV_{name}")
        current = info.config
        want_age = float(spec.ttl_s or 0)
        if (
            current.max_msgs_per_subject != spec.history
            or float(current.max_age or 0) != want_age
            or current.num_replicas != self.section.replicas
            or current.max_msg_size != spec.max_value_size
        ):
            log.info("updating bucket %s", name)
            current.max_msgs_per_subject = spec.history
            current.max_age = want_age or None
            current.num_replicas = self.section.replicas
            current.max_msg_size = spec.max_value_size
            await self.js.update_stream(current)
            return "updated"
        return "unchanged"

    async def check_sync(self) -> bool | None:
        """Whether the server syncs every write; None when it cannot be checked."""
        if not self.section.monitor_url:
            return None
        try:
            return await asyncio.to_thread(server_syncs_always, self.section.monitor_url)
        except OSError as exc:
            log.warning(
                "cannot read %s/varz to check JetStream sync: %s", self.section.monitor_url, exc
            )
            return None

    async def provision(
        self,
        streams: Iterable[StreamSpec] = PLATFORM_STREAMS,
        buckets: Iterable[BucketSpec] = PLATFORM_BUCKETS,
    ) -> ProvisionReport:
        """Ensure every stream and bucket; checks the server's sync setting first."""
        streams, buckets = tuple(streams), tuple(buckets)
        sync_always = await self.check_sync()
        needs_sync = any(s.durable for s in streams) or any(b.durable for b in buckets)
        if needs_sync and sync_always is False:
            message = (
                "the NATS server does not fsync every JetStream write (sync_interval is not 'always'): "
                "a crash can lose acknowledged work; set `jetstream { sync_interval: always }` in its config"
            )
            if self.section.require_sync_always:
                raise FailedPrecondition(message, reason="NATS_SYNC_NOT_ALWAYS")
            log.warning("%s", message)
        report = ProvisionReport([], [], [], sync_always)
        for spec in streams:
            outcome = await self.ensure_stream(spec)
            getattr(report, outcome).append(self.stream_name(spec))
        for bucket in buckets:
            outcome = await self.ensure_bucket(bucket)
            getattr(report, outcome).append(self.bucket_name(bucket))
        if report.created or report.updated:
            log.info("provisioned: created %s, updated %s", report.created, report.updated)
        return report
