"""The platform's streams and KV buckets, declared once.

Subjects (the contract between services; ``<x>`` is one subject token):

=============================  ==========  ==========================================================
subject                        stream      what
=============================  ==========  ==========================================================
symbi.audit.<type>             AUDIT       audit events from every service → the audit service
symbi.task.<node>              TASKS       work queue: scheduler → the sandbox of that node
symbi.task.control.<node>      EVENTS      stop requests (preemption, cancel) → a node
symbi.task.status.<task>       EVENTS      started / finished / lost, node → scheduler, lifecycle
symbi.task.output.<task>       OUTPUT      a task's stdout/stderr, node → followers (capped, 1 h)
symbi.agent.<event>.<agent>    EVENTS      lifecycle transitions and agent events
symbi.policy.<event>           EVENTS      policy changes
symbi.checkpoint.<origin>      EVENTS      signed audit checkpoints
symbi.topic.<topic…>           EVENTS      publish/subscribe between agents and services
symbi.alert.<kind>             EVENTS      security alerts (rug pulls, rejects over threshold)
symbi.direct.<principal>       DIRECT      direct messages (durable consumer per recipient)
symbi.node.heartbeat.<node>    HEARTBEATS  node capacity, the latest per node kept
symbi.rpc.<service>.<method>   (core)      request/reply, queue group per service
=============================  ==========  ==========================================================

Stream and bucket names get the configured prefix (``SYMBI_AUDIT``); ``durable`` ones hold
accepted work and must be synced to disk on every write (server ``sync_interval: always``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "PLATFORM_BUCKETS",
    "PLATFORM_STREAMS",
    "BucketSpec",
    "StreamSpec",
    "Subjects",
]


@dataclass(frozen=True)
class StreamSpec:
    """A JetStream stream as the platform needs it."""

    name: str
    subjects: tuple[str, ...]
    description: str
    retention: Literal["limits", "workqueue", "interest"] = "limits"
    max_age_s: float = 0  # 0: forever
    max_bytes: int = -1
    max_msgs_per_subject: int = -1
    max_msg_size: int = 2 * 1024 * 1024
    duplicate_window_s: float = 120.0
    #: Holds accepted work: file storage, and the server must fsync every write.
    durable: bool = True
    memory: bool = False
    allow_rollup: bool = False


@dataclass(frozen=True)
class BucketSpec:
    """A JetStream key-value bucket."""

    name: str
    description: str
    history: int = 1
    ttl_s: float = 0  # 0: values never expire
    max_value_size: int = 1024 * 1024
    durable: bool = True
    extra: dict[str, str] = field(default_factory=dict)


class Subjects:
    """Builders for the subjects in the module table (tokens are validated by the callers)."""

    AUDIT_PREFIX = "symbi.audit"
    TASK_PREFIX = "symbi.task"
    DIRECT_PREFIX = "symbi.direct"
    TOPIC_PREFIX = "symbi.topic"
    HEARTBEAT_PREFIX = "symbi.node.heartbeat"
    RPC_PREFIX = "symbi.rpc"

    @staticmethod
    def audit(event_type: str) -> str:
        return f"symbi.audit.{event_type}"

    @staticmethod
    def task(node_id: str) -> str:
        return f"symbi.task.{node_id}"

    @staticmethod
    def task_control(node_id: str) -> str:
        return f"symbi.task.control.{node_id}"

    @staticmethod
    def task_status(task_id: str) -> str:
        return f"symbi.task.status.{task_id}"

    @staticmethod
    def task_output(task_id: str) -> str:
        return f"symbi.task.output.{task_id}"

    @staticmethod
    def agent(event: str, agent_id: str) -> str:
        return f"symbi.agent.{event}.{agent_id}"

    @staticmethod
    def direct(principal_id: str) -> str:
        return f"symbi.direct.{principal_id}"

    @staticmethod
    def topic(topic: str) -> str:
        return f"symbi.topic.{topic}"

    @staticmethod
    def heartbeat(node_id: str) -> str:
        return f"symbi.node.heartbeat.{node_id}"

    @staticmethod
    def rpc(service: str, method: str) -> str:
        return f"symbi.rpc.{service}.{method}"


DAY = 86_400.0

PLATFORM_STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec(
        name="AUDIT",
        subjects=("symbi.audit.>",),
        description="Audit events from every service, consumed by the audit service",
        max_age_s=30 * DAY,
    ),
    StreamSpec(
        name="TASKS",
        subjects=("symbi.task.*",),
        description="Work queue of task assignments, one subject per worker node",
        retention="workqueue",
    ),
    StreamSpec(
        name="EVENTS",
        subjects=(
            "symbi.task.control.*",
            "symbi.task.status.*",
            "symbi.agent.>",
            "symbi.policy.>",
            "symbi.checkpoint.>",
            "symbi.topic.>",
            "symbi.alert.>",
        ),
        description="Platform events and publish/subscribe topics",
        max_age_s=7 * DAY,
    ),
    StreamSpec(
        name="OUTPUT",
        subjects=("symbi.task.output.*",),
        description="Task output (stdout/stderr) published by worker nodes, for followers",
        max_age_s=3600.0,
        max_bytes=512 * 1024 * 1024,
        # Followers replay it; output lost in a server crash is not work lost.
        durable=False,
    ),
    StreamSpec(
        name="DIRECT",
        subjects=("symbi.direct.*",),
        description="Direct messages, one durable consumer per recipient",
        max_age_s=7 * DAY,
    ),
    StreamSpec(
        name="HEARTBEATS",
        subjects=("symbi.node.heartbeat.*",),
        description="Worker node heartbeats; the latest per node",
        max_msgs_per_subject=1,
        max_age_s=DAY,
        durable=False,
    ),
)

PLATFORM_BUCKETS: tuple[BucketSpec, ...] = (
    BucketSpec(name="keyring", description="Principal certificates and revocations", history=5),
    BucketSpec(name="groupkeys", description="Topic group keys sealed to each member", history=10),
)
