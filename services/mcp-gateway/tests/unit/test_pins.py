"""The in-memory pin store keeps the KV contract: create-if-absent, compare-and-set."""

from __future__ import annotations

import asyncio

import pytest

from symbi_common.errors import Aborted, AlreadyExists, InvalidArgument
from symbi_mcp_gateway import MemoryPinStore, ToolPin

PIN = ToolPin(
    server="s", tool="t", definition_hash="sha256:a", domain="d", key_fingerprint="sha256:k"
)


async def test_create_get_update_delete() -> None:
    store = MemoryPinStore()
    revision = await store.create(PIN)
    stored = await store.get("s/t")
    assert stored is not None
    assert stored.pin == PIN
    assert stored.revision == revision
    newer = PIN.with_changes(definition_hash="sha256:b")
    revision2 = await store.update(newer, revision=revision)
    assert revision2 > revision
    assert [pin.definition_hash for pin in await store.list()] == ["sha256:b"]
    assert await store.delete("s/t")
    assert not await store.delete("s/t")
    assert await store.get("s/t") is None


async def test_only_one_of_racing_creators_wins() -> None:
    store = MemoryPinStore()
    results = await asyncio.gather(*(store.create(PIN) for _ in range(5)), return_exceptions=True)
    assert sum(isinstance(r, int) for r in results) == 1
    assert sum(isinstance(r, AlreadyExists) for r in results) == 4


async def test_stale_update_is_aborted() -> None:
    store = MemoryPinStore()
    revision = await store.create(PIN)
    await store.update(PIN.with_changes(definition_hash="sha256:b"), revision=revision)
    with pytest.raises(Aborted):
        await store.update(PIN.with_changes(definition_hash="sha256:c"), revision=revision)


def test_json_round_trip() -> None:
    assert ToolPin.from_json(PIN.to_json()) == PIN
    with pytest.raises(InvalidArgument):
        ToolPin.from_json(b'{"server": 1}')
    with pytest.raises(InvalidArgument):
        ToolPin.from_json(b"[]")
