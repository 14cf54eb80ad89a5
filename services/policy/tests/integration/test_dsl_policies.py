"""Policies compiled from the agent DSL (symbi_common.dsl) are accepted and decided here."""

from __future__ import annotations

import json

from symbi_common.dsl import ast
from symbi_common.dsl.parser import parse
from symbi_common.dsl.policy_compiler import PolicyCompiler as DslPolicyCompiler
from symbi_policy import (
    AllowWithConditions,
    AuthzRequest,
    Condition,
    Deny,
    InMemoryPolicySource,
    PolicyEngine,
    PolicyStore,
    QueueAuditSink,
)

AGENT = """
agent analyst {
  policy tools {
    allow: tool_call
    require: rate_limit("10/minute")
  }
  policy egress {
    deny: network_access
  }
}
"""


def policy_blocks(node: object) -> list[ast.PolicyDef]:
    found: list[ast.PolicyDef] = []
    for item in getattr(node, "items", ()) or ():
        found.extend([item] if isinstance(item, ast.PolicyDef) else policy_blocks(item))
    return found


async def test_dsl_output_is_stored_indexed_and_decided():
    compiled = DslPolicyCompiler().compile("analyst", policy_blocks(parse(AGENT)))
    source = InMemoryPolicySource()
    store = PolicyStore(source)
    await store.put_entities(
        json.dumps(
            [
                {"uid": {"type": "Agent", "id": "analyst"}},
                {"uid": {"type": "Tool", "id": "grep"}, "attrs": {"name": "grep"}},
                {"uid": {"type": "Resource", "id": "internet"}},
            ]
        )
    )
    document = await store.put(compiled.document, compiled.text, origin="dsl:analyst")
    assert document.name == "agents/analyst"
    engine = PolicyEngine(audit=QueueAuditSink())
    engine.apply(await source.snapshot())

    def ask(action: str, resource: str) -> object:
        return engine.evaluate(
            AuthzRequest.from_mapping(
                {"principal": 'Agent::"analyst"', "action": action, "resource": resource}
            )
        )

    tool = ask("tool_call", 'Tool::"grep"')
    assert isinstance(tool, AllowWithConditions)
    assert tool.conditions == (Condition("rate_limit", "10/m"),)
    assert tool.policies == ("agent/analyst/tools/1",)
    network = ask("network", 'Resource::"internet"')
    assert isinstance(network, Deny)
    assert network.policies == ("agent/analyst/egress/1",)
    assert "deny network_access" in network.reasons[0]
