"""The bus between OS processes: each principal loads its own keys from files."""

from __future__ import annotations

import asyncio
import collections
import json
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest_asyncio

from symbi_common.bus import BusEndpoint, ClusterAuthority
from symbi_common.bus.directory import topic_token
from symbi_common.bus.permissions import inbox_prefix
from symbi_common.config import NatsSection
from symbi_common.errors import DeadlineExceeded
from symbi_common.jetstream import Provisioner
from symbi_common.jetstream.server import NatsServerProcess
from symbi_testing import eventually

PEER = Path(__file__).with_name("bus_peer.py")


@dataclass
class Peer:
    process: subprocess.Popen[str]
    lines: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=10_000))

    def start_reading(self) -> None:
        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line.rstrip())

        threading.Thread(target=read, daemon=True).start()

    def got(self) -> list[str]:
        return [line.removeprefix("GOT ") for line in list(self.lines) if line.startswith("GOT ")]


@dataclass
class Platform:
    url: str
    keys_dir: Path
    authority: ClusterAuthority
    endpoint: BusEndpoint
    peers: list[Peer] = field(default_factory=list)

    async def peer(self, principal: str, role: str, mode: str, *args: str) -> Peer:
        self.authority.issue(principal, role)
        process = subprocess.Popen(  # noqa: ASYNC220 (returns at once; output is read by a thread)
            [sys.executable, str(PEER), self.url, str(self.keys_dir), principal, mode, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        peer = Peer(process)
        peer.start_reading()
        self.peers.append(peer)
        await eventually(
            lambda: "READY" in peer.lines,
            timeout=30,
            message=f"{principal} ready; output {list(peer.lines)}",
        )
        # The peer's certificate reaches our keyring through the KV watch.
        await eventually(
            lambda: self.endpoint.bus.keyring.current(principal) is not None, timeout=10
        )
        return peer


@pytest_asyncio.fixture
async def platform(nats_server: NatsServerProcess, tmp_path: Path) -> AsyncIterator[Platform]:
    keys_dir = tmp_path / "keys"
    authority = ClusterAuthority.open(keys_dir)
    credentials = authority.issue("svc-test", "service")
    nc = await nats.connect(nats_server.url, inbox_prefix=inbox_prefix("svc-test"))
    js = nc.jetstream()
    await Provisioner(js, NatsSection()).provision()
    endpoint = await BusEndpoint.open(nc, js, credentials)
    runner = asyncio.create_task(endpoint.run())
    platform = Platform(nats_server.url, keys_dir, authority, endpoint)
    try:
        yield platform
    finally:
        for peer in platform.peers:
            peer.process.kill()
            peer.process.wait()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await nc.close()


async def platform_key_for(platform: Platform, peer_principal: str) -> None:
    """Wait until the topic manager has rotated the platform key to include the peer."""
    bus = platform.endpoint.bus

    async def member() -> bool:
        assert platform.endpoint.topic_keys is not None
        entry = await platform.endpoint.directory.groups_kv.get(f"meta.{topic_token('platform')}")
        state = json.loads(entry.value or b"{}")
        latest = bus.groups.latest("platform")
        # The peer is a member of the current generation, and we publish with that one.
        return (
            peer_principal in state.get("members", {})
            and latest is not None
            and latest[0] == state["generation"]
        )

    await eventually(member, timeout=15)


async def test_direct_message_between_processes(platform: Platform) -> None:
    peer = await platform.peer("svc-receiver", "service", "direct")
    for i in range(3):
        await platform.endpoint.bus.send("svc-receiver", f"hello {i}".encode())
    await eventually(
        lambda: len(peer.got()) == 3, timeout=15, message=f"3 messages; got {peer.got()}"
    )
    assert peer.got() == [f"svc-test hello {i}" for i in range(3)]


async def test_publish_subscribe_between_processes(platform: Platform) -> None:
    peer = await platform.peer("node-sub", "node", "subscribe", "symbi.agent.>", "sub-node")
    await platform_key_for(platform, "node-sub")
    await eventually(lambda: platform.endpoint.bus.groups.latest("platform") is not None)
    await platform.endpoint.bus.publish(
        "platform", b"transition", subject="symbi.agent.transition.a1"
    )
    await eventually(
        lambda: peer.got() == ["svc-test transition"], timeout=20, message=f"got {peer.got()}"
    )


async def test_request_reply_between_processes(platform: Platform) -> None:
    await platform.peer("svc-echo", "service", "serve", "symbi.rpc.echo.say")
    await platform_key_for(platform, "svc-echo")

    async def ask() -> bytes:
        try:
            reply = await platform.endpoint.bus.request(
                "symbi.rpc.echo.say", b"ping", topic="platform", timeout=3
            )
        except DeadlineExceeded as exc:  # the peer may not hold the newest group key yet
            raise AssertionError(exc.message) from None
        assert reply.sender == "svc-echo"
        return reply.payload

    assert await eventually(ask, timeout=20) == b"echo:ping"


async def test_work_queue_each_task_taken_once_under_two_consumers(platform: Platform) -> None:
    workers = [
        await platform.peer(
            f"node-w{i}", "node", "work", "SYMBI_TASKS", "symbi.task.pool", "pool-workers"
        )
        for i in range(2)
    ]
    for worker in ("node-w0", "node-w1"):
        await platform_key_for(platform, worker)
    # platform.peer returned once each peer printed READY: both consumers are bound.
    tasks = [f"task-{i}" for i in range(60)]
    await asyncio.gather(
        *(
            platform.endpoint.bus.publish("platform", t.encode(), subject="symbi.task.pool")
            for t in tasks
        )
    )

    def taken() -> list[str]:
        return [line.split(" ", 1)[1] for w in workers for line in w.got()]

    await eventually(
        lambda: len(taken()) >= len(tasks), timeout=30, message=f"{len(taken())} taken"
    )
    assert sorted(taken()) == sorted(tasks)  # every task exactly once
    assert all(w.got() for w in workers) or len(tasks) < 2  # both consumers shared the work
