"""Task records to and from JSON, for the journal (stable field names; ``v`` is the format).

Decoding validates through the same constructors as the API, so a corrupt or foreign record
raises ``InvalidArgument`` instead of entering the scheduler.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from symbi_common.errors import InvalidArgument

from .priority import Priority, SandboxTier
from .resources import ResourceRequest
from .task import TaskRecord, TaskSpec, TaskState

__all__ = ["FORMAT", "decode_record", "encode_record", "record_from_dict", "record_to_dict"]

FORMAT = 1


def record_to_dict(rec: TaskRecord) -> dict[str, Any]:
    """A JSON-compatible dict of ``rec``."""
    spec = rec.spec
    r = spec.resources
    return {
        "v": FORMAT,
        "spec": {
            "task_id": spec.task_id,
            "agent_id": spec.agent_id,
            "priority": spec.priority.label,
            "tier": spec.tier.value,
            "resources": {
                "memory_mb": r.memory_mb,
                "cpu_millicores": r.cpu_millicores,
                "disk_io_mbps": r.disk_io_mbps,
                "network_io_mbps": r.network_io_mbps,
                "execution_timeout_s": r.execution_timeout_s,
            },
            "node_selector": dict(spec.node_selector),
            "preemptible": spec.preemptible,
            "metadata": dict(spec.metadata),
            "payload": base64.b64encode(spec.payload).decode(),
        },
        "state": rec.state.value,
        "seq": rec.seq,
        "enqueued_at": rec.enqueued_at,
        "updated_at": rec.updated_at,
        "attempt": rec.attempt,
        "node_id": rec.node_id,
        "dispatch_id": rec.dispatch_id,
        "dispatched_at": rec.dispatched_at,
        "not_after": rec.not_after,
        "started_at": rec.started_at,
        "ack_failures": rec.ack_failures,
        "tried_nodes": list(rec.tried_nodes),
        "node_losses": rec.node_losses,
        "preemptions": rec.preemptions,
        "last_preempted_at": rec.last_preempted_at,
        "preempts": list(rec.preempts),
        "reason": rec.reason,
        "exit_code": rec.exit_code,
    }


def record_from_dict(data: dict[str, Any]) -> TaskRecord:
    """The record ``data`` describes; InvalidArgument if it is not a valid record."""
    try:
        if data.get("v") != FORMAT:
            raise InvalidArgument(
                f"unsupported task record format {data.get('v')!r}; expected {FORMAT}",
                reason="BAD_RECORD",
            )
        s = data["spec"]
        res = s["resources"]
        spec = TaskSpec(
            task_id=s["task_id"],
            agent_id=s["agent_id"],
            priority=Priority.parse(s["priority"]),
            tier=SandboxTier.parse(s["tier"]),
            resources=ResourceRequest(
                memory_mb=res["memory_mb"],
                cpu_millicores=res["cpu_millicores"],
                disk_io_mbps=res["disk_io_mbps"],
                network_io_mbps=res["network_io_mbps"],
                execution_timeout_s=res["execution_timeout_s"],
            ),
            node_selector=s["node_selector"],
            preemptible=bool(s["preemptible"]),
            metadata=s["metadata"],
            payload=base64.b64decode(s["payload"], validate=True),
        )
        return TaskRecord(
            spec=spec,
            state=TaskState(data["state"]),
            seq=int(data["seq"]),
            enqueued_at=float(data["enqueued_at"]),
            updated_at=float(data["updated_at"]),
            attempt=int(data["attempt"]),
            node_id=data["node_id"],
            dispatch_id=data["dispatch_id"],
            dispatched_at=data["dispatched_at"],
            not_after=data["not_after"],
            started_at=data["started_at"],
            ack_failures=int(data["ack_failures"]),
            tried_nodes=tuple(data["tried_nodes"]),
            node_losses=int(data["node_losses"]),
            preemptions=int(data["preemptions"]),
            last_preempted_at=data["last_preempted_at"],
            preempts=tuple(data["preempts"]),
            reason=str(data["reason"]),
            exit_code=data["exit_code"],
        )
    except InvalidArgument:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
        raise InvalidArgument(
            f"malformed task record: {type(exc).__name__}: {exc}", reason="BAD_RECORD"
        ) from None


def encode_record(rec: TaskRecord) -> bytes:
    """Compact UTF-8 JSON of ``rec``."""
    return json.dumps(record_to_dict(rec), separators=(",", ":")).encode()


def decode_record(payload: bytes) -> TaskRecord:
    """The record in ``payload``; InvalidArgument if it is not one."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"task record is not JSON: {exc}", reason="BAD_RECORD") from None
    if not isinstance(data, dict):
        raise InvalidArgument("task record is not a JSON object", reason="BAD_RECORD")
    return record_from_dict(data)
