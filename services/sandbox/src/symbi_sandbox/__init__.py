"""symbi_sandbox: the sandbox service's domain core (no grpc, no nats).

The node's task runner over Docker (runc) and gVisor (runsc): risk assessment and tier
choice, a hardened container for every task, output streaming, timeouts, OOM and preemption,
cleanup and reconciliation (:class:`SandboxRunner`); the agent channel served on a Unix
socket per task and forwarded to platform ports (:mod:`symbi_sandbox.channel`); the base
images (:mod:`symbi_sandbox.images`); the agent-side SDK (``agent_sdk/symbi_agent.py``).

The service process around it (``python -m symbi_sandbox``: :mod:`symbi_sandbox.app` and the
modules it wires — dispatch, journal, reporting, agent sessions, the bus channel backend, the
policy gate, the gRPC servicer) is not part of this package's public API.
"""

from symbi_sandbox.engine import (
    ContainerEngine,
    DockerEngine,
    DockerEngineConfig,
    EngineInfo,
    ManagedContainer,
    RuntimeInfo,
)
from symbi_sandbox.hardening import ContainerSpec, build_container_spec
from symbi_sandbox.logs import LogBuffer, LogChunk
from symbi_sandbox.risk import (
    CodeTrust,
    DataSensitivity,
    FilesystemAccess,
    RiskAssessment,
    RiskAssessor,
    RiskProfile,
)
from symbi_sandbox.runner import (
    AGENT_SDK_PATH,
    ChannelEndpoint,
    ChannelHost,
    Execution,
    ExecutionState,
    LostTask,
    NodeInfo,
    RunnerConfig,
    SandboxRunner,
    TaskResult,
)
from symbi_sandbox.task import LimitPolicy, ResolvedLimits, ResourceLimits, TaskSpec
from symbi_sandbox.tiers import Tier, TierChoice, choose_tier

__all__ = [
    "AGENT_SDK_PATH",
    "ChannelEndpoint",
    "ChannelHost",
    "CodeTrust",
    "ContainerEngine",
    "ContainerSpec",
    "DataSensitivity",
    "DockerEngine",
    "DockerEngineConfig",
    "EngineInfo",
    "Execution",
    "ExecutionState",
    "FilesystemAccess",
    "LimitPolicy",
    "LogBuffer",
    "LogChunk",
    "LostTask",
    "ManagedContainer",
    "NodeInfo",
    "ResolvedLimits",
    "ResourceLimits",
    "RiskAssessment",
    "RiskAssessor",
    "RiskProfile",
    "RunnerConfig",
    "RuntimeInfo",
    "SandboxRunner",
    "TaskResult",
    "TaskSpec",
    "Tier",
    "TierChoice",
    "build_container_spec",
    "choose_tier",
]
