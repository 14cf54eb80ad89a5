"""The secure bus: signed (Ed25519) and encrypted (AES-256-GCM) envelopes over JetStream.

:class:`BusEndpoint` assembles one principal's view — credentials, keyring, group keys, the
key directory in KV and the :class:`SecureBus` — and :meth:`BusEndpoint.run` keeps it current.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from symbi_common.bus.credentials import ClusterAuthority, Credentials, load_credentials
from symbi_common.bus.directory import KeyDirectory, TopicKeys, TopicMembership
from symbi_common.bus.secure_bus import (
    BatchHandler,
    ConsumerSpec,
    FollowOutcome,
    FollowSpec,
    Handler,
    Received,
    SecureBus,
)
from symbi_common.config import BusSection
from symbi_common.crypto.groupkeys import GroupKeyring
from symbi_common.crypto.keyring import Keyring

__all__ = [
    "AGENTS_PUBLIC_TOPIC",
    "PLATFORM_TOPIC",
    "BatchHandler",
    "BusEndpoint",
    "ClusterAuthority",
    "ConsumerSpec",
    "Credentials",
    "FollowOutcome",
    "FollowSpec",
    "Handler",
    "KeyDirectory",
    "Received",
    "SecureBus",
    "TopicKeys",
    "TopicMembership",
    "load_credentials",
]

#: The topic of platform traffic (events, audit, heartbeats, service requests): every service
#: and worker node is a member; agents are not.
PLATFORM_TOPIC = TopicMembership("platform", roles=frozenset({"service", "node"}))
#: A topic every agent may read and write (``symbi.topic.agents.public``). Other agent topics
#: get their members from whoever manages them (a service running TopicKeys).
AGENTS_PUBLIC_TOPIC = TopicMembership("agents.public", roles=frozenset({"agent", "service"}))


@dataclass
class BusEndpoint:
    bus: SecureBus
    directory: KeyDirectory
    topic_keys: TopicKeys | None

    @classmethod
    async def open(
        cls,
        nc: NatsClient,
        js: JetStreamContext,
        credentials: Credentials,
        *,
        config: BusSection | None = None,
        name_prefix: str = "SYMBI",
        manage_topics: Iterable[TopicMembership] | None = None,
    ) -> BusEndpoint:
        """Load the key directory and build the bus. Services manage the platform topic's key
        by default; pass ``manage_topics=()`` to manage none."""
        keyring = Keyring(credentials.root)
        groups = GroupKeyring()
        directory = KeyDirectory(
            js,
            credentials.keys,
            credentials.certificate,
            keyring,
            groups,
            keyring_bucket=f"{name_prefix.lower()}_keyring",
            groups_bucket=f"{name_prefix.lower()}_groupkeys",
        )
        await directory.start()
        if manage_topics is None:
            manage_topics = (
                (PLATFORM_TOPIC, AGENTS_PUBLIC_TOPIC) if credentials.role == "service" else ()
            )
        topics = tuple(manage_topics)
        topic_keys = TopicKeys(directory, topics) if topics else None
        bus = SecureBus(
            nc,
            js,
            credentials.keys,
            keyring,
            groups,
            config=config,
            directory=directory,
            name_prefix=name_prefix,
        )
        return cls(bus, directory, topic_keys)

    async def run(self) -> None:
        """Follow the key directory (and rotate managed topics) until cancelled."""
        loops = [self.directory.run()]
        if self.topic_keys is not None:
            loops.append(self.topic_keys.run())
        await asyncio.gather(*loops)
