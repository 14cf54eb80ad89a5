"""Agent sessions: a task's presence on the bus as its own agent.

:class:`AgentChannelHost` is the runner's ChannelHost: it registers an :class:`AgentSession`
for the task and has the channel server bind the task's socket. The first call that needs
the bus as the agent (send, receive, publish, subscribe, request) certifies the agent with
the node's issuer key (:mod:`symbi_sandbox.identity`) and opens a :class:`SecureBus` for it
on the node's NATS connection: everything it sends is signed by the agent, and what it
receives is verified and decrypted with the agent's keys (ADR 0066).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js import api as js_api

from symbi_common.bus import BusEndpoint, ConsumerSpec, Credentials, KeyDirectory, SecureBus
from symbi_common.config import BusSection
from symbi_common.crypto.envelope import OpenedEnvelope
from symbi_common.crypto.groupkeys import GroupKeyring
from symbi_common.crypto.identity import check_principal_id
from symbi_common.crypto.keyring import Keyring
from symbi_common.crypto.rejects import EnvelopeRejected, RejectReason
from symbi_common.errors import FailedPrecondition, InvalidArgument, NotFound
from symbi_common.jetstream import NatsClient
from symbi_common.jetstream.spec import Subjects
from symbi_sandbox.channel.ports import AgentContext, AgentMessage
from symbi_sandbox.channel.server import ChannelServer
from symbi_sandbox.events import decode_payload
from symbi_sandbox.identity import AgentIdentityIssuer
from symbi_sandbox.nursery import Nursery
from symbi_sandbox.runner import ChannelEndpoint
from symbi_sandbox.task import TaskSpec

__all__ = [
    "AgentBusConfig",
    "AgentChannelHost",
    "AgentSession",
    "AgentSessions",
    "TopicSubscription",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentBusConfig:
    """How agent sessions reach the bus (one NATS connection: the node's)."""

    nats: NatsClient
    js: JetStreamContext
    keyring: Keyring  # the node's: shared, it holds verified certificates only
    name_prefix: str
    bus: BusSection
    default_timeout_s: float
    certificate_margin_s: float
    subscription_idle_s: float = 60.0  # an abandoned subscription's consumer is removed after


class TopicSubscription:
    """An agent's subscription to one topic: an ephemeral consumer read as the agent."""

    def __init__(self, session: AgentSession, name: str, bus_topic: str) -> None:
        self._session = session
        self.name = name
        self.bus_topic = bus_topic
        self._sub: Any = None

    async def _open(self) -> None:
        config = self._session.config
        await self._session.bus()
        consumer = f"agent-sub-{uuid.uuid4().hex}"
        stream = f"{config.name_prefix}_EVENTS"
        await config.js.add_consumer(
            stream,
            js_api.ConsumerConfig(
                name=consumer,
                filter_subject=Subjects.topic(self.bus_topic),
                deliver_policy=js_api.DeliverPolicy.NEW,
                ack_policy=js_api.AckPolicy.EXPLICIT,
                inactive_threshold=config.subscription_idle_s,
                max_ack_pending=64,
            ),
        )
        self._sub = await config.js.pull_subscribe_bind(consumer, stream)

    def __aiter__(self) -> TopicSubscription:
        return self

    async def __anext__(self) -> AgentMessage:
        while True:
            message = await self._session.next_message(self._sub, self.bus_topic, wait_s=5.0)
            if message is not None:
                return message

    async def aclose(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._session.forget(self)


class AgentSession:
    """One task's presence on the bus as its agent (see the module docstring)."""

    def __init__(self, sessions: AgentSessions, ctx: AgentContext, validity_s: float) -> None:
        self.ctx = ctx
        self.config = sessions.config
        self._sessions = sessions
        self._validity_s = validity_s
        self._endpoint: BusEndpoint | None = None
        self._directory: asyncio.Task[None] | None = None
        self._opening = asyncio.Lock()
        self._receiving = asyncio.Lock()
        self._inbox: Any = None
        self._subscriptions: set[TopicSubscription] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._closed = False

    async def bus(self) -> SecureBus:
        """The agent's bus endpoint, opened (and the agent certified) on first use."""
        async with self._opening:
            if self._closed:
                raise FailedPrecondition("the task's channel is closed", reason="CHANNEL_CLOSED")
            if self._endpoint is None:
                credentials = await self._sessions.issuer.issue(self.ctx.agent_id, self._validity_s)
                self._endpoint = await self._open_endpoint(credentials)
                self._directory = self._sessions.nursery.start_soon(
                    self._endpoint.run(), name=f"agent-keys-{self.ctx.task_id}"
                )
                _log.info(
                    "task %s speaks as %s (certified by %s for %.0f s)",
                    self.ctx.task_id,
                    self.ctx.agent_id,
                    self._sessions.issuer.issuer_id,
                    self._validity_s,
                )
            return self._endpoint.bus

    async def _open_endpoint(self, credentials: Credentials) -> BusEndpoint:
        # BusEndpoint.open with the node's keyring: it already trusts the node's issuer (so
        # the agent's own certificate verifies at once) and has every certificate verified.
        config = self.config
        prefix = config.name_prefix.lower()
        groups = GroupKeyring()  # the agent's own topic keys
        directory = KeyDirectory(
            config.js,
            credentials.keys,
            credentials.certificate,
            config.keyring,
            groups,
            keyring_bucket=f"{prefix}_keyring",
            groups_bucket=f"{prefix}_groupkeys",
        )
        await directory.start()
        bus = SecureBus(
            config.nats,
            config.js,
            credentials.keys,
            config.keyring,
            groups,
            config=config.bus,
            directory=directory,
            name_prefix=config.name_prefix,
        )
        return BusEndpoint(bus, directory, None)

    async def receive(self, timeout_s: float) -> AgentMessage | None:
        """The agent's next direct message, acknowledged once handed over; None on timeout."""
        async with self._receiving:
            if self._inbox is None:
                bus = await self.bus()
                spec = ConsumerSpec.direct(self.ctx.agent_id, self.config.name_prefix)
                await bus.ensure_consumer(spec)
                self._inbox = await self.config.js.pull_subscribe_bind(spec.durable, spec.stream)
            return await self.next_message(self._inbox, None, wait_s=timeout_s)

    async def next_message(
        self, sub: Any, topic: str | None, *, wait_s: float
    ) -> AgentMessage | None:
        """Fetches, verifies and acknowledges one message; refused envelopes are terminated."""
        bus = await self.bus()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            remaining = max(0.05, deadline - loop.time())
            try:
                batch = await sub.fetch(1, timeout=remaining)
            except (NatsTimeoutError, TimeoutError):
                return None
            for msg in batch:
                opened = await self._open(bus, msg)
                if opened is None:
                    continue
                await msg.ack()
                envelope = opened.envelope
                if envelope.id in self._seen:
                    continue  # a redelivery of what the agent already has
                self._seen[envelope.id] = None
                while len(self._seen) > 10_000:
                    self._seen.popitem(last=False)
                return AgentMessage(
                    message_id=envelope.id,
                    sender=envelope.sender,
                    payload=decode_payload(envelope.content_type, opened.payload),
                    topic=topic,
                    timestamp_ms=envelope.timestamp_ms,
                )
            if loop.time() >= deadline:
                return None

    async def _open(self, bus: SecureBus, msg: Any) -> OpenedEnvelope | None:
        try:
            return bus.opener.open(msg.data, subject=msg.subject)
        except EnvelopeRejected as rejected:
            if rejected.reject_reason == RejectReason.REJECT_REASON_UNKNOWN_SENDER:
                # The sender's certificate may be newer than this keyring: look it up once.
                with contextlib.suppress(EnvelopeRejected):
                    envelope = bus.opener.parse(msg.data)
                    assert self._endpoint is not None
                    if await self._endpoint.directory.fetch_certificate(
                        envelope.sender, envelope.sender_key_id
                    ):
                        try:
                            return bus.opener.open(msg.data, subject=msg.subject)
                        except EnvelopeRejected as again:
                            rejected = again
            await msg.term()
            await bus.rejects.report(
                rejected, subject=msg.subject, consumer=f"agent-{self.ctx.agent_id}"
            )
            _log.warning(
                "refused a message for %s on %s: %s",
                self.ctx.agent_id,
                msg.subject,
                rejected,
            )
            return None

    async def subscribe(self, name: str, bus_topic: str) -> TopicSubscription:
        subscription = TopicSubscription(self, name, bus_topic)
        await subscription._open()
        self._subscriptions.add(subscription)
        return subscription

    def forget(self, subscription: TopicSubscription) -> None:
        self._subscriptions.discard(subscription)

    async def aclose(self) -> None:
        """Ends the agent's presence: subscriptions, inbox reader, key directory."""
        async with self._opening:
            self._closed = True
        for subscription in list(self._subscriptions):
            await subscription.aclose()
        inbox, self._inbox = self._inbox, None
        if inbox is not None:
            with contextlib.suppress(Exception):
                await inbox.unsubscribe()
        directory, self._directory = self._directory, None
        if directory is not None:
            directory.cancel()
            await asyncio.gather(directory, return_exceptions=True)


class AgentSessions:
    """The agent sessions of the tasks running on this node."""

    def __init__(self, config: AgentBusConfig, issuer: AgentIdentityIssuer, nursery: Nursery):
        self.config = config
        self.issuer = issuer
        self.nursery = nursery
        self._sessions: dict[tuple[str, int], AgentSession] = {}

    def open(self, ctx: AgentContext, timeout_s: float | None) -> AgentSession:
        """Registers the task's session (no bus traffic until the agent needs it)."""
        try:
            check_principal_id(ctx.agent_id)
        except InvalidArgument:
            raise InvalidArgument(
                f"agent id {ctx.agent_id!r} is not a principal id ([A-Za-z0-9_-], ≤ 128): "
                "it cannot speak on the bus; run the task without the agent channel",
                reason="BAD_AGENT_ID",
                details={"field": "agent_id"},
            ) from None
        validity = (timeout_s or self.config.default_timeout_s) + self.config.certificate_margin_s
        session = AgentSession(self, ctx, validity)
        self._sessions[(ctx.task_id, ctx.attempt)] = session
        return session

    def get(self, ctx: AgentContext) -> AgentSession:
        session = self._sessions.get((ctx.task_id, ctx.attempt))
        if session is None:
            raise NotFound(f"no channel session for task {ctx.task_id}", reason="CHANNEL_CLOSED")
        return session

    async def close(self, ctx: AgentContext) -> None:
        session = self._sessions.pop((ctx.task_id, ctx.attempt), None)
        if session is not None:
            await session.aclose()

    async def aclose(self) -> None:
        for key in list(self._sessions):
            session = self._sessions.pop(key)
            await session.aclose()

    def __len__(self) -> int:
        return len(self._sessions)


class _Endpoint:
    """The runner's handle on a task's channel: the socket and the agent session."""

    def __init__(self, inner: ChannelEndpoint, sessions: AgentSessions, ctx: AgentContext):
        self._inner = inner
        self._sessions = sessions
        self._ctx = ctx

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            await self._sessions.close(self._ctx)


class AgentChannelHost:
    """The runner's ChannelHost: an agent session plus the channel server's socket."""

    def __init__(self, server: ChannelServer, sessions: AgentSessions, node_id: str) -> None:
        self._server = server
        self._sessions = sessions
        self._node_id = node_id

    async def open(
        self, task: TaskSpec, directory: Path, *, egress_bytes_per_s: int = 0
    ) -> ChannelEndpoint:
        ctx = AgentContext(
            task_id=task.task_id,
            agent_id=task.agent_id,
            node_id=self._node_id,
            attempt=task.attempt,
            network=task.network,
        )
        self._sessions.open(ctx, task.limits.timeout_s)
        try:
            endpoint = await self._server.open(
                task, directory, egress_bytes_per_s=egress_bytes_per_s
            )
        except BaseException:
            await self._sessions.close(ctx)
            raise
        return _Endpoint(endpoint, self._sessions, ctx)
