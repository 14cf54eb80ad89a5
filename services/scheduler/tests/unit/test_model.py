"""The task model: validation up front, limits, codec, and the package's public surface."""

from __future__ import annotations

import inspect

import pytest

import symbi_scheduler
from symbi_common.errors import (
    AlreadyExists,
    ConfigError,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
)
from symbi_scheduler import (
    LimitOptions,
    NodeCapacity,
    Priority,
    QueueOptions,
    ResourceRequest,
    SandboxTier,
    SchedulerOptions,
    TaskRecord,
    TaskSpec,
    TaskState,
    decode_record,
    encode_record,
)


def test_public_names_are_curated() -> None:
    public = {
        name
        for name in dir(symbi_scheduler)
        if not name.startswith("_")
        and name != "annotations"
        and not inspect.ismodule(getattr(symbi_scheduler, name))
    }
    assert set(symbi_scheduler.__all__) == public
    assert sorted(symbi_scheduler.__all__) == symbi_scheduler.__all__


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"memory_mb": 0, "cpu_millicores": 100}, "memory_mb"),
        ({"memory_mb": -5, "cpu_millicores": 100}, "memory_mb"),
        ({"memory_mb": 64, "cpu_millicores": 0}, "cpu_millicores"),
        ({"memory_mb": 64, "cpu_millicores": 100, "disk_io_mbps": -1}, "disk_io_mbps"),
        ({"memory_mb": 64, "cpu_millicores": 100, "network_io_mbps": -1}, "network_io_mbps"),
        ({"memory_mb": 64, "cpu_millicores": 100, "execution_timeout_s": 0}, "execution_timeout_s"),
        (
            {"memory_mb": 64, "cpu_millicores": 100, "execution_timeout_s": float("inf")},
            "execution_timeout_s",
        ),
        ({"memory_mb": 1.5, "cpu_millicores": 100}, "memory_mb"),
        ({"memory_mb": True, "cpu_millicores": 100}, "memory_mb"),
    ],
)
def test_non_positive_or_malformed_limits_are_invalid(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        ResourceRequest(**kwargs)
    assert field in err.value.message
    assert err.value.details["field"] == field


def test_cpu_in_cores_becomes_millicores() -> None:
    assert ResourceRequest.of(memory_mb=128, cpu_cores=1.5).cpu_millicores == 1500
    assert ResourceRequest.of(memory_mb=128, cpu_cores=0.25).vector == (128, 250, 0, 0)


def test_unknown_tier_and_priority_name_what_is_allowed() -> None:
    with pytest.raises(
        InvalidArgument, match=r"unknown sandbox tier 'kata'; allowed: docker, gvisor"
    ):
        TaskSpec("t1", "a1", ResourceRequest(64, 100), tier="kata")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="allowed: critical, high, normal, low"):
        TaskSpec("t1", "a1", ResourceRequest(64, 100), priority="urgent")  # type: ignore[arg-type]
    assert Priority.parse("HIGH") is Priority.HIGH
    assert Priority.parse(0) is Priority.CRITICAL
    assert SandboxTier.parse(" gVisor ") is SandboxTier.GVISOR


@pytest.mark.parametrize("bad", ["", "a.b", "a b", "*", "-x", "x" * 129, "tâche"])
def test_ids_must_be_subject_safe(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="task_id"):
        TaskSpec(bad, "agent", ResourceRequest(64, 100))


def test_labels_are_validated() -> None:
    with pytest.raises(InvalidArgument, match="node_selector"):
        TaskSpec("t", "a", ResourceRequest(64, 100), node_selector={"zone": "a b"})
    s = TaskSpec("t", "a", ResourceRequest(64, 100), node_selector={"zone": "eu-1", "gpu": "no"})
    assert list(s.node_selector) == ["gpu", "zone"]


async def test_hard_limits_reject_at_submission(make_harness) -> None:
    h = make_harness(
        SchedulerOptions(limits=LimitOptions(max_memory_mb=1024, max_execution_timeout_s=60))
    )
    await h.start()
    with pytest.raises(InvalidArgument, match="memory_mb 2048 exceeds the limit of 1024"):
        await h.core.submit(h.spec("big", mem=2048))
    with pytest.raises(InvalidArgument, match="execution_timeout_s 61"):
        await h.core.submit(h.spec("slow", timeout=61))
    big = TaskSpec(
        "p", "a", ResourceRequest(64, 100, execution_timeout_s=1), payload=b"x" * (256 * 1024 + 1)
    )
    with pytest.raises(InvalidArgument, match="payload bytes 262145 exceeds the limit of 262144"):
        await h.core.submit(big)
    assert len(h.journal) == 0


