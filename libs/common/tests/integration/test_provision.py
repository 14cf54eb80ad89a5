"""Provisioning on a real NATS: idempotent, updates in place, checks the sync setting."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from nats.js import JetStreamContext

from symbi_common.config import NatsSection
from symbi_common.errors import FailedPrecondition
from symbi_common.jetstream import PLATFORM_BUCKETS, PLATFORM_STREAMS, Provisioner
from symbi_common.jetstream.server import NatsServerConfig, NatsServerProcess


async def test_provisioning_is_idempotent(
    nats_server: NatsServerProcess, jetstream: JetStreamContext
) -> None:
    section = NatsSection(url=nats_server.url, monitor_url=nats_server.monitor_url)
    provisioner = Provisioner(jetstream, section)
    first = await provisioner.provision()
    assert sorted(first.created) == sorted(
        [f"SYMBI_{s.name}" for s in PLATFORM_STREAMS]
        + [f"symbi_{b.name}" for b in PLATFORM_BUCKETS]
    )
    second = await provisioner.provision()
    assert second.created == []
    assert second.updated == []
    assert len(second.unchanged) == len(first.created)
    info = await jetstream.stream_info("SYMBI_TASKS")
    assert info.config.retention == "workqueue"  # nats-py gives str-valued enums or plain str
    assert info.config.storage == "file"


async def test_changed_spec_updates_the_stream_in_place(
    nats_server: NatsServerProcess, jetstream: JetStreamContext
) -> None:
    provisioner = Provisioner(jetstream, NatsSection(url=nats_server.url))
    audit = next(s for s in PLATFORM_STREAMS if s.name == "AUDIT")
    await provisioner.provision([audit], [])
    await jetstream.publish("symbi.audit.test", b"kept")
    longer = replace(audit, max_age_s=audit.max_age_s * 2)
    assert await provisioner.ensure_stream(longer) == "updated"
    info = await jetstream.stream_info("SYMBI_AUDIT")
    assert info.config.max_age == longer.max_age_s
    assert info.state.messages == 1  # updated, not recreated


async def test_server_that_syncs_every_write_is_detected(
    nats_server: NatsServerProcess, jetstream: JetStreamContext
) -> None:
    report = await Provisioner(
        jetstream, NatsSection(monitor_url=nats_server.monitor_url)
    ).provision()
    assert report.sync_always is True


async def test_server_without_sync_always_is_refused_when_required(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import nats

    with NatsServerProcess(
        NatsServerConfig(store_dir=tmp_path / "lazy", sync_always=False)
    ) as lazy:
        client = await nats.connect(lazy.url)
        try:
            js = client.jetstream()
            strict = NatsSection(monitor_url=lazy.monitor_url, require_sync_always=True)
            with pytest.raises(FailedPrecondition, match="sync_interval"):
                await Provisioner(js, strict).provision()
            with caplog.at_level(logging.WARNING):
                report = await Provisioner(
                    js, NatsSection(monitor_url=lazy.monitor_url)
                ).provision()
            assert report.sync_always is False
            assert "does not fsync every JetStream write" in caplog.text
        finally:
            await client.close()
