"""``TaskJournal`` on a JetStream stream: one subject per task, the latest record kept.

Layout (docs/adr/0053): the stream ``<prefix>_SCHEDULER_JOURNAL`` holds subjects
``symbi.sched.task.<task_id>`` with ``max_msgs_per_subject=1``, file storage, synced on every
write. A record is the task's JSON (``codec``); a removal is an empty message (tombstone)
that replaces it, and the tombstone is then purged (``purge`` bounded by its own sequence, so
it can never remove a record written after it).

The journal's *position* is the stream's last sequence. Every write carries
``Nats-Expected-Last-Sequence: <position the writer last saw>``; when anyone else wrote in
between, JetStream refuses it (error 10071) and the write raises ``Aborted``. That fences a
deposed leader. Purges do not move the last sequence.

``load`` reads the position first and then every message up to it, through an ephemeral
consumer; a message past that position means someone wrote while we read, and the load
raises ``Aborted`` (the driver retries).
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from nats.js import api as js_api
from prometheus_client import Counter, Histogram

from symbi_common.errors import Aborted, InvalidArgument

from .codec import decode_record, encode_record
from .nats_errors import nats_call
from .ports import JournalSnapshot
from .task import TaskRecord

__all__ = ["JOURNAL_SUBJECT_PREFIX", "JetStreamJournal"]

log = logging.getLogger(__name__)

JOURNAL_SUBJECT_PREFIX = "symbi.sched.task"
_EXPECTED_LAST_SEQ = "Nats-Expected-Last-Sequence"
_LOAD_BATCH = 1024

WRITES = Histogram(
    "symbi_scheduler_journal_write_seconds",
    "Time of one compare-and-set journal write (a JetStream publish synced to disk).",
    ["op"],
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5),
)
CORRUPT = Counter(
    "symbi_scheduler_journal_corrupt_records_total",
    "Journal messages that did not decode as task records (skipped at load).",
)


class JetStreamJournal:
    """The scheduler's journal on JetStream (see the module docstring)."""

    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        *,
        subject_prefix: str = JOURNAL_SUBJECT_PREFIX,
        timeout_s: float = 5.0,
    ) -> None:
        self._js = js
        self._stream = stream
        self._prefix = subject_prefix
        self._timeout = timeout_s

    def subject(self, task_id: str) -> str:
        return f"{self._prefix}.{task_id}"

    async def load(self) -> JournalSnapshot:
        async with nats_call("journal load"):
            info = await self._js.stream_info(self._stream)
            position = int(info.state.last_seq)
            if not info.state.messages:
                return JournalSnapshot(records=[], position=position)
            records = await self._read_until(position)
        log.info("journal %s: %d live task(s) at position %d", self._stream, len(records), position)
        return JournalSnapshot(records=records, position=position)

    async def _read_until(self, position: int) -> list[TaskRecord]:
        sub = await self._js.pull_subscribe(
            f"{self._prefix}.*",
            stream=self._stream,
            config=js_api.ConsumerConfig(
                ack_policy=js_api.AckPolicy.NONE,
                deliver_policy=js_api.DeliverPolicy.ALL,
                inactive_threshold=10.0,
                mem_storage=True,
            ),
        )
        records: list[TaskRecord] = []
        try:
            while True:
                batch = await sub.fetch(_LOAD_BATCH, timeout=self._timeout)
                for msg in batch:
                    meta = msg.metadata
                    if meta.sequence.stream > position:
                        raise Aborted(
                            f"journal {self._stream} moved past {position} while loading",
                            reason="JOURNAL_MOVED",
                        )
                    if msg.data:
                        try:
                            records.append(decode_record(msg.data))
                        except InvalidArgument as exc:
                            CORRUPT.inc()
                            log.error(
                                "journal message %d on %s is not a task record (%s); skipped",
                                meta.sequence.stream,
                                msg.subject,
                                exc.message,
                            )
                    if meta.num_pending == 0 or meta.sequence.stream == position:
                        return records
        finally:
            await sub.unsubscribe()

    async def _publish(self, op: str, subject: str, data: bytes, expected_position: int) -> int:
        with WRITES.labels(op).time():
            async with nats_call(f"journal {op}"):
                ack = await self._js.publish(
                    subject,
                    data,
                    timeout=self._timeout,
                    stream=self._stream,
                    headers={_EXPECTED_LAST_SEQ: str(expected_position)},
                )
        return int(ack.seq)

    async def put(self, record: TaskRecord, *, expected_position: int) -> int:
        return await self._publish(
            "put", self.subject(record.task_id), encode_record(record), expected_position
        )

    async def remove(self, task_id: str, *, expected_position: int) -> int:
        subject = self.subject(task_id)
        position = await self._publish("remove", subject, b"", expected_position)
        try:
            # Only messages below position + 1 on this subject: the tombstone itself (a record
            # written after it by anyone survives).
            async with nats_call("journal purge"):
                await self._js.purge_stream(self._stream, subject=subject, seq=position + 1)
        except Exception as exc:  # the tombstone is enough; load skips it
            log.warning("could not purge the tombstone of %s: %s", task_id, exc)
        return position
