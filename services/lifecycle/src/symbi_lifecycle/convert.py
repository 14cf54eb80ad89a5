"""Pure converters between the lifecycle's records and its protobuf messages."""

from __future__ import annotations

import json

from google.protobuf.duration_pb2 import Duration

from symbi.common.v1 import common_pb2
from symbi.lifecycle.v1 import lifecycle_pb2
from symbi_common.errors import InvalidArgument
from symbi_lifecycle.record import StoredAgent, TransitionInfo
from symbi_lifecycle.states import AgentState

__all__ = [
    "agent_to_proto",
    "source_of",
    "state_from_proto",
    "state_to_proto",
    "transition_to_proto",
]

_TIERS = {
    "docker": common_pb2.SANDBOX_TIER_DOCKER,
    "gvisor": common_pb2.SANDBOX_TIER_GVISOR,
}


_STATES: dict[AgentState, lifecycle_pb2.AgentState] = {
    state: getattr(lifecycle_pb2, f"AGENT_STATE_{state.value}") for state in AgentState
}


def state_to_proto(state: AgentState | None) -> lifecycle_pb2.AgentState:
    if state is None:
        return lifecycle_pb2.AGENT_STATE_UNSPECIFIED
    return _STATES[state]


def state_from_proto(value: int) -> AgentState | None:
    """None for UNSPECIFIED; InvalidArgument for a number that is no state."""
    if value == lifecycle_pb2.AGENT_STATE_UNSPECIFIED:
        return None
    try:
        name = lifecycle_pb2.AgentState.Name(value)
    except ValueError:
        raise InvalidArgument(f"unknown agent state {value}", reason="BAD_STATE") from None
    return AgentState(name.removeprefix("AGENT_STATE_"))


def source_of(definition_json: str) -> str:
    """The source text kept in a stored definition ("" when it cannot be read)."""
    try:
        value = json.loads(definition_json).get("source", "")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def agent_to_proto(
    stored: StoredAgent, *, source: str = "", definition_json: str = ""
) -> lifecycle_pb2.Agent:
    record = stored.record
    limits = common_pb2.ResourceLimits(
        memory_mb=record.memory_mb,
        cpu_millicores=record.cpu_millicores,
        execution_timeout=Duration(
            seconds=record.timeout_ms // 1000, nanos=(record.timeout_ms % 1000) * 1_000_000
        ),
    )
    return lifecycle_pb2.Agent(
        id=record.id,
        name=record.name,
        state=state_to_proto(record.state),
        revision=stored.revision,
        capabilities=record.capabilities,
        tier=_TIERS.get(record.tier, common_pb2.SANDBOX_TIER_UNSPECIFIED),
        limits=limits,
        source=source,
        policy_ids=record.policy_ids,
        created_at_ms=record.created_at_ms,
        updated_at_ms=record.updated_at_ms,
        reason=record.reason,
        restarts=record.restarts,
        owner=record.owner,
        task_id=record.task_id,
        restart_at_ms=record.restart_at_ms,
        max_restarts=record.max_restarts,
        source_format=record.source_format,
        source_file=record.source_file,
        version=record.version,
        description=record.description,
        definition_json=definition_json,
        scheduled=record.scheduled,
    )


def transition_to_proto(
    agent_id: str, transition: TransitionInfo, revision: int
) -> lifecycle_pb2.Transition:
    return lifecycle_pb2.Transition(
        agent_id=agent_id,
        from_state=state_to_proto(transition.from_state),
        to_state=state_to_proto(transition.to_state),
        reason=transition.reason,
        revision=revision,
        timestamp_ms=transition.at_ms,
        actor=transition.actor,
        seq=transition.seq,
        task_id=transition.task_id,
    )
