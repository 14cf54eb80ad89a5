"""What the sandbox exchanges on the bus: subjects, consumers, payload encodings.

Contract C3 (scheduler ↔ node; the node id is the node's principal id):

=================================  =====================  ====================================
subject                            direction              message
=================================  =====================  ====================================
``symbi.task.<node>``              scheduler → node       TaskAssignment (TASKS work queue)
``symbi.task.control.<node>``      scheduler → node       TaskStop (EVENTS)
``symbi.task.status.<task>``       node → everyone        TaskStatus (platform topic)
``symbi.node.heartbeat.<node>``    node → scheduler       NodeHeartbeat (platform topic)
=================================  =====================  ====================================

Contract C4 (agent tools and memory, sent by the node, which vouches for the agent):
``symbi.rpc.mcp.invoke``, ``symbi.rpc.context.store``, ``symbi.rpc.context.retrieve``.

Agent traffic, signed by the agent's own identity: direct messages ``symbi.direct.<agent>``;
topics ``agents.<name>`` on ``symbi.topic.agents.<name>`` (group keys per topic); requests to
another agent on ``symbi.rpc.agents.<agent>.call`` (see symbi_common.agent).
"""

from __future__ import annotations

import base64
import json
import re

from nats.js import api as js_api

from symbi_common.bus import ConsumerSpec
from symbi_common.errors import InvalidArgument
from symbi_common.jetstream.spec import Subjects
from symbi_sandbox.channel.ports import JsonValue

__all__ = [
    "CONTEXT_RETRIEVE_SUBJECT",
    "CONTEXT_STORE_SUBJECT",
    "JSON_CONTENT_TYPE",
    "MCP_INVOKE_SUBJECT",
    "PLATFORM",
    "agent_rpc_subject",
    "agent_topic",
    "control_consumer",
    "decode_payload",
    "encode_payload",
    "task_consumer",
]

PLATFORM = "platform"
MCP_INVOKE_SUBJECT = "symbi.rpc.mcp.invoke"
CONTEXT_STORE_SUBJECT = "symbi.rpc.context.store"
CONTEXT_RETRIEVE_SUBJECT = "symbi.rpc.context.retrieve"
JSON_CONTENT_TYPE = "application/json"

_TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]+(?:[./][A-Za-z0-9_-]+)*")
AGENT_TOPIC_PREFIX = "agents."


def task_consumer(node_id: str, prefix: str = "SYMBI") -> ConsumerSpec:
    """The node's share of the TASKS work queue (C3)."""
    return ConsumerSpec.work_queue(f"{prefix}_TASKS", Subjects.task(node_id), f"tasks-{node_id}")


def control_consumer(node_id: str, prefix: str = "SYMBI") -> ConsumerSpec:
    """The node's stop orders (C3): every one since the consumer was created."""
    return ConsumerSpec.subscription(
        f"{prefix}_EVENTS",
        (Subjects.task_control(node_id),),
        f"control-{node_id}",
        deliver_policy=js_api.DeliverPolicy.ALL,
    )


def agent_topic(name: str) -> tuple[str, str]:
    """``(policy name, bus topic)`` of a topic an agent names.

    ``news``, ``agents.news`` and ``topic://news`` are the same topic: policy sees ``news``
    (as the DSL writes it) and the bus carries ``agents.news``; ``/`` becomes a subject level.
    """
    bare = name.removeprefix("topic://").removeprefix(AGENT_TOPIC_PREFIX)
    if len(bare) > 200 or not _TOPIC_NAME.fullmatch(bare):
        raise InvalidArgument(
            f"topic {name!r}: use letters, digits, '_', '-', with '.' or '/' between parts",
            reason="BAD_TOPIC",
            details={"field": "topic"},
        )
    return bare, AGENT_TOPIC_PREFIX + bare.replace("/", ".")


def agent_rpc_subject(agent_id: str, method: str = "call") -> str:
    return Subjects.rpc("agents", f"{agent_id}.{method}")


def encode_payload(payload: JsonValue) -> bytes:
    """An agent's JSON payload as message bytes (content type ``application/json``)."""
    try:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"payload is not JSON: {exc}", reason="MALFORMED_CALL") from None


def decode_payload(content_type: str, data: bytes) -> JsonValue:
    """Message bytes for an agent: JSON as is, text as a string, anything else as base64."""
    if content_type.startswith(JSON_CONTENT_TYPE):
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass
    elif content_type.startswith("text/"):
        try:
            return data.decode()
        except UnicodeDecodeError:
            pass
    return {"content_type": content_type, "base64": base64.b64encode(data).decode()}
