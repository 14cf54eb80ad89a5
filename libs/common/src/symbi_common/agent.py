"""The agent SDK: how an external agent joins the Symbi bus.

An agent is a principal with role ``agent``: its credentials (key, certificate, NKey seed)
come from ``symbi keys issue <agent-id> --role agent``. With them it can::

    async with await AgentClient.connect(keys_dir, "agent-alice", "nats://127.0.0.1:4222") as alice:
        await alice.send("agent-bob", b"hello")                  # durable, only bob can read it
        await alice.publish("agents.public", b"news")            # every agent member of the topic
        reply = await alice.request("agent-bob", b"ping")        # bob's serve() answers
        await alice.listen(handle)                               # its own direct messages

Everything it sends is signed with its Ed25519 key and encrypted (direct: X25519 with the
recipient; topics: the topic's group key); everything it receives is verified the same way
before ``handle`` sees it. The NATS server itself confines it to its own subjects (see
symbi_common.bus.permissions): it cannot read other agents' inboxes or the platform's traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType

import nats
from google.protobuf.message import Message
from nats.aio.client import Client as NatsClient
from nats.js import api as js_api

from symbi_common.bus import BusEndpoint, ConsumerSpec, Received, SecureBus, load_credentials
from symbi_common.bus.permissions import inbox_prefix
from symbi_common.config import BusSection
from symbi_common.errors import InvalidArgument, Unauthenticated

__all__ = ["AgentClient", "Received"]

AGENT_TOPIC_PREFIX = "agents."


def _agent_rpc_subject(principal_id: str, method: str = "call") -> str:
    return f"symbi.rpc.agents.{principal_id}.{method}"


class AgentClient:
    """One agent's connection to the bus (an async context manager)."""

    def __init__(
        self, nc: NatsClient, endpoint: BusEndpoint, *, stream_prefix: str = "SYMBI"
    ) -> None:
        self._nc = nc
        self._endpoint = endpoint
        self._stream_prefix = stream_prefix
        self._directory_task: asyncio.Task[None] | None = None
        self._topic_handlers: dict[str, Callable[[Received], Awaitable[None]]] = {}

    @classmethod
    async def connect(
        cls,
        keys_dir: Path | str,
        principal_id: str,
        nats_url: str,
        *,
        root_certificate: Path | None = None,
        config: BusSection | None = None,
    ) -> AgentClient:
        """Connect with the credentials in ``keys_dir`` (``<id>.key``, ``.cert``, ``.nkey``,
        ``root.cert``)."""
        credentials = load_credentials(Path(keys_dir), principal_id, root_certificate)
        if credentials.role != "agent":
            raise InvalidArgument(
                f"{principal_id} is a {credentials.role}, not an agent", reason="NOT_AN_AGENT"
            )
        refused = asyncio.Event()

        async def on_error(exc: Exception) -> None:
            if "authorization" in str(exc).lower():
                refused.set()

        # Reconnect forever once connected; but a refused login is final, so say so at once.
        connecting = asyncio.ensure_future(
            nats.connect(
                nats_url,
                nkeys_seed_str=credentials.nkey_seed,
                inbox_prefix=inbox_prefix(principal_id),
                name=principal_id,
                max_reconnect_attempts=-1,
                error_cb=on_error,
            )
        )
        refusal = asyncio.ensure_future(refused.wait())
        await asyncio.wait({connecting, refusal}, return_when=asyncio.FIRST_COMPLETED)
        refusal.cancel()
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting
            raise Unauthenticated(
                f"NATS refused {principal_id}'s credentials (revoked, or not registered with this server)",
                reason="NATS_AUTHORIZATION",
            )
        nc = connecting.result()
        try:
            endpoint = await BusEndpoint.open(
                nc, nc.jetstream(), credentials, config=config, manage_topics=()
            )
        except BaseException:
            await nc.close()
            raise
        client = cls(nc, endpoint)
        client._directory_task = asyncio.create_task(endpoint.run(), name=f"keys-{principal_id}")
        return client

    @property
    def principal_id(self) -> str:
        return self.bus.principal_id

    @property
    def bus(self) -> SecureBus:
        return self._endpoint.bus

    # ------------------------------------------------------------------ sending
    async def send(
        self, recipient: str, message: Message | bytes, *, content_type: str | None = None
    ) -> str:
        """A durable direct message; returns its id once stored."""
        return await self.bus.send(recipient, message, content_type=content_type)

    async def publish(
        self, topic: str, message: Message | bytes, *, content_type: str | None = None
    ) -> str:
        """To every member of an agent topic (``agents.<name>``, e.g. ``agents.public``)."""
        if not topic.startswith(AGENT_TOPIC_PREFIX):
            raise InvalidArgument(f"agents publish to topics named agents.<name>, not {topic!r}")
        return await self.bus.publish(topic, message, content_type=content_type)

    async def request(
        self,
        recipient: str,
        message: Message | bytes,
        *,
        method: str = "call",
        timeout: float = 5.0,
    ) -> Received:
        """Ask another agent (its :meth:`serve`) and wait for the verified reply."""
        return await self.bus.request(
            _agent_rpc_subject(recipient, method), message, recipient=recipient, timeout=timeout
        )

    # ------------------------------------------------------------------ receiving (loops)
    async def listen(self, handler: Callable[[Received], Awaitable[None]]) -> None:
        """Handle this agent's direct messages until cancelled (each acked after ``handler``)."""
        await self.bus.consume(ConsumerSpec.direct(self.principal_id, self._stream_prefix), handler)

    def _topics_spec(self) -> ConsumerSpec:
        return ConsumerSpec(
            f"{self._stream_prefix}_EVENTS",
            f"topics-{self.principal_id}",
            ("symbi.topic.agents.>",),
            deliver_policy=js_api.DeliverPolicy.NEW,
        )

    async def open_subscription(self) -> None:
        """Create this agent's (durable) subscription to agent topics now: messages published
        from here on are kept for it even before :meth:`subscribe` runs."""
        await self.bus.ensure_consumer(self._topics_spec())

    async def subscribe(self, topics: dict[str, Callable[[Received], Awaitable[None]]]) -> None:
        """Handle messages of agent topics until cancelled: ``{"agents.public": handler, …}``."""
        for topic in topics:
            if not topic.startswith(AGENT_TOPIC_PREFIX):
                raise InvalidArgument(
                    f"agents subscribe to topics named agents.<name>, not {topic!r}"
                )
        self._topic_handlers = dict(topics)

        async def dispatch(message: Received) -> None:
            handler = self._topic_handlers.get(message.envelope.topic)
            if handler is not None:
                await handler(message)

        await self.bus.consume(self._topics_spec(), dispatch)

    async def serve(
        self, responder: Callable[[Received], Awaitable[Message | bytes]], *, method: str = "call"
    ) -> None:
        """Answer :meth:`request` calls addressed to this agent until cancelled."""
        await self.bus.serve(
            _agent_rpc_subject(self.principal_id, method), responder, queue=self.principal_id
        )

    # ------------------------------------------------------------------ lifecycle
    async def close(self) -> None:
        if self._directory_task is not None:
            self._directory_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._directory_task
        if not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await self._nc.drain()

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
