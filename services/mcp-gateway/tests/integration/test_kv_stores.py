"""The pin store and the server registry over a real JetStream KV bucket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from symbi_common.config import NatsSection
from symbi_common.errors import Aborted, AlreadyExists, FailedPrecondition
from symbi_common.jetstream import Provisioner
from symbi_mcp_gateway import McpServerConfig, ToolPin
from symbi_mcp_gateway.approvals import ApprovalBook, digest_of_id
from symbi_mcp_gateway.kv_approvals import KvApprovalStore, approvals_bucket
from symbi_mcp_gateway.kv_pins import PINS_BUCKET, KvPinStore, pin_key
from symbi_mcp_gateway.kv_servers import SERVERS_BUCKET, KvServerRegistry
from symbi_testing.eventually import eventually

PIN = ToolPin(server="s", tool="a.b/c d", definition_hash="sha256:a", domain="d.example")


async def _bucket(jetstream: JetStreamContext, spec: object) -> KeyValue:
    provisioner = Provisioner(jetstream, NatsSection())
    await provisioner.provision((), (spec,))  # type: ignore[arg-type]
    return await jetstream.key_value(provisioner.bucket_name(spec))  # type: ignore[arg-type]


@pytest.fixture
async def pins_kv(jetstream: JetStreamContext) -> KeyValue:
    return await _bucket(jetstream, PINS_BUCKET)


@pytest.fixture
def pin_store(jetstream: JetStreamContext, pins_kv: KeyValue) -> Callable[[], KvPinStore]:
    """A new store (another replica) on the pins bucket."""
    name = Provisioner(jetstream, NatsSection()).bucket_name(PINS_BUCKET)
    return lambda: KvPinStore(pins_kv, jetstream, name)


@contextlib.asynccontextmanager
async def following(store: KvPinStore, seen: list[str]) -> AsyncIterator[None]:
    ready = asyncio.Event()
    task = asyncio.create_task(store.follow(seen.append, ready=ready))
    try:
        async with asyncio.timeout(10):
            await ready.wait()
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_pins_keep_the_kv_contract(pin_store: Callable[[], KvPinStore]) -> None:
    store = pin_store()
    assert await store.get(PIN.tool_id) is None
    assert await store.list() == []
    revision = await store.create(PIN)
    with pytest.raises(AlreadyExists):
        await store.create(PIN)
    stored = await store.get(PIN.tool_id)
    assert stored is not None
    assert stored.pin == PIN
    assert stored.revision == revision
    newer = PIN.with_changes(definition_hash="sha256:b", approved_by="alice")
    await store.update(newer, revision=revision)
    with pytest.raises(Aborted):
        await store.update(PIN, revision=revision)  # stale
    other = ToolPin(server="s", tool="z", definition_hash="sha256:z")
    await store.create(other)
    assert await store.list() == [newer, other]
    assert await store.delete(PIN.tool_id)
    assert not await store.delete(PIN.tool_id)
    assert await store.list() == [other]
    # A deleted pin can be created again (trust on first use once more).
    await store.create(PIN)
    # Keys are valid KV keys whatever the tool name holds.
    assert pin_key(PIN.tool_id).startswith("pin.")
    assert " " not in pin_key(PIN.tool_id)


async def test_only_one_of_racing_replicas_pins(pin_store: Callable[[], KvPinStore]) -> None:
    stores = [pin_store() for _ in range(4)]
    results = await asyncio.gather(*(s.create(PIN) for s in stores), return_exceptions=True)
    assert sum(isinstance(r, int) for r in results) == 1
    assert sum(isinstance(r, AlreadyExists) for r in results) == 3


async def test_a_replica_hears_of_other_replicas_changes_only(
    pin_store: Callable[[], KvPinStore],
) -> None:
    mine, theirs = pin_store(), pin_store()
    seen: list[str] = []
    await theirs.create(ToolPin(server="s", tool="old", definition_hash="sha256:o"))
    async with following(mine, seen):
        revision = await mine.create(PIN)  # its own write: not news
        await theirs.create(ToolPin(server="t", tool="x", definition_hash="sha256:x"))
        await eventually(lambda: seen == ["t/x"], timeout=5)
        stored = await theirs.get(PIN.tool_id)
        assert stored is not None
        assert stored.revision == revision
        await theirs.update(PIN.with_changes(approved_by="bob"), revision=revision)
        await theirs.delete("t/x")
        await eventually(lambda: seen == ["t/x", PIN.tool_id, "t/x"], timeout=5)


async def test_registered_servers_are_shared(jetstream: JetStreamContext) -> None:
    registry = KvServerRegistry(await _bucket(jetstream, SERVERS_BUCKET))
    config = McpServerConfig(name="tools", url="http://127.0.0.1:9/mcp", trust_mode="development")
    assert await registry.add(config)
    assert not await registry.add(config)  # the same again: nothing to do
    with pytest.raises(AlreadyExists):
        await registry.add(config.model_copy(update={"url": "http://127.0.0.1:10/mcp"}))
    assert await registry.get("tools") == config

    added: list[McpServerConfig] = []
    removed: list[str] = []

    async def on_added(server: McpServerConfig) -> None:
        added.append(server)

    async def on_removed(name: str) -> None:
        removed.append(name)

    task = asyncio.create_task(registry.follow(on_added, on_removed))
    try:
        await eventually(lambda: added == [config], timeout=5)  # what is there already
        assert await registry.remove("tools")
        assert not await registry.remove("tools")
        await eventually(lambda: removed == ["tools"], timeout=5)
        assert await registry.add(config)  # registered again after a removal
        await eventually(lambda: added == [config, config], timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_approvals_over_kv_two_replicas_consume_once(jetstream: JetStreamContext) -> None:
    spec = approvals_bucket(60)
    provisioner = Provisioner(jetstream, NatsSection())
    await provisioner.provision((), (spec,))
    name = provisioner.bucket_name(spec)
    kv = await jetstream.key_value(name)
    store_a = KvApprovalStore(kv, jetstream, name)
    store_b = KvApprovalStore(await jetstream.key_value(name), jetstream, name)
    assert await store_a.list() == []

    async def sink(_: object) -> None:
        return None

    books = [ApprovalBook(store, ttl_s=60, emit=sink, alert=sink) for store in (store_a, store_b)]
    args = "sha256:" + "3" * 64
    with pytest.raises(FailedPrecondition) as refused:
        await books[0].gate("agent-a", "srv", "tool", args)
    approval_id = refused.value.details["approval_id"]
    assert [a.approval_id for a in await store_b.list()] == [approval_id]
    await books[1].decide(approval_id, approve=True, actor="op")
    stored = await store_a.get(digest_of_id(approval_id))
    assert stored is not None
    # A stale revision loses: the compare-and-set both replicas rely on.
    await store_a.update(
        stored.approval.consume(stored.approval.created_at_ms), revision=stored.revision
    )
    with pytest.raises(Aborted):
        await store_b.update(stored.approval, revision=stored.revision)
    # Consumed by one: the other replica's gate asks for a new approval.
    with pytest.raises(FailedPrecondition) as again:
        await books[1].gate("agent-a", "srv", "tool", args)
    assert again.value.details["approval_id"] != approval_id