async def test_unplaceable_requests_fail_at_once_naming_why(harness) -> None:
    h = harness
    await h.start(h.hb("n1", mem=4096, tiers=["docker"]), h.hb("n2", mem=8192, tiers=["docker"]))
    # Before nodes have had a heartbeat timeout to report, size checks are not trusted.
    await h.core.submit(h.spec("early", mem=100_000))
    h.clock.advance(h.options.nodes.timeout_s)
    with pytest.raises(FailedPrecondition, match="exceeds every matching node; largest is n2"):
        await h.core.submit(h.spec("huge", mem=16_384))
    with pytest.raises(FailedPrecondition, match="no reachable node offers sandbox tier gvisor"):
        await h.core.submit(h.spec("iso", tier="gvisor"))
    with pytest.raises(FailedPrecondition, match="carries labels gpu=yes"):
        await h.core.submit(h.spec("gpu", selector={"gpu": "yes"}))
    assert h.core.task("early").state is TaskState.QUEUED
    with pytest.raises(Exception, match="not known"):
        h.core.task("huge")


async def test_disk_limited_task_on_a_tier_no_node_throttles_fails_at_once(harness) -> None:
    h = harness
    await h.start(
        h.hb("n1", tiers=["docker", "gvisor"], disk_io_tiers=["docker"]),
        h.hb("n2", tiers=["gvisor"], disk_io_tiers=[]),
    )
    h.clock.advance(h.options.nodes.timeout_s)
    with pytest.raises(
        FailedPrecondition,
        match="no reachable node enforces a disk I/O limit on sandbox tier gvisor",
    ):
        await h.core.submit(h.spec("iso-disk", tier="gvisor", disk=50))
    await h.submit(h.spec("runc-disk", disk=50), h.spec("iso", tier="gvisor"))
    await h.cycle()
    assert (h.node_of("runc-disk"), h.node_of("iso")) == ("n1", "n1")
    with pytest.raises(FailedPrecondition, match="enforces its disk I/O limit carries labels"):
        await h.core.submit(h.spec("x", disk=50, selector={"zone": "eu"}))


async def test_disk_limited_task_waits_for_an_older_node_that_does_not_say(harness) -> None:
    h = harness
    # n-old reports no disk_io_tiers (older than the field): unknown, so it may be placed there.
    await h.start(h.hb("n-old", tiers=["gvisor"]))
    h.clock.advance(h.options.nodes.timeout_s)
    await h.submit(h.spec("iso-disk", tier="gvisor", disk=50))
    await h.cycle()
    assert h.node_of("iso-disk") == "n-old"


async def test_task_accepted_then_infeasible_fails_instead_of_waiting_forever(make_harness) -> None:
    h = make_harness(SchedulerOptions(infeasible_timeout_s=30))
    await h.start(h.hb("n1", mem=1024))
    await h.submit(h.spec("t", mem=2048))  # accepted during warm-up
    await h.cycle()
    assert h.state("t") == "queued"
    h.clock.advance(31)
    report = await h.cycle()
    assert report.failed == ["t"]
    final = h.core.task("t")
    assert final.state is TaskState.FAILED
    assert "exceeds every matching node" in final.reason
    assert [t.kind.value for t in h.lifecycle.transitions] == ["failed"]
    assert h.journal.record("t") is None


async def test_resubmission_is_idempotent_and_conflicts_are_refused(harness) -> None:
    h = harness
    await h.start()
    first = await h.core.submit(h.spec("t"))
    again = await h.core.submit(h.spec("t"))
    assert again == first
    with pytest.raises(AlreadyExists):
        await h.core.submit(h.spec("t", mem=1024))


async def test_queue_bound(make_harness) -> None:
    h = make_harness(SchedulerOptions(queue=QueueOptions(max_queued=2)))
    await h.start()
    await h.submit(h.spec("a"), h.spec("b"))
    with pytest.raises(ResourceExhausted, match="queue is full"):
        await h.core.submit(h.spec("c"))


def test_codec_round_trip_and_rejects_garbage() -> None:
    rec = TaskRecord(
        spec=TaskSpec(
            "t1",
            "a1",
            ResourceRequest(256, 250, 5, 0, 30.5),
            priority=Priority.HIGH,
            tier=SandboxTier.GVISOR,
            node_selector={"zone": "a"},
            preemptible=False,
            metadata={"image": "busybox"},
            payload=b"\x00\xffrun-spec",
        ),
        state=TaskState.STOPPING,
        seq=7,
        enqueued_at=1.5,
        updated_at=2.5,
        attempt=2,
        node_id="n1",
        dispatch_id="t1-2",
        tried_nodes=("n0",),
        preempts=("x",),
        last_preempted_at=2.0,
        reason="preempted",
        exit_code=137,
    )
    assert decode_record(encode_record(rec)) == rec
    with pytest.raises(InvalidArgument, match="not JSON"):
        decode_record(b"\xff")
    with pytest.raises(InvalidArgument, match="format"):
        decode_record(b'{"v": 99}')
    with pytest.raises(InvalidArgument, match="malformed"):
        decode_record(b'{"v": 1, "spec": {}}')
    bad_payload = encode_record(rec).replace(b'"payload":"', b'"payload":"*')
    with pytest.raises(InvalidArgument, match="malformed"):
        decode_record(bad_payload)


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="aging_interval_s must be positive"):
        QueueOptions(aging_interval_s=0)
    with pytest.raises(ConfigError, match="port_timeout_s must be positive"):
        SchedulerOptions(port_timeout_s=-1)
    with pytest.raises(InvalidArgument, match="max_tasks"):
        NodeCapacity(1024, 1000, 0, 0, -1)
