"""Real Docker (runc and runsc) for the sandbox's integration tests.

The images are built once (``build_images(if_missing=True)``, seconds when present). A
machine without Docker fails these tests with a message naming the setup script rather than
skipping them: the sandbox's claims rest on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from nats.js import api as js_api

from symbi_common.bus import PLATFORM_TOPIC, BusEndpoint, ConsumerSpec
from symbi_common.config import NatsSection
from symbi_common.jetstream import Provisioner
from symbi_common.jetstream.server import NatsServerProcess
from symbi_sandbox.channel import ChannelConfig, ChannelServer, EgressConfig
from symbi_sandbox.engine import DockerEngine
from symbi_sandbox.hardening import LABEL_NODE
from symbi_sandbox.images import build_images
from symbi_sandbox.runner import RunnerConfig
from symbi_sandbox.tiers import Tier
from symbi_testing import eventually
from symbi_testing.services import ServiceCluster

from .platform import AGENTS_PUBLIC, SchedulerStandIn

RUNTIMES = [pytest.param(Tier.DOCKER, id="runc"), pytest.param(Tier.GVISOR, id="runsc")]


@pytest.fixture(scope="session")
def docker_images() -> None:
    import docker

    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        pytest.fail(
            f"Docker is not reachable ({exc}); run scripts/ensure-host.sh (make host) first",
            pytrace=False,
        )
    try:
        build_images(client, if_missing=True)
    finally:
        client.close()


@pytest.fixture
def node_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def work_root() -> Iterator[Path]:
    # Short on purpose: the agent socket's path must stay under 108 bytes.
    path = Path(tempfile.mkdtemp(prefix="sbx-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def engine(docker_images: None, node_id: str) -> AsyncIterator[DockerEngine]:
    engine = await DockerEngine.connect()
    try:
        yield engine
        left = await engine.list_managed({LABEL_NODE: node_id})
        assert left == [], f"containers left behind: {[c.name for c in left]}"
    finally:
        for container in await engine.list_managed({LABEL_NODE: node_id}):
            await engine.remove(container.container_id)
        await engine.aclose()


@pytest.fixture
def runner_config(node_id: str, work_root: Path) -> RunnerConfig:
    return RunnerConfig(node_id=node_id, work_root=work_root, stop_grace_s=2.0)


@pytest.fixture
def channel_server(backend, egress_policy, audit, node_id: str) -> ChannelServer:  # type: ignore[no-untyped-def]
    config = ChannelConfig(egress=EgressConfig(allowed_networks=("127.0.0.0/8",)))
    return ChannelServer(
        backend, egress_policy=egress_policy, audit=audit, node_id=node_id, config=config
    )


@pytest_asyncio.fixture
async def scheduler(
    nats_server: NatsServerProcess, services: ServiceCluster
) -> AsyncIterator[SchedulerStandIn]:
    nc = await nats.connect(nats_server.url, max_reconnect_attempts=-1)
    js = nc.jetstream()
    await Provisioner(js, NatsSection()).provision()
    endpoint = await BusEndpoint.open(
        nc,
        js,
        services.authority.issue(f"svc-scheduler-{uuid.uuid4().hex[:6]}", "service"),
        manage_topics=(PLATFORM_TOPIC, AGENTS_PUBLIC),
    )
    stand_in = SchedulerStandIn(endpoint)
    tasks = [
        asyncio.create_task(endpoint.run()),
        asyncio.create_task(
            endpoint.bus.consume(
                ConsumerSpec.subscription(
                    "SYMBI_EVENTS",
                    ("symbi.task.status.*",),
                    "test-statuses",
                    deliver_policy=js_api.DeliverPolicy.ALL,
                ),
                stand_in.on_status,
            )
        ),
        asyncio.create_task(
            endpoint.bus.consume(
                ConsumerSpec.subscription(
                    "SYMBI_HEARTBEATS", ("symbi.node.heartbeat.*",), "test-heartbeats"
                ),
                stand_in.on_heartbeat,
            )
        ),
        asyncio.create_task(
            endpoint.bus.consume(
                ConsumerSpec.subscription(
                    "SYMBI_AUDIT",
                    ("symbi.audit.>",),
                    "test-audit",
                    deliver_policy=js_api.DeliverPolicy.ALL,
                ),
                stand_in.on_audit,
            )
        ),
    ]
    await eventually(lambda: endpoint.bus.groups.latest("platform") is not None, timeout=15)
    try:
        yield stand_in
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await nc.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A node's work root: short, because agent sockets live below it (sun_path: 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sbs-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
