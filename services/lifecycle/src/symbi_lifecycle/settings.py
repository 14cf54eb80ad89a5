"""Settings of the lifecycle service (see symbi_common.config for the shared sections).

``[lifecycle]`` (environment: ``SYMBI_LIFECYCLE__<KEY>``)::

    max_restarts = 3            # Failed → Initializing recoveries per agent (0: never)
    restart_backoff_s = 1.0     # first recovery delay; doubles per restart
    restart_backoff_max_s = 60.0
    install_base_policy = true  # permit the lifecycle service create_agent / modify_agent
    policy_timeout_s = 2.0      # each decision; no answer → fail closed
    policy_write_timeout_s = 10.0  # each policy store write (entities, agent policies)

Policy checks follow ``[security] enforce_policies`` (on by default).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from symbi_common.config import GrpcSection, Section, ServiceSettings, TelemetrySection

__all__ = ["LifecycleSection", "LifecycleSettings"]


class LifecycleSection(Section):
    """``[lifecycle]``: restarts, reconciliation, listings, watchers, events."""

    #: Recoveries (Failed → Initializing) per agent before it stays Failed. An agent may ask
    #: for fewer or more with ``with max_restarts = N`` (capped at ``max_restarts_cap``).
    max_restarts: int = Field(3, ge=0, le=100)
    max_restarts_cap: int = Field(20, ge=0, le=1000)
    restart_backoff_s: float = Field(1.0, gt=0, le=3600)
    restart_backoff_max_s: float = Field(60.0, gt=0, le=86_400)
    #: How often each replica looks for work left over: due restarts, and agents stuck in
    #: Created / Initializing / Terminating (a process died in the middle).
    reconcile_interval_s: float = Field(1.0, gt=0, le=600)
    #: An intermediate state older than this is finished by whichever replica sees it.
    stale_after_s: float = Field(15.0, gt=0, le=3600)
    #: A definition stored by a create that never stored its record is replaced after this.
    orphan_after_s: float = Field(30.0, gt=0, le=86_400)
    #: Deadline of each decision asked of the policy service (no answer: fail closed).
    policy_timeout_s: float = Field(2.0, gt=0, le=60)
    #: Deadline of each write to the policy store (entities, the agent's policies); a write
    #: waits for the policy service to rebuild its set, which grows with the set.
    policy_write_timeout_s: float = Field(10.0, gt=0, le=300)
    #: Deadline of a request to the scheduler (cancelling the task of an agent suspended or
    #: terminated; best effort).
    scheduler_timeout_s: float = Field(2.0, gt=0, le=60)
    #: Install ``lifecycle/base`` (if absent): the lifecycle service may create and modify
    #: agents unless a forbid says otherwise. Off: an operator must permit it.
    install_base_policy: bool = True
    list_page_size: int = Field(100, ge=1, le=10_000)
    list_page_max: int = Field(1000, ge=1, le=10_000)
    #: Transitions buffered per WatchAgent stream; a watcher that falls further behind is
    #: ended with RESOURCE_EXHAUSTED.
    watch_queue_size: int = Field(1024, ge=1, le=1_000_000)
    max_watchers: int = Field(1000, ge=1, le=100_000)
    #: Transition events (AgentTransition + audit) waiting to be published, per publisher.
    event_queue_size: int = Field(4096, ge=1, le=1_000_000)
    event_publishers: int = Field(4, ge=1, le=64)
    #: At start-up, transitions newer than this are published again (deduplicated by message
    #: id on the stream): covers a crash between the KV write and the event.
    republish_window_s: float = Field(100.0, ge=0, le=110)
    #: Task statuses fetched per pull and handled concurrently (in order per agent).
    status_batch: int = Field(128, ge=1, le=4096)
    #: Largest definition source accepted (bytes of DSL / TOML / YAML).
    max_source_bytes: int = Field(256 * 1024, ge=1024, le=900 * 1024)

    @model_validator(mode="after")
    def _check(self) -> LifecycleSection:
        if self.restart_backoff_max_s < self.restart_backoff_s:
            raise ValueError("restart_backoff_max_s must be >= restart_backoff_s")
        if self.list_page_max < self.list_page_size:
            raise ValueError("list_page_max must be >= list_page_size")
        return self


class LifecycleSettings(ServiceSettings):
    service_name: ClassVar[str] = "lifecycle"

    grpc: GrpcSection = GrpcSection(port=50052)
    telemetry: TelemetrySection = TelemetrySection(metrics_port=9465)
    lifecycle: LifecycleSection = LifecycleSection()
