"""The scheduler on the bus: its stream and bucket, its consumers, and their handlers.

Consumers (contract C3):

- **heartbeats** — every scheduler process (standbys too, so a new leader knows the nodes at
  once) follows ``symbi.node.heartbeat.*`` on the HEARTBEATS stream with its own ordered
  push consumer (``heartbeat_follow``), created at every start with "last per subject", so
  the process first reads the latest heartbeat of every node and then follows new ones as
  they are stored. A heartbeat older than the node timeout is ignored (the node is gone), a
  younger one counts from when it was sent.
- **task statuses** — one durable consumer of ``symbi.task.status.*`` (EVENTS), consumed by
  the leader only; a new leader resumes where the old one stopped. STARTED acknowledges a
  dispatch; final states end the run. The scheduler's own statuses (sender role "service")
  are skipped. A node may only report for itself.

Statuses are pulled one message per pull (``CONSUME_BATCH``) by ``STATUS_PULLERS``
consumers at once: a pull returns as soon as one message is there, so a larger batch only
helps under a backlog, while several pullers keep acknowledgements flowing during a burst.

Standbys forward API calls to the leader over request/reply on ``symbi.rpc.scheduler.<m>``
(see ``forward``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from nats.js import api as js_api
from prometheus_client import Counter

from symbi.bus.v1 import events_pb2
from symbi_common.bus import ConsumerSpec, Received
from symbi_common.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable
from symbi_common.jetstream.spec import BucketSpec, StreamSpec

from .convert import FINAL_STATES, NodeDefaults, heartbeat_from_proto, result_from_status
from .core import SchedulerCore
from .js_journal import JOURNAL_SUBJECT_PREFIX
from .task import StartReport, TaskResult, TaskState

__all__ = [
    "JOURNAL_STREAM",
    "LEASE_KEY",
    "STATUS_PULLERS",
    "NodeEvents",
    "ReportBatcher",
    "lease_bucket",
    "legacy_heartbeat_durable",
    "status_consumer",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

JOURNAL_STREAM = StreamSpec(
    name="SCHEDULER_JOURNAL",
    subjects=(f"{JOURNAL_SUBJECT_PREFIX}.*",),
    description="The scheduler's task journal: the latest record of every live task",
    max_msgs_per_subject=1,
    max_msg_size=1024 * 1024,
    durable=True,
)
LEASE_KEY = "leader"
CONSUME_BATCH = 1
#: Status consumers pulling from the one durable at once (their reports are batched).
STATUS_PULLERS = 8
STATUS_DURABLE = "scheduler-status"

HEARTBEATS = Counter(
    "symbi_scheduler_heartbeats_total", "Node heartbeats received, by outcome.", ["outcome"]
)
# Bound once (per-heartbeat label lookups are measurable at 100 heartbeats/s).
_HB_OK, _HB_REFUSED, _HB_OUT_OF_ORDER, _HB_STALE = (
    HEARTBEATS.labels(outcome) for outcome in ("ok", "refused", "out_of_order", "stale")
)
STATUSES = Counter(
    "symbi_scheduler_task_statuses_total", "Task statuses handled, by state.", ["state"]
)


def lease_bucket(ttl_s: float) -> BucketSpec:
    """The leader lease's KV bucket: a key lives ``ttl_s`` past its last write."""
    return BucketSpec(
        name="scheduler_lease",
        description="The active scheduler's lease",
        history=1,
        ttl_s=ttl_s,
        max_value_size=1024,
    )


def legacy_heartbeat_durable(principal_id: str) -> str:
    """The durable pull consumer of heartbeats that earlier versions created (deleted at
    start; heartbeats are followed by ``heartbeat_follow.HeartbeatFollower`` now)."""
    return f"{principal_id}-heartbeats"


def status_consumer(prefix: str, ack_timeout_s: float) -> ConsumerSpec:
    # A short ack wait: statuses a dead leader had fetched come back to its successor well
    # inside the acknowledgement deadline of the dispatches they confirm (a successor
    # restarts that deadline at activation).
    return ConsumerSpec(
        stream=f"{prefix}_EVENTS",
        durable=STATUS_DURABLE,
        filter_subjects=("symbi.task.status.*",),
        deliver_policy=js_api.DeliverPolicy.NEW,
        ack_wait_s=max(1.0, min(5.0, ack_timeout_s / 3)),
        max_deliver=100,
        max_ack_pending=2048,
        name="scheduler-status",
    )


