"""Placement strategies over the node registry: resources, tiers, labels, tie-breaks."""

from __future__ import annotations

import pytest

from symbi_scheduler import (
    NodeOptions,
    NodeRegistry,
    PlacementOptions,
    PlacementStrategy,
    Placer,
    Priority,
    SchedulerOptions,
)


def registry(h, *beats) -> NodeRegistry:
    reg = NodeRegistry(NodeOptions())
    for b in beats:
        reg.heartbeat(b, 0.0)
    return reg


def choose(reg: NodeRegistry, strategy: PlacementStrategy, spec, exclude=()) -> str | None:
    placer = Placer(PlacementOptions(strategy=strategy))
    node = placer.choose(spec, reg.matching(spec), exclude)
    return node.node_id if node is not None else None


@pytest.fixture
def cluster(harness):
    h = harness
    reg = registry(h, h.hb("a", mem=2048), h.hb("b", mem=8192), h.hb("c", mem=4096))
    # Use some of b so that its free memory is 3072 and c's is 4096.
    reg.charge("b", "x", (5120, 0, 0, 0))
    return reg


def test_first_fit_takes_the_first_in_registration_order(cluster, harness) -> None:
    assert choose(cluster, PlacementStrategy.FIRST_FIT, harness.spec("t", mem=1024)) == "a"
    assert choose(cluster, PlacementStrategy.FIRST_FIT, harness.spec("t", mem=3000)) == "b"


def test_best_fit_takes_the_tightest(cluster, harness) -> None:
    # a would be left with 1/2 free, c with 3/4, b with (3072-1024)/8192 = 1/4 of memory.
    assert choose(cluster, PlacementStrategy.BEST_FIT, harness.spec("t", mem=1024)) == "b"


def test_spread_takes_the_emptiest(cluster, harness) -> None:
    assert choose(cluster, PlacementStrategy.SPREAD, harness.spec("t", mem=1024)) == "c"


def test_nothing_fits(cluster, harness) -> None:
    for strategy in PlacementStrategy:
        if strategy is not PlacementStrategy.PRIORITY:
            assert choose(cluster, strategy, harness.spec("t", mem=5000)) is None


def test_every_dimension_and_slots_are_honoured(harness) -> None:
    h = harness
    reg = registry(h, h.hb("a", cpu=1000, max_tasks=1), h.hb("b", cpu=4000, max_tasks=2))
    assert choose(reg, PlacementStrategy.FIRST_FIT, h.spec("t", cpu=2000)) == "b"
    reg.charge("a", "y", (1, 1, 0, 0))
    assert choose(reg, PlacementStrategy.FIRST_FIT, h.spec("t", cpu=10)) == "b"  # a has no slot
    assert choose(reg, PlacementStrategy.FIRST_FIT, h.spec("t"), exclude={"b"}) is None


def test_tier_and_labels_are_honoured(harness) -> None:
    h = harness
    reg = registry(
        h,
        h.hb("plain", tiers=["docker"], labels={"zone": "eu"}),
        h.hb("iso-us", tiers=["docker", "gvisor"], labels={"zone": "us"}),
        h.hb("iso-eu", tiers=["gvisor"], labels={"zone": "eu", "ssd": "yes"}),
    )
    s = h.spec("t", tier="gvisor")
    assert choose(reg, PlacementStrategy.FIRST_FIT, s) == "iso-us"
    s = h.spec("t", tier="gvisor", selector={"zone": "eu"})
    assert choose(reg, PlacementStrategy.FIRST_FIT, s) == "iso-eu"
    s = h.spec("t", selector={"zone": "eu", "ssd": "yes"})
    assert choose(reg, PlacementStrategy.FIRST_FIT, s) is None  # iso-eu lacks docker


def test_disk_limited_tasks_go_only_where_the_tier_enforces_the_limit(harness) -> None:
    h = harness
    reg = registry(
        h,
        h.hb("both-runc-disk", tiers=["docker", "gvisor"], disk_io_tiers=["docker"]),
        h.hb("gvisor-disk", tiers=["gvisor"], disk_io_tiers=["gvisor"]),
        h.hb("no-disk", tiers=["docker", "gvisor"], disk_io_tiers=[]),
    )
    ff = PlacementStrategy.FIRST_FIT
    # A disk-limited gVisor task skips the node that offers gVisor but throttles only runc.
    assert [n.node_id for n in reg.matching(h.spec("t", tier="gvisor", disk=50))] == ["gvisor-disk"]
    assert choose(reg, ff, h.spec("t", tier="gvisor", disk=50)) == "gvisor-disk"
    # ... and waits rather than going to a node that would refuse it.
    assert choose(reg, ff, h.spec("t", tier="gvisor", disk=50), exclude={"gvisor-disk"}) is None
    # A disk-limited runc task goes to the node that throttles runc.
    assert choose(reg, ff, h.spec("t", tier="docker", disk=50)) == "both-runc-disk"
    assert choose(reg, ff, h.spec("t", disk=50), exclude={"both-runc-disk"}) is None
    # Without a disk limit, the tier alone decides (the cached match is not shared).
    assert [n.node_id for n in reg.matching(h.spec("t", tier="gvisor"))] == [
        "both-runc-disk",
        "gvisor-disk",
        "no-disk",
    ]
    assert choose(reg, ff, h.spec("t"), exclude={"both-runc-disk"}) == "no-disk"


