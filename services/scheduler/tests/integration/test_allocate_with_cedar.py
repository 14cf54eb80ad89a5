"""The ``allocate`` question the scheduler asks, evaluated by real Cedar (cedarpy) against
Symbi's shared schema: the request shape validates, and a policy can use every attribute."""

from __future__ import annotations

import cedarpy
import pytest

from symbi_common.cedar import schema_text
from symbi_scheduler import (
    AllocationRequest,
    Priority,
    ResourceRequest,
    SandboxTier,
    allocation_question,
)

POLICIES = """
permit(principal, action == Symbi::Action::"allocate", resource is Symbi::Node)
when {
  context has tier && resource has tiers && resource.tiers.contains(context.tier) &&
  context has memory_mb && context.memory_mb <= 8192 &&
  context has timeout_s && context.timeout_s <= 3600
};

forbid(principal, action == Symbi::Action::"allocate", resource is Symbi::Node)
when {
  context has priority && context.priority == "critical" &&
  !(resource has labels && resource.labels.contains("critical=ok"))
};
"""


def question(**overrides) -> dict:
    base = {
        "agent_id": "agent-1",
        "task_id": "t1",
        "node_id": "node-7",
        "priority": Priority.NORMAL,
        "tier": SandboxTier.GVISOR,
        "resources": ResourceRequest(memory_mb=2048, cpu_millicores=500, execution_timeout_s=59.5),
        "node_tiers": frozenset({SandboxTier.DOCKER, SandboxTier.GVISOR}),
        "node_labels": {"zone": "eu"},
    }
    base.update(overrides)
    return allocation_question(AllocationRequest(**base))


def decide(q: dict) -> cedarpy.AuthzResult:
    request = {
        "principal": f'{q["principal"]["type"]}::"{q["principal"]["id"]}"',
        "action": f'Symbi::Action::"{q["action"]}"',
        "resource": f'{q["resource"]["type"]}::"{q["resource"]["id"]}"',
        "context": q["context"],
    }
    entities = [*q["entities"], {"uid": q["principal"], "attrs": {}, "parents": []}]
    return cedarpy.is_authorized(request, POLICIES, entities, schema=schema_text())


def test_policies_using_the_question_validate_against_the_schema() -> None:
    result = cedarpy.validate_policies(POLICIES, schema_text())
    assert result.validation_passed, result.errors


@pytest.mark.parametrize(
    ("overrides", "allowed"),
    [
        ({}, True),
        ({"tier": SandboxTier.GVISOR, "node_tiers": frozenset({SandboxTier.DOCKER})}, False),
        ({"resources": ResourceRequest(memory_mb=16384, cpu_millicores=500)}, False),
        (
            {
                "resources": ResourceRequest(
                    memory_mb=64, cpu_millicores=1, execution_timeout_s=3600.5
                )
            },
            False,
        ),
        ({"priority": Priority.CRITICAL}, False),
        ({"priority": Priority.CRITICAL, "node_labels": {"critical": "ok"}}, True),
    ],
)
def test_cedar_decides_on_the_question(overrides, allowed) -> None:
    result = decide(question(**overrides))
    assert result.diagnostics.errors == []
    assert result.allowed is allowed


def test_context_is_integers_and_strings() -> None:
    q = question(preempts=("a", "b"))
    assert q["context"]["timeout_s"] == 60  # rounded up
    assert q["context"]["reason"] == "preempts 2 task(s)"
    assert q["entities"][0]["attrs"]["labels"] == ["zone=eu"]
