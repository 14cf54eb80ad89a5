"""An immutable mapping whose updates copy only what they touch.

Engine states are immutable and a new one is built per change; with 10,000 agents a state
holds ~70,000 policies by id, 10,000 documents and 10,000 entities. Copying those dicts per
change would make every write O(everything). :class:`PersistentMap` keeps its entries in a
fixed number of shards (by key hash); :meth:`PersistentMap.evolve` returns a new map that
shares every shard it did not touch with the old one, so an update costs O(changed keys ×
shard size) — a few hundred entries at these sizes — and the old map stays valid for
whoever still reads it (a decision on the state in force while the next one is built).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

__all__ = ["PersistentMap"]

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

_SHARDS = 256  # a power of two: the shard of a key is hash(key) & (_SHARDS - 1)
_MASK = _SHARDS - 1
#: The one empty shard every map starts from; shards are never mutated once shared.
_EMPTY: dict[Any, Any] = {}


class PersistentMap(Mapping[K, V], Generic[K, V]):
    """A read-only mapping; :meth:`evolve` makes changed copies that share structure.

    Iteration order is unspecified (it depends on the process's string hashing): sort
    wherever order matters. Never mutate the shards: they are shared between maps.
    """

    __slots__ = ("_len", "_shards")

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        shards: list[dict[K, V]] = [_EMPTY] * _SHARDS
        pairs = items.items() if isinstance(items, Mapping) else items
        for key, value in pairs:
            index = hash(key) & _MASK
            shard = shards[index]
            if shard is _EMPTY:
                shard = shards[index] = {}
            shard[key] = value
        self._shards: tuple[dict[K, V], ...] = tuple(shards)
        self._len = sum(len(s) for s in shards)

    def __getitem__(self, key: K) -> V:
        return self._shards[hash(key) & _MASK][key]

    @overload
    def get(self, key: K, /) -> V | None: ...

    @overload
    def get(self, key: K, default: V | T, /) -> V | T: ...

    def get(self, key: K, default: object = None, /) -> object:
        return self._shards[hash(key) & _MASK].get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._shards[hash(key) & _MASK]

    def __iter__(self) -> Iterator[K]:
        for shard in self._shards:
            yield from shard

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"PersistentMap({len(self)} entries)"

    def evolve(
        self, updates: Mapping[K, V] | None = None, removals: Iterable[K] = ()
    ) -> PersistentMap[K, V]:
        """A new map: this one with ``updates`` set and then ``removals`` removed (absent
        keys are skipped). Shards no key falls into are shared, not copied."""
        copied: dict[int, dict[K, V]] = {}

        def writable(index: int) -> dict[K, V]:
            shard = copied.get(index)
            if shard is None:
                shard = copied[index] = dict(self._shards[index])
            return shard

        size = self._len
        for key, value in (updates or {}).items():
            shard = writable(hash(key) & _MASK)
            size += key not in shard
            shard[key] = value
        for key in removals:
            index = hash(key) & _MASK
            current = copied.get(index)
            if key in (self._shards[index] if current is None else current):
                del writable(index)[key]
                size -= 1
        if not copied:
            return self
        result = PersistentMap.__new__(PersistentMap)
        shards = list(self._shards)
        for index, shard in copied.items():
            shards[index] = shard if shard else _EMPTY
        result._shards = tuple(shards)
        result._len = size
        return result
