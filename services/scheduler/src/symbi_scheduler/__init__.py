"""Symbi scheduler: priorities with aging, resource-aware placement, preemption, dispatch with
acknowledgement, a journal to rebuild from, and leader election — the domain core.

Nothing here imports grpc or nats; the service wires the ports (``symbi_scheduler.ports``) to
JetStream, the policy service and NATS KV. ``symbi_scheduler.memory`` has in-memory ports.
"""

from __future__ import annotations

from .allocation import allocation_question
from .clock import ManualClock, SystemClock
from .codec import decode_record, encode_record, record_from_dict, record_to_dict
from .core import SchedulerCore
from .dispatch import DispatchTracker, Expectation, ExpectationKind
from .driver import DriverStep, SchedulerDriver
from .lease import LeaderElection, Leadership
from .nodes import NodeHeartbeat, NodeRegistry, NodeView
from .options import (
    DispatchOptions,
    LimitOptions,
    NodeOptions,
    PlacementOptions,
    PlacementStrategy,
    PreemptionOptions,
    QueueOptions,
    SchedulerOptions,
)
from .placement import Placer
from .ports import (
    AgentTransition,
    AllocationDecision,
    AllocationPolicy,
    AllocationRequest,
    Clock,
    DispatchOrder,
    JournalSnapshot,
    LeaseRecord,
    LeaseStore,
    LifecycleNotifier,
    StopOrder,
    TaskDispatcher,
    TaskJournal,
    TaskListener,
    TransitionKind,
)
from .preemption import PreemptionBudget, PreemptionPlan, PreemptionPlanner, Victim
from .priority import Priority, SandboxTier
from .queue import TaskQueue
from .reports import ActivationReport, CycleReport, Placement, TickReport
from .resources import NodeCapacity, ResourceRequest
from .status import DecisionMeter, SchedulerStatus
from .task import StartReport, TaskOutcome, TaskRecord, TaskResult, TaskSpec, TaskState

__all__ = [
    "ActivationReport",
    "AgentTransition",
    "AllocationDecision",
    "AllocationPolicy",
    "AllocationRequest",
    "Clock",
    "CycleReport",
    "DecisionMeter",
    "DispatchOptions",
    "DispatchOrder",
    "DispatchTracker",
    "DriverStep",
    "Expectation",
    "ExpectationKind",
    "JournalSnapshot",
    "LeaderElection",
    "Leadership",
    "LeaseRecord",
    "LeaseStore",
    "LifecycleNotifier",
    "LimitOptions",
    "ManualClock",
    "NodeCapacity",
    "NodeHeartbeat",
    "NodeOptions",
    "NodeRegistry",
    "NodeView",
    "Placement",
    "PlacementOptions",
    "PlacementStrategy",
    "Placer",
    "PreemptionBudget",
    "PreemptionOptions",
    "PreemptionPlan",
    "PreemptionPlanner",
    "Priority",
    "QueueOptions",
    "ResourceRequest",
    "SandboxTier",
    "SchedulerCore",
    "SchedulerDriver",
    "SchedulerOptions",
    "SchedulerStatus",
    "StartReport",
    "StopOrder",
    "SystemClock",
    "TaskDispatcher",
    "TaskJournal",
    "TaskListener",
    "TaskOutcome",
    "TaskQueue",
    "TaskRecord",
    "TaskResult",
    "TaskSpec",
    "TaskState",
    "TickReport",
    "TransitionKind",
    "Victim",
    "allocation_question",
    "decode_record",
    "encode_record",
    "record_from_dict",
    "record_to_dict",
]