class ReportBatcher:
    """Applies node reports (acknowledgements, results) to the core in batches.

    Several status consumers run at once (``STATUS_PULLERS``); each handler submits its
    report and waits until the batch holding it has been applied (journaled) — only then is
    its message acknowledged, so a crash redelivers it. A batch takes the core once, so a
    burst of statuses does not queue behind scheduling cycles one status at a time.
    """

    def __init__(self, core: SchedulerCore, *, max_batch: int = 256) -> None:
        self._core = core
        self._max = max_batch
        self._pending: list[tuple[StartReport | TaskResult, asyncio.Future[None]]] = []
        self._kick = asyncio.Event()

    async def submit(self, report: StartReport | TaskResult) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((report, future))
        self._kick.set()
        await future

    async def run(self) -> None:
        """Apply batches until cancelled (run while leading)."""
        try:
            while True:
                await self._kick.wait()
                self._kick.clear()
                batch, self._pending = self._pending[: self._max], self._pending[self._max :]
                if self._pending:
                    self._kick.set()
                batch = [(r, f) for r, f in batch if not f.done()]  # handler cancelled
                if not batch:
                    continue
                try:
                    await self._core.node_reports([r for r, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            for _, future in self._pending:
                future.cancel()
            self._pending.clear()


class NodeEvents:
    """Handlers of heartbeats and task statuses, feeding the core."""

    def __init__(
        self,
        core: SchedulerCore,
        wake: Callable[[], None],
        *,
        node_defaults: NodeDefaults,
        node_timeout_s: float,
        active_wait_s: float = 5.0,
    ) -> None:
        self._core = core
        self._wake = wake
        self._defaults = node_defaults
        self._timeout = node_timeout_s
        self._active_wait = active_wait_s
        self._reports = ReportBatcher(core)
        self._last_sent: dict[str, int] = {}  # node id -> timestamp_ms of its latest heartbeat
        self._stale_logged: dict[str, float] = {}

    async def apply_reports(self) -> None:
        """Apply submitted statuses until cancelled (a leader task beside the consumers)."""
        await self._reports.run()

    # ---------------------------------------------------------------- heartbeats
    async def on_heartbeat(self, msg: Received) -> None:
        hb = msg.parse(events_pb2.NodeHeartbeat)
        if msg.sender_role != "node" or hb.node_id != msg.sender:
            _HB_REFUSED.inc()
            raise PermissionDenied(
                f"{msg.sender} ({msg.sender_role}) may not heartbeat for node {hb.node_id!r}",
                reason="NOT_THE_NODE",
            )
        if hb.timestamp_ms <= self._last_sent.get(hb.node_id, 0):
            _HB_OUT_OF_ORDER.inc()
            return
        age = time.time() - hb.timestamp_ms / 1000
        if age >= self._timeout:
            _HB_STALE.inc()
            self._log_stale(hb.node_id, age)
            return
        heartbeat = heartbeat_from_proto(hb, self._defaults)  # InvalidArgument: refused
        if len(self._last_sent) > 100_000:
            self._last_sent.clear()
        self._last_sent[hb.node_id] = hb.timestamp_ms
        await self._core.heartbeat(heartbeat, age_s=age)
        _HB_OK.inc()
        if self._core.needs_cycle:
            self._wake()

    def _log_stale(self, node_id: str, age: float) -> None:
        now = time.monotonic()
        if now - self._stale_logged.get(node_id, -1e9) < 60:
            return
        if len(self._stale_logged) > 10_000:
            self._stale_logged.clear()
        self._stale_logged[node_id] = now
        log.info(
            "ignoring a heartbeat of %s sent %.1f s ago (node gone, or its clock is behind)",
            node_id,
            age,
        )

    # ---------------------------------------------------------------- task statuses
    async def on_status(self, msg: Received) -> None:
        status = msg.parse(events_pb2.TaskStatus)
        if msg.sender_role == "service":
            return  # the scheduler's own statuses for lifecycle (or another service's)
        if msg.sender_role != "node" or status.node_id != msg.sender:
            raise PermissionDenied(
                f"{msg.sender} ({msg.sender_role}) may not report task status for node "
                f"{status.node_id!r}",
                reason="NOT_THE_NODE",
            )
        state = status.state
        report: StartReport | TaskResult
        if state == events_pb2.TaskStatus.STATE_STARTED:
            STATUSES.labels("started").inc()
            report = StartReport(status.task_id, status.dispatch_id, status.node_id)
        elif state in FINAL_STATES:
            name = events_pb2.TaskStatus.State.Name(state).removeprefix("STATE_").lower()
            STATUSES.labels(name).inc()
            if state == events_pb2.TaskStatus.STATE_REFUSED and self._refused_late(status):
                return
            report = result_from_status(status)
        else:
            raise InvalidArgument(
                f"task status {state} of {status.task_id} is not one a node reports",
                reason="BAD_TASK_STATUS",
            )
        await self._while_active(lambda: self._reports.submit(report))
        self._wake()

    def _refused_late(self, status: events_pb2.TaskStatus) -> bool:
        """A refusal of a dispatch whose start deadline has passed is the node keeping the
        ``not_after`` rule: the scheduler retries it elsewhere at that deadline, so the
        refusal must not fail the task."""
        try:
            rec = self._core.task(status.task_id)
        except NotFound:
            return False
        late = (
            rec.state is TaskState.DISPATCHED
            and rec.dispatch_id == status.dispatch_id
            and rec.not_after is not None
            and time.time() >= rec.not_after
        )
        if late:
            log.info(
                "%s refused %s after its deadline; retrying elsewhere",
                status.node_id,
                status.dispatch_id,
            )
        return late

    async def _while_active(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``call``; if the core is (briefly) inactive — re-reading its journal after a
        failed write — wait for it rather than send the message round a redelivery."""
        deadline = time.monotonic() + self._active_wait
        while True:
            try:
                return await call()
            except Unavailable as exc:
                if exc.reason != "SCHEDULER_NOT_ACTIVE" or time.monotonic() >= deadline:
                    raise
            self._wake()
            # The core has no "activated" event; this wait is rare and short.
            while not self._core.active and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
