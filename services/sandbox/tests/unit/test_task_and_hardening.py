"""Task validation, limit resolution and the hardened container spec."""

from __future__ import annotations

import pytest

from symbi_common.errors import InvalidArgument
from symbi_sandbox.hardening import (
    LABEL_AGENT,
    LABEL_NODE,
    LABEL_TASK,
    build_container_spec,
)
from symbi_sandbox.task import LimitPolicy, ResolvedLimits, ResourceLimits, TaskSpec
from symbi_sandbox.tiers import Tier


def task(**kw: object) -> TaskSpec:
    base: dict[str, object] = {"task_id": "t1", "agent_id": "agent-1", "image": "symbi/busybox"}
    base.update(kw)
    return TaskSpec(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("task_id", "../etc"),
        ("task_id", ""),
        ("task_id", "a" * 200),
        ("agent_id", "bad agent"),
        ("image", "Has Spaces"),
        ("command", ["ok", "nul\x00"]),
        ("env", {"SYMBI_TASK_ID": "spoof"}),
        ("env", {"1BAD": "x"}),
        ("attempt", 0),
        ("tier", "kata"),
    ],
)
def test_malformed_task_names_the_field(field: str, value: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        task(**{field: value})
    assert caught.value.details["field"] == field
    assert field in caught.value.message


def test_task_normalises_command_env_and_tier() -> None:
    spec = task(command=["sh", "-c", "true"], env={"A": "1"}, tier="runsc")
    assert spec.command == ("sh", "-c", "true")
    assert spec.tier is Tier.GVISOR
    with pytest.raises(TypeError):
        spec.env["B"] = "2"  # type: ignore[index]


def test_limits_default_and_ceiling() -> None:
    policy = LimitPolicy()
    resolved = policy.resolve(ResourceLimits(memory_mb=128))
    assert resolved.memory_mb == 128
    assert resolved.max_processes == policy.default.max_processes
    with pytest.raises(InvalidArgument, match="exceeds this node's maximum"):
        policy.resolve(ResourceLimits(memory_mb=10**6))
    with pytest.raises(InvalidArgument, match="below the minimum"):
        policy.resolve(ResourceLimits(memory_mb=4))
    with pytest.raises(InvalidArgument):
        ResourceLimits(timeout_s=0)


LIMITS = ResolvedLimits(memory_mb=64, cpu_millicores=500, max_processes=32, timeout_s=5, tmpfs_mb=8)


@pytest.mark.parametrize("tier", list(Tier))
def test_every_container_is_hardened(tier: Tier) -> None:
    spec = build_container_spec(
        task(network=True),
        tier=tier,
        runtime="runsc" if tier is Tier.GVISOR else "runc",
        limits=LIMITS,
        node_id="node-a",
        instance_id="i1",
        uid=200123,
        channel_dir="/srv/t1/channel",
        sdk_dir="/srv/sdk",
        code_dir="/srv/t1/agent",
    )
    kw = spec.create_kwargs()
    assert kw["network_mode"] == "none"  # even with network granted: egress goes via the channel
    assert kw["read_only"] is True
    assert kw["cap_drop"] == ["ALL"]
    assert "no-new-privileges" in kw["security_opt"]
    assert kw["user"] == "200123:200123"
    assert kw["mem_limit"] == kw["memswap_limit"] == "64m"
    assert kw["cpu_quota"] == 50_000
    assert kw["cpu_period"] == 100_000
    assert [(u["Name"], u["Soft"], u["Hard"]) for u in kw["ulimits"]] == [("nproc", 32, 32)]
    assert "noexec" in kw["tmpfs"]["/tmp"]
    assert "size=8m" in kw["tmpfs"]["/tmp"]
    assert all(v["mode"] == "ro" for v in kw["volumes"].values())
    assert kw["labels"][LABEL_TASK] == "t1"
    assert kw["labels"][LABEL_AGENT] == "agent-1"
    assert kw["labels"][LABEL_NODE] == "node-a"
    assert kw["environment"]["SYMBI_AGENT_SOCKET"] == "/run/symbi/agent.sock"
    assert kw["environment"]["SYMBI_EGRESS"] == "proxy"
    assert "privileged" not in kw
    # pids_limit breaks Debian's runsc; runc gets it in addition to nproc.
    assert ("pids_limit" in kw) is (tier is Tier.DOCKER)


def test_network_not_granted_has_no_egress_hint() -> None:
    spec = build_container_spec(
        task(),
        tier=Tier.DOCKER,
        runtime="runc",
        limits=LIMITS,
        node_id="n",
        instance_id="i",
        uid=200000,
    )
    assert "SYMBI_EGRESS" not in spec.env
    assert spec.create_kwargs()["volumes"] == {}
