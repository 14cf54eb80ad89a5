"""I/O limits: the egress byte bucket (fake clock), limit resolution, the disk throttle's
container flags, the disk's discovery and the runner's refusals (fake engine)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from symbi.common.v1 import common_pb2
from symbi_common.errors import FailedPrecondition, InvalidArgument
from symbi_sandbox.blockdev import BlockDevice, NoBlockDevice, find_block_device
from symbi_sandbox.channel.bandwidth import ByteRateLimiter, bytes_per_second
from symbi_sandbox.convert import limits_from_proto
from symbi_sandbox.engine import EngineInfo
from symbi_sandbox.hardening import build_container_spec
from symbi_sandbox.runner import SandboxRunner
from symbi_sandbox.task import LimitPolicy, ResolvedLimits, ResourceLimits, TaskSpec
from symbi_sandbox.tiers import Tier

from .test_runner import FakeChannels, FakeEngine, config, spec


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_mbps_are_megabits() -> None:
    assert bytes_per_second(8) == 1_000_000
    assert bytes_per_second(0) == 0


def test_bucket_lets_the_burst_through_then_holds_to_the_rate() -> None:
    clock = FakeClock()
    bucket = ByteRateLimiter(1000, 500, clock=clock)
    assert bucket.reserve(500) == 0.0  # the burst
    assert bucket.reserve(250) == pytest.approx(0.25)  # in debt: wait until repaid
    assert bucket.reserve(250) == pytest.approx(0.5)  # the next taker waits behind it
    clock.now += 0.5
    assert bucket.tokens == pytest.approx(0.0)
    clock.now += 10
    assert bucket.tokens == pytest.approx(500)  # never more than the burst saved up


async def test_acquire_over_many_chunks_takes_size_over_rate() -> None:
    clock = FakeClock()
    bucket = ByteRateLimiter(125_000, 64 * 1024, clock=clock, sleep=clock.sleep)
    start = clock.now
    total = 4 * 1024 * 1024
    for _ in range(total // (64 * 1024)):
        await bucket.acquire(64 * 1024)
    elapsed = clock.now - start
    assert elapsed == pytest.approx((total - 64 * 1024) / 125_000)
    assert bucket.waited_s == pytest.approx(elapsed)


async def test_concurrent_takers_share_one_rate() -> None:
    clock = FakeClock()
    bucket = ByteRateLimiter(1000, 100, clock=clock, sleep=clock.sleep)
    bucket.reserve(100)  # empty
    # Two tunnels, both directions: all four waits are against the same balance.
    delays = [bucket.reserve(100) for _ in range(4)]
    assert delays == pytest.approx([0.1, 0.2, 0.3, 0.4])


async def test_cancelled_acquire_keeps_the_bytes_taken() -> None:
    bucket = ByteRateLimiter(1000, 10)
    waiter = asyncio.ensure_future(bucket.acquire(1010))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert bucket.tokens < -900


def test_bucket_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="rate"):
        ByteRateLimiter(0, 10)
    with pytest.raises(ValueError, match="burst"):
        ByteRateLimiter(10, 0)


def test_io_limits_resolve_and_convert() -> None:
    policy = LimitPolicy(
        default=dataclasses.replace(LimitPolicy().default, disk_io_mbps=0, network_io_mbps=50)
    )
    resolved = policy.resolve(ResourceLimits(disk_io_mbps=16))
    assert (resolved.disk_io_mbps, resolved.network_io_mbps) == (16, 50)
    assert policy.resolve(ResourceLimits()).disk_io_mbps == 0  # 0: unlimited
    with pytest.raises(InvalidArgument, match="network_io_mbps"):
        ResourceLimits(network_io_mbps=-1)
    # Zero in the proto is "the platform default", as for every other limit.
    limits = limits_from_proto(common_pb2.ResourceLimits(disk_io_mbps=8, network_io_mbps=0))
    assert (limits.disk_io_mbps, limits.network_io_mbps) == (8, None)


def _spec(limits: ResolvedLimits, disk: str | None) -> dict[str, object]:
    return build_container_spec(
        TaskSpec(task_id="t1", agent_id="a", image="symbi/busybox"),
        tier=Tier.DOCKER,
        runtime="runc",
        limits=limits,
        node_id="n",
        instance_id="i",
        uid=200000,
        disk_device=disk,
    ).create_kwargs()


def test_disk_limit_throttles_reads_and_writes_of_the_disk() -> None:
    base = ResolvedLimits(
        memory_mb=64, cpu_millicores=500, max_processes=8, timeout_s=5, tmpfs_mb=8
    )
    kw = _spec(dataclasses.replace(base, disk_io_mbps=8), "/dev/vda")
    assert kw["device_read_bps"] == [{"Path": "/dev/vda", "Rate": 1_000_000}]
    assert kw["device_write_bps"] == [{"Path": "/dev/vda", "Rate": 1_000_000}]
    unlimited = _spec(base, "/dev/vda")
    assert "device_read_bps" not in unlimited
    assert "device_write_bps" not in unlimited
    with pytest.raises(ValueError, match="disk"):
        _spec(dataclasses.replace(base, disk_io_mbps=8), None)


def test_no_block_device_says_why(tmp_path: Path) -> None:
    with pytest.raises(NoBlockDevice, match="cannot stat"):
        find_block_device(str(tmp_path / "missing"))
    with pytest.raises(NoBlockDevice, match="proc filesystem without a block device"):
        find_block_device("/proc")
    # A device number sysfs does not list as a block device.
    with pytest.raises(NoBlockDevice, match="not a block device"):
        find_block_device(str(tmp_path), sys_root=tmp_path / "nosys")


DISK = BlockDevice("/dev/vdz", 254, 0)


def _with_root(engine: FakeEngine) -> FakeEngine:
    original = engine.info

    async def info() -> EngineInfo:
        return dataclasses.replace(await original(), docker_root_dir="/var/lib/docker")

    engine.info = info  # type: ignore[method-assign]
    return engine


async def test_disk_limit_runs_on_runc_and_is_refused_on_gvisor(tmp_path: Path) -> None:
    engine, channels = _with_root(FakeEngine()), FakeChannels()
    cfg = config(tmp_path, find_disk=lambda root: DISK)
    async with SandboxRunner(engine, cfg, channels=channels) as runner:
        assert runner.disk_io_tiers == {Tier.DOCKER}
        assert (await runner.node_info()).disk_io_tiers == (Tier.DOCKER,)
        limited = ResourceLimits(disk_io_mbps=8)
        execution = await runner.start(spec("t1", "sleep", tier=Tier.DOCKER, limits=limited))
        created = engine.containers[execution.container_id or ""].spec
        assert created is not None
        assert created.create_kwargs()["device_read_bps"][0]["Path"] == "/dev/vdz"
        await runner.stop("t1", grace_s=0)
        with pytest.raises(FailedPrecondition, match="disk_io_mbps = 8 cannot be enforced") as err:
            await runner.start(spec("t2", "exit", "0", limits=limited))  # default tier: gvisor
        assert err.value.reason == "DISK_IO_LIMIT_UNAVAILABLE"
        assert "gvisor" in err.value.message
    assert engine.containers == {}


async def test_disk_limit_refused_without_a_block_device(tmp_path: Path) -> None:
    def nothing(root: str) -> BlockDevice:
        raise NoBlockDevice(f"{root} is on tmpfs")

    engine = _with_root(FakeEngine())
    default = dataclasses.replace(LimitPolicy().default, disk_io_mbps=100)
    cfg = config(tmp_path, find_disk=nothing, limits=LimitPolicy(default=default))
    async with SandboxRunner(engine, cfg, channels=FakeChannels()) as runner:
        assert runner.disk_io_tiers == frozenset()
        with pytest.raises(FailedPrecondition, match="on tmpfs"):
            await runner.start(
                spec("t1", "exit", "0", tier=Tier.DOCKER, limits=ResourceLimits(disk_io_mbps=8))
            )
        # The node's own default is applied where it can be, not a reason to refuse tasks.
        result = await runner.run(spec("t2", "exit", "0", tier=Tier.DOCKER))
        assert result.succeeded
    assert engine.containers == {}


async def test_network_limit_reaches_the_channel(tmp_path: Path) -> None:
    channels = FakeChannels()
    async with SandboxRunner(FakeEngine(), config(tmp_path), channels=channels) as runner:
        await runner.run(spec("t1", "exit", "0", limits=ResourceLimits(network_io_mbps=8)))
        await runner.run(spec("t2", "exit", "0"))
    assert channels.rates == [1_000_000, 0]