def test_a_node_that_does_not_report_disk_io_tiers_may_take_disk_limited_tasks(harness) -> None:
    h = harness
    # An older node (no disk_io_tiers in its heartbeat): unknown, placed as before.
    reg = registry(
        h, h.hb("old", tiers=["gvisor"]), h.hb("new", tiers=["gvisor"], disk_io_tiers=[])
    )
    assert choose(reg, PlacementStrategy.FIRST_FIT, h.spec("t", tier="gvisor", disk=50)) == "old"
    # Once it reports, the report holds (and changes what it matches at once).
    reg.heartbeat(h.hb("old", tiers=["gvisor"], disk_io_tiers=["docker"]), 1.0)
    assert choose(reg, PlacementStrategy.FIRST_FIT, h.spec("t", tier="gvisor", disk=50)) is None
    assert choose(reg, PlacementStrategy.FIRST_FIT, h.spec("t", tier="gvisor")) == "old"


def test_unschedulable_and_unreachable_nodes_take_no_work(harness) -> None:
    h = harness
    reg = registry(h, h.hb("cordoned", schedulable=False), h.hb("ok"))
    assert choose(reg, PlacementStrategy.FIRST_FIT, h.spec("t")) == "ok"
    reg.heartbeat(h.hb("ok"), 0.0)
    assert [n.node_id for n in reg.expire(NodeOptions().timeout_s)] == ["cordoned", "ok"]
    assert choose(reg, PlacementStrategy.FIRST_FIT, h.spec("t")) is None


def test_ties_go_to_the_least_loaded_node(harness) -> None:
    h = harness
    beats = (h.hb("a", mem=4096, cpu=4000), h.hb("b", mem=4096, cpu=4000))
    reg = registry(h, *beats)
    assert choose(reg, PlacementStrategy.BEST_FIT, h.spec("t")) == "a"  # all equal: order
    # Equal headroom after placing 512 MiB / 500m (0.375 + 0.875 = 0.625 + 0.625 = 1.25),
    # but a's dominant share is 0.5 and b's 0.25.
    reg.charge("a", "x", (2048, 0, 0, 0))
    reg.charge("b", "y", (1024, 1000, 0, 0))
    assert choose(reg, PlacementStrategy.BEST_FIT, h.spec("t")) == "b"
    assert choose(reg, PlacementStrategy.SPREAD, h.spec("t")) == "b"
    # Equal headroom and share: fewer tasks wins.
    reg = registry(h, *beats)
    reg.charge("a", "x", (1024, 0, 0, 0))
    reg.charge("b", "y", (512, 0, 0, 0))
    reg.charge("b", "z", (512, 0, 0, 0))
    assert choose(reg, PlacementStrategy.BEST_FIT, h.spec("t")) == "a"


def test_priority_strategy_spreads_urgent_work_and_packs_bulk_work(cluster, harness) -> None:
    placer = Placer(PlacementOptions(strategy=PlacementStrategy.PRIORITY))
    urgent = harness.spec("u", "critical", mem=1024)
    bulk = harness.spec("b", "low", mem=1024)
    assert placer.strategy_for(urgent) is PlacementStrategy.SPREAD
    assert placer.choose(urgent, cluster.matching(urgent)).node_id == "c"
    assert placer.choose(bulk, cluster.matching(bulk)).node_id == "b"
    custom = PlacementOptions(by_priority={Priority.LOW: PlacementStrategy.FIRST_FIT})
    assert Placer(custom).choose(bulk, cluster.matching(bulk)).node_id == "a"


async def test_core_places_by_configured_strategy(make_harness) -> None:
    h = make_harness(
        SchedulerOptions(placement=PlacementOptions(strategy=PlacementStrategy.SPREAD))
    )
    await h.start(h.hb("n1"), h.hb("n2"), h.hb("n3"))
    await h.submit(*(h.spec(f"t{i}") for i in range(6)))
    report = await h.cycle()
    assert len(report.placements) == 6
    per_node = {n: sum(1 for p in report.placements if p.node_id == n) for n in ("n1", "n2", "n3")}
    assert per_node == {"n1": 2, "n2": 2, "n3": 2}
    # every placement was asked of the policy first, with the chosen node
    assert [(r.task_id, r.node_id) for r in h.policy.asked] == [
        (p.task_id, p.node_id) for p in report.placements
    ]
