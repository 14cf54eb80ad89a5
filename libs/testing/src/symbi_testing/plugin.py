"""pytest plugin: fixtures that run the real parts.

- ``nats_server``: a fresh nats-server with JetStream (file store in a temp dir, fsync on every
  write, client and monitor on free ports) per test.
- ``nats_client`` / ``jetstream``: a connected nats-py client and its JetStream context.
- ``services``: a :class:`~symbi_testing.services.ServiceCluster` that starts services as
  processes against ``nats_server`` and stops them after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from symbi_common.jetstream.server import NatsServerConfig, NatsServerProcess
from symbi_testing.platform import LocalPlatform
from symbi_testing.principals import CryptoWorld
from symbi_testing.services import ServiceCluster


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServerProcess]:
    server = NatsServerProcess(NatsServerConfig(store_dir=tmp_path / "nats"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture
async def nats_client(nats_server: NatsServerProcess) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_server.url, name="symbi-test", max_reconnect_attempts=-1)
    try:
        yield client
    finally:
        if not client.is_closed:
            await client.close()


@pytest_asyncio.fixture
async def jetstream(nats_client: NatsClient) -> JetStreamContext:
    return nats_client.jetstream()


@pytest.fixture
def services(tmp_path: Path, nats_server: NatsServerProcess) -> Iterator[ServiceCluster]:
    cluster = ServiceCluster(tmp_path / "services", nats_server.url, nats_server.monitor_url)
    try:
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
def crypto_world() -> CryptoWorld:
    """An in-memory cluster root, keyring and principals (see symbi_testing.principals)."""
    return CryptoWorld()


@pytest.fixture
def local_platform(tmp_path: Path) -> Iterator[LocalPlatform]:
    """All seven services and NATS started with `symbi up --detach`; stopped afterwards."""
    platform = LocalPlatform(tmp_path / "symbi")
    platform.up()
    try:
        yield platform
    finally:
        platform.down()
