"""Leader election over a CAS+TTL store: one leader, fast takeover, clean handover."""

from __future__ import annotations

import pytest

from symbi_common.errors import Aborted, ConfigError
from symbi_scheduler import LeaderElection, ManualClock
from symbi_scheduler.memory import InMemoryLeaseStore

TTL = 3.0
RENEW = 1.0


def election(store, clock, name: str) -> LeaderElection:
    return LeaderElection(store, clock, holder=name, ttl_s=TTL, renew_interval_s=RENEW)


async def test_fake_store_honours_cas_and_ttl() -> None:
    clock = ManualClock()
    kv = InMemoryLeaseStore(clock, ttl_s=TTL)
    rev = await kv.create("k", b"a")
    with pytest.raises(Aborted):
        await kv.create("k", b"b")
    with pytest.raises(Aborted):
        await kv.update("k", b"b", revision=rev + 1)
    rev2 = await kv.update("k", b"b", revision=rev)
    assert rev2 > rev
    clock.advance(TTL - 0.1)
    assert (await kv.get("k")).value == b"b"
    clock.advance(0.1)
    assert await kv.get("k") is None  # expired TTL after the last write
    rev3 = await kv.create("k", b"c")
    with pytest.raises(Aborted):
        await kv.delete("k", revision=rev2)
    await kv.delete("k", revision=rev3)
    assert await kv.get("k") is None


async def test_exactly_one_leader_and_takeover_within_a_few_seconds() -> None:
    clock = ManualClock()
    kv = InMemoryLeaseStore(clock, ttl_s=TTL)
    members = [election(kv, clock, f"s{i}") for i in range(3)]
    step = 0.25
    leaders_seen = []
    for _ in range(40):
        for m in members:
            await m.step()
        leaders = [m.holder for m in members if m.is_leader]
        assert len(leaders) <= 1
        leaders_seen.append(leaders[0] if leaders else None)
        clock.advance(step)
    assert set(leaders_seen) == {"s0"}
    term = members[0].term
    # s0 dies (stops renewing). Within ttl + renew interval a standby leads.
    dead = members.pop(0)
    died_at = clock.monotonic()
    took_over_at = None
    while took_over_at is None:
        for m in members:
            await m.step()
        assert sum(m.is_leader for m in members) + dead.is_leader <= 1
        if any(m.is_leader for m in members):
            took_over_at = clock.monotonic()
        clock.advance(step)
    assert took_over_at - died_at <= TTL + RENEW
    new = next(m for m in members if m.is_leader)
    assert new.term > term
    # the old leader's own view expired before the new one started
    assert not dead.is_leader


async def test_resign_hands_over_immediately() -> None:
    clock = ManualClock()
    kv = InMemoryLeaseStore(clock, ttl_s=TTL)
    a, b = election(kv, clock, "a"), election(kv, clock, "b")
    assert (await a.step()).leader
    standby = await b.step()
    assert not standby.leader
    assert standby.holder == "a"
    await a.resign()
    assert not a.is_leader
    got = await b.step()
    assert got.leader
    assert got.changed


async def test_renewal_failure_keeps_leading_until_the_lease_runs_out() -> None:
    clock = ManualClock()
    kv = InMemoryLeaseStore(clock, ttl_s=TTL)
    a = election(kv, clock, "a")
    await a.step()
    kv.unavailable = True
    clock.advance(RENEW)
    r = await a.step()
    assert r.leader
    assert not r.changed
    clock.advance(TTL - RENEW - a._margin)
    r = await a.step()
    assert not r.leader
    assert r.changed


async def test_lazy_ttl_store_is_taken_over_by_observation() -> None:
    class NoExpiry(InMemoryLeaseStore):
        def _live(self, key):
            if self.unavailable:
                raise AssertionError
            return self._entries.get(key)

    clock = ManualClock()
    kv = NoExpiry(clock, ttl_s=TTL)
    a, b = election(kv, clock, "a"), election(kv, clock, "b")
    await a.step()
    start = clock.monotonic()
    while not (await b.step()).leader:
        clock.advance(RENEW)
        assert clock.monotonic() - start < 3 * TTL
    assert clock.monotonic() - start <= TTL + a._margin + RENEW


async def test_a_stolen_lease_is_noticed_on_renewal() -> None:
    clock = ManualClock()
    kv = InMemoryLeaseStore(clock, ttl_s=TTL)
    a = election(kv, clock, "a")
    await a.step()
    current = await kv.get("scheduler-leader")
    await kv.update("scheduler-leader", b'{"holder": "x"}', revision=current.revision)
    r = await a.step()
    assert not r.leader
    assert r.changed


def test_lease_timing_is_checked() -> None:
    clock = ManualClock()
    kv = InMemoryLeaseStore(clock, ttl_s=TTL)
    with pytest.raises(ConfigError, match="at most half"):
        LeaderElection(kv, clock, holder="a", ttl_s=2, renew_interval_s=1.5)
