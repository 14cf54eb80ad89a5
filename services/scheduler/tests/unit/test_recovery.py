"""Rebuilding from the journal, fencing, and leader failover under load: nothing lost, nothing
run twice.

The failover test simulates the whole loop deterministically with a manual clock: three
scheduler processes (core + lease), simulated worker nodes that honour the dispatch contract
(start a dispatch id at most once, never after ``not_after``, stop ``preempts`` first and
report those ends before the start acknowledgement), a durable event stream consumed by the
current leader, and a client that resubmits until accepted. Leaders are killed right after
their N-th journal write, i.e. at arbitrary points inside an operation.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest

from symbi_common.errors import Aborted, DeadlineExceeded, SymbiError
from symbi_scheduler import (
    DispatchOrder,
    LeaderElection,
    ManualClock,
    PreemptionOptions,
    SchedulerCore,
    SchedulerOptions,
    StopOrder,
    TaskOutcome,
    TaskResult,
    TaskState,
    TransitionKind,
)
from symbi_scheduler.memory import (
    InMemoryJournal,
    InMemoryLeaseStore,
    RecordingLifecycle,
    StaticPolicy,
)

ACK = SchedulerOptions().dispatch.ack_timeout_s


# ------------------------------------------------------------------ rebuild
async def test_rebuild_from_journal_without_double_dispatch(make_harness) -> None:
    a = make_harness()
    await a.start(a.hb("n1", max_tasks=3), a.hb("n2", max_tasks=3))
    await a.submit(*(a.spec(f"t{i}") for i in range(10)))
    await a.cycle()
    orders = list(a.dispatcher.dispatched)
    assert len(orders) == 6
    for order in orders[:4]:
        await a.ack(order)
    # A dies. B reads the same journal with its own bus connection.
    b = make_harness(clock=a.clock, journal=a.journal)
    report = await b.core.activate()
    assert (report.queued, report.dispatched, report.running) == (4, 2, 4)
    # The two unacknowledged dispatches are re-sent under the SAME ids (the bus and the
    # node de-duplicate them); nothing already on a node is placed again.
    assert report.redispatched == 2
    assert [o.dispatch_id for o in b.dispatcher.dispatched] == [o.dispatch_id for o in orders[4:]]
    assert b.dispatcher.dispatched == orders[4:]
    await b.core.heartbeat(b.hb("n1", max_tasks=3))
    await b.core.heartbeat(b.hb("n2", max_tasks=3))
    cycle = await b.cycle()
    assert cycle.placements == []  # full: the 6 charged tasks were rebuilt onto their nodes
    # The late acknowledgements reach B; the queued ones run as room frees up.
    for order in orders[4:]:
        assert await b.core.acknowledge(order.task_id, order.dispatch_id, order.node_id)
    for order in orders:
        rec = b.core.task(order.task_id)
        await b.core.task_finished(
            TaskResult(order.task_id, rec.dispatch_id, rec.node_id, TaskOutcome.COMPLETED)
        )
    cycle = await b.cycle()
    assert sorted(p.task_id for p in cycle.placements) == [f"t{i}" for i in range(6, 10)]
    all_ids = [o.dispatch_id for o in a.dispatcher.dispatched + b.dispatcher.dispatched]
    per_task = Counter(d.rsplit("-", 1)[0] for d in set(all_ids))
    assert set(per_task.values()) == {1}  # one dispatch id per task, ever


async def test_no_resend_after_not_after_and_deadline_restarts(make_harness) -> None:
    a = make_harness()
    await a.start(a.hb("n1"))
    await a.submit(a.spec("t"))
    await a.cycle()
    a.clock.advance(ACK + 1)  # the order's not_after has passed during the outage
    b = make_harness(clock=a.clock, journal=a.journal)
    report = await b.core.activate()
    assert report.redispatched == 0
    assert b.dispatcher.dispatched == []
    # B gives the node a full ack timeout to deliver a queued acknowledgement.
    await b.core.heartbeat(b.hb("n1"))
    rep = await b.advance(ACK - 0.1, beat=[b.hb("n1")])
    assert rep.requeued == []
    rep = await b.advance(0.1, beat=[b.hb("n1")])
    assert rep.requeued == ["t"]


async def test_crash_between_preemption_writes_is_completed_on_restart(make_harness) -> None:
    a = make_harness()
    n1 = a.hb("n1", mem=2048)
    await a.start(n1)
    await a.submit(a.spec("low", "low", mem=2048))
    await a.cycle()
    await a.ack_all()
    a.clock.advance(5)
    await a.core.submit(a.spec("crit", "critical", mem=2048))
    writes = a.journal.writes

    class DieAfterOneMore(InMemoryJournal):
        pass

    # Crash right after the victim's STOPPING record is written, before crit's dispatch.
    original_put = a.journal.put

    async def put_then_die(record, *, expected_position):
        pos = await original_put(record, expected_position=expected_position)
        if a.journal.writes == writes + 1:
            raise DeadlineExceeded("process killed")
        return pos

    a.journal.put = put_then_die  # type: ignore[method-assign]
    with pytest.raises(DeadlineExceeded):
        await a.cycle()
    assert not a.core.active
    a.journal.put = original_put  # type: ignore[method-assign]
    assert a.journal.record("low").state is TaskState.STOPPING
    assert a.journal.record("crit").state is TaskState.QUEUED
    assert a.dispatcher.stopped == []  # the stop never went out

    b = make_harness(clock=a.clock, journal=a.journal)
    report = await b.core.activate()
    assert report.stopping == 1
    assert [(s.node_id, s.task_id) for s in b.dispatcher.stopped] == [("n1", "low")]
    await b.core.heartbeat(n1)
    cycle = await b.cycle()
    # The victim's room was released with its stop: crit goes there without a new victim.
    assert [(p.task_id, p.node_id, p.preempted) for p in cycle.placements] == [("crit", "n1", ())]
    await b.core.task_finished(TaskResult("low", "low-1", "n1", TaskOutcome.STOPPED))
    assert b.state("low") == "queued"


async def test_failed_task_found_on_restart_is_reported_and_dropped(make_harness) -> None:
    a = make_harness()
    await a.start()
    await a.submit(a.spec("t"))
    rec = a.core.task("t")
    await a.journal.put(
        rec.evolve(state=TaskState.FAILED, reason="policy denied"),
        expected_position=a.journal.position,
    )
    b = make_harness(clock=a.clock, journal=a.journal)
    report = await b.core.activate()
    assert report.finished == 1
    assert [(t.task_id, t.kind, t.reason) for t in b.lifecycle.transitions] == [
        ("t", TransitionKind.FAILED, "policy denied")
    ]
    assert b.journal.record("t") is None


async def test_deposed_leader_is_fenced_by_the_journal(make_harness) -> None:
    a = make_harness()
    await a.start(a.hb("n1"))
    b = make_harness(clock=a.clock, journal=a.journal)
    await b.start(b.hb("n1"))
    await b.submit(b.spec("by-b"))
    # A still believes it leads; its next write is refused and it stops acting.
    with pytest.raises(Aborted):
        await a.core.submit(a.spec("by-a"))
    assert not a.core.active
    assert a.journal.record("by-a") is None
    report = await a.core.activate()  # re-reading brings it up to date (if it leads again)
    assert report.queued == 1


async def test_uncertain_journal_write_forces_a_reread(make_harness) -> None:
    h = make_harness()
    await h.start(h.hb("n1"))
    h.journal.unavailable = True
    with pytest.raises(SymbiError):
        await h.core.submit(h.spec("t"))
    assert not h.core.active
    h.journal.unavailable = False
    await h.core.activate()
    await h.submit(h.spec("t"))
    assert h.state("t") == "queued"


# ------------------------------------------------------------------ failover simulation
class ProcessDied(BaseException):
    """kill -9: nothing after this point in the process runs."""


class KillableJournal:
    """The shared journal as seen by one process, which dies after its N-th write."""

    def __init__(self, journal: InMemoryJournal, die_after: int | None) -> None:
        self._journal = journal
        self._die_after = die_after
        self.writes = 0

    async def load(self):
        return await self._journal.load()

    def _count(self) -> None:
        self.writes += 1
        if self._die_after is not None and self.writes >= self._die_after:
            raise ProcessDied

    async def put(self, record, *, expected_position):
        pos = await self._journal.put(record, expected_position=expected_position)
        self._count()
        return pos

    async def remove(self, task_id, *, expected_position):
        pos = await self._journal.remove(task_id, expected_position=expected_position)
        self._count()
        return pos


@dataclass
class Bus:
    """Orders from any scheduler process to the nodes (a work queue per node)."""

    orders: list[DispatchOrder | StopOrder] = field(default_factory=list)

    async def dispatch(self, order: DispatchOrder) -> None:
        self.orders.append(order)

    async def stop(self, order: StopOrder) -> None:
        self.orders.append(order)


class Nodes:
    """Simulated sandboxes keeping the dispatch contract."""

    def __init__(self, clock: ManualClock, names: list[str], run_for: dict[str, float]) -> None:
        self.clock = clock
        self.names = names
        self.run_for = run_for
        self.read = 0
        self.seen: set[str] = set()
        self.running: dict[str, dict[str, tuple[str, float]]] = {n: {} for n in names}
        self.events: list[tuple] = []  # durable stream to the scheduler
        self.starts: Counter[str] = Counter()
        self.completed: Counter[str] = Counter()

    def _stop(self, node: str, task_id: str, dispatch_id: str | None) -> None:
        run = self.running[node].get(task_id)
        if run is not None and (dispatch_id is None or run[0] == dispatch_id):
            del self.running[node][task_id]
            self.events.append(("result", TaskResult(task_id, run[0], node, TaskOutcome.STOPPED)))

    def step(self, bus: Bus) -> None:
        now = self.clock.now()
        while self.read < len(bus.orders):
            order = bus.orders[self.read]
            self.read += 1
            if isinstance(order, StopOrder):
                self._stop(order.node_id, order.task_id, order.dispatch_id)
                continue
            if order.dispatch_id in self.seen or now > order.not_after:
                continue  # idempotent per dispatch id; never start late
            self.seen.add(order.dispatch_id)
            for victim in order.preempts:
                self._stop(order.node_id, victim, None)
            for other in self.names:  # the invariant under test
                assert order.task_id not in self.running[other], f"{order.task_id} runs twice"
            self.running[order.node_id][order.task_id] = (
                order.dispatch_id,
                now + self.run_for[order.task_id],
            )
            self.starts[order.task_id] += 1
            self.events.append(("ack", order.task_id, order.dispatch_id, order.node_id))
        for node, runs in self.running.items():
            for task_id, (dispatch_id, ends) in list(runs.items()):
                if ends <= now:
                    del runs[task_id]
                    self.completed[task_id] += 1
                    self.events.append(
                        ("result", TaskResult(task_id, dispatch_id, node, TaskOutcome.COMPLETED))
                    )

    def heartbeats(self, make_hb) -> list:
        return [
            make_hb(n, mem=4096, max_tasks=4, running=list(self.running[n])) for n in self.names
        ]


class Process:
    def __init__(self, name, clock, journal, kv, bus, options, die_after) -> None:
        self.name = name
        self.journal = KillableJournal(journal, die_after)
        self.core = SchedulerCore(
            journal=self.journal,
            dispatcher=bus,
            policy=StaticPolicy(),
            lifecycle=RecordingLifecycle(),
            clock=clock,
            options=options,
        )
        self.election = LeaderElection(kv, clock, holder=name, ttl_s=3.0, renew_interval_s=1.0)
        self.clock = clock
        self.alive = True
        self.next_step = 0.0
        self.activations: list[float] = []

    @property
    def leading(self) -> bool:
        return self.alive and self.election.is_leader and self.core.active

    async def run(self, nodes: Nodes, consumed: list[int]) -> None:
        mono = self.clock.monotonic()
        if mono >= self.next_step:
            lead = await self.election.step()
            self.next_step = lead.next_step_at
        if not self.election.is_leader:
            if self.core.active:
                await self.core.deactivate()
            return
        if not self.core.active:
            await self.core.activate()
            self.activations.append(mono)
        # The durable consumer: an event counts as handled only once handling returned.
        while consumed[0] < len(nodes.events):
            event = nodes.events[consumed[0]]
            if event[0] == "ack":
                await self.core.acknowledge(*event[1:])
            else:
                await self.core.task_finished(event[1])
            consumed[0] += 1
        await self.core.tick()
        if self.core.needs_cycle:
            await self.core.schedule()


@pytest.mark.parametrize("kills", [(7, 25), (40, 90), (75, 30), (120, 60), (150, 11), (33, 17)])
async def test_leader_failover_under_load_loses_nothing_and_runs_nothing_twice(
    make_harness, kills
) -> None:
    H = make_harness
    rng = random.Random(sum(kills))
    clock = ManualClock()
    journal = InMemoryJournal()
    kv = InMemoryLeaseStore(clock, ttl_s=3.0)
    bus = Bus()
    options = SchedulerOptions(preemption=PreemptionOptions(cooldown_s=5, window_s=10))
    procs = [
        Process("s0", clock, journal, kv, bus, options, kills[0]),
        Process("s1", clock, journal, kv, bus, options, kills[1]),
        Process("s2", clock, journal, kv, bus, options, None),
    ]
    # 3 nodes x 4 slots x 4 GiB; 60 tasks, some Critical ones arriving into a full cluster.
    specs = []
    for i in range(60):
        prio = "critical" if i % 15 == 14 else rng.choice(["high", "normal", "low", "low"])
        specs.append(H.spec(f"t{i:02d}", prio, mem=1024))
    run_for = {s.task_id: rng.uniform(1.0, 6.0) for s in specs}
    nodes = Nodes(clock, ["n1", "n2", "n3"], run_for)
    to_submit = list(specs)
    consumed = [0]
    step = 0.25
    death: dict[str, float] = {}
    last_beat = -10.0
    for _ in range(4000):
        now = clock.monotonic()
        nodes.step(bus)
        beat = now - last_beat >= options.nodes.heartbeat_interval_s
        if beat:
            last_beat = now
        for proc in procs:
            if not proc.alive:
                continue
            try:
                if beat:
                    for hb in nodes.heartbeats(H.hb):
                        await proc.core.heartbeat(hb)
                await proc.run(nodes, consumed)
                # The client submits ~2 tasks per step to whoever leads, retrying on refusal.
                if proc.leading:
                    for s in to_submit[:2]:
                        try:
                            await proc.core.submit(s)
                        except SymbiError:
                            break
                        to_submit.remove(s)
            except ProcessDied:
                proc.alive = False
                death[proc.name] = now
        if (
            not to_submit
            and len(nodes.completed) == len(specs)
            and consumed[0] == len(nodes.events)
        ):
            break
        clock.advance(step)

    assert not to_submit
    # Both planned kills happened, and each time another process took over quickly.
    assert set(death) == {"s0", "s1"}
    for name, died_at in death.items():
        later = [t for p in procs if p.name != name for t in p.activations if t >= died_at]
        assert later, f"nobody took over from {name}"
        assert min(later) - died_at <= 3.0 + 1.0 + step
    # Nothing lost: every task completed exactly once, and the journal is empty again.
    assert nodes.completed == Counter({s.task_id: 1 for s in specs})
    assert len(journal) == 0
    # Nothing run twice: a task started more than once only after being stopped (preempted).
    survivor = next(p for p in procs if p.alive)
    reruns = {t for t, n in nodes.starts.items() if n > 1}
    stopped = {
        e[1].task_id
        for e in nodes.events
        if e[0] == "result" and e[1].outcome is TaskOutcome.STOPPED
    }
    assert reruns <= stopped
    assert survivor.core.status().queued_total == 0
    by_node: defaultdict[str, int] = defaultdict(int)
    for v in survivor.core.nodes():
        by_node[v.node_id] = v.tasks
    assert set(by_node.values()) == {0}


async def test_standby_that_saw_a_node_die_requeues_its_work_on_takeover(make_harness) -> None:
    a = make_harness()
    await a.start(a.hb("n1"), a.hb("n2"))
    b = make_harness(clock=a.clock, journal=a.journal)
    await b.core.heartbeat(b.hb("n1"))  # B stands by and hears both nodes
    await b.core.heartbeat(b.hb("n2"))
    await a.submit(a.spec("t"))
    await a.cycle()
    await a.ack_all()
    dead = a.node_of("t")
    alive = "n2" if dead == "n1" else "n1"
    for _ in range(4):  # the node with the task dies; A dies too; B keeps hearing the other
        a.clock.advance(2.0)
        await b.core.heartbeat(b.hb(alive))
    report = await b.core.activate()
    assert report.queued == 1
    assert b.core.task("t").reason == f"node {dead} became unreachable"
    placed = await b.cycle()
    assert [p.node_id for p in placed.placements] == [alive]
