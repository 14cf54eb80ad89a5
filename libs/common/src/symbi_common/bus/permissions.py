"""NATS connection authentication: one NKey user per principal, subject permissions by role.

``symbi up`` writes the block this module renders into the embedded server's configuration;
in a cluster the same rules go into the NATS Helm values. The server itself refuses what a
principal is not allowed to publish or subscribe to, before any envelope is looked at.

Roles:

- ``service`` — the platform's own services: everything under ``symbi.>``, the JetStream and
  KV APIs, inboxes.
- ``node`` — a worker node's sandbox: its task queue, task status and task output, its
  heartbeat, audit events, direct messages and requests; JetStream consumers only on the TASKS, DIRECT and
  EVENTS streams; reads of the key buckets; its own certificate.
- ``agent`` — an external agent: direct messages, agent topics and requests; one consumer, its
  own inbox of direct messages (the filter is part of the create subject, so the server checks
  it); reads of the key buckets. Replies only to its own inbox prefix.

Every principal's inbox prefix is ``_INBOX.<principal>`` (connect with
``inbox_prefix=inbox_prefix(principal)``): nodes and agents may subscribe only below their own,
so nobody reads another's replies; they answer requests through NATS's ``allow_responses``
(a reply is allowed to exactly the reply subject of a request they received).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["NatsUser", "authorization_block", "inbox_prefix", "permissions_for"]


def inbox_prefix(principal_id: str) -> str:
    return f"_INBOX.{principal_id}"


@dataclass(frozen=True)
class NatsUser:
    principal_id: str
    role: str
    nkey_public: str


def _key_bucket_reads(prefix: str) -> list[str]:
    subjects = []
    for bucket in (f"KV_{prefix.lower()}_keyring", f"KV_{prefix.lower()}_groupkeys"):
        subjects += [
            f"$JS.API.STREAM.INFO.{bucket}",
            f"$JS.API.DIRECT.GET.{bucket}.>",
            f"$JS.API.STREAM.MSG.GET.{bucket}",
            f"$JS.API.CONSUMER.CREATE.{bucket}",  # ordered consumers of KV watchers
            f"$JS.API.CONSUMER.CREATE.{bucket}.>",
            f"$JS.API.CONSUMER.DELETE.{bucket}.>",
            f"$JS.API.CONSUMER.INFO.{bucket}.>",
        ]
    return subjects


def permissions_for(role: str, principal_id: str, *, prefix: str = "SYMBI") -> dict[str, object]:
    """The ``permissions`` of one NKey user."""
    inbox = f"{inbox_prefix(principal_id)}.>"
    cert_prefix = "agentcert" if role == "agent" else "cert"  # see KeyDirectory.publish_certificate
    own_cert = f"$KV.{prefix.lower()}_keyring.{cert_prefix}.{principal_id}.*"
    if role in ("service", "root"):
        allow = ["symbi.>", "$JS.>", "$KV.>", "_INBOX.>"]
        return {"publish": {"allow": allow}, "subscribe": {"allow": [*allow, inbox]}}
    js_common = ["$JS.API.INFO", *_key_bucket_reads(prefix), own_cert]
    if role == "node":
        streams = (f"{prefix}_TASKS", f"{prefix}_DIRECT", f"{prefix}_EVENTS")
        consumer_api = []
        for stream in streams:
            consumer_api += [
                f"$JS.API.STREAM.INFO.{stream}",
                f"$JS.API.CONSUMER.CREATE.{stream}.>",
                f"$JS.API.CONSUMER.INFO.{stream}.>",
                f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
                f"$JS.ACK.{stream}.>",
            ]
        publish = [
            "symbi.task.status.*",
            "symbi.task.output.*",  # its tasks' stdout/stderr (services follow them)
            f"symbi.node.heartbeat.{principal_id}",
            "symbi.audit.>",
            "symbi.direct.*",
            "symbi.rpc.>",
            "symbi.topic.agents.>",  # the agents it hosts publish through its channel bridge
            *js_common,
            # Certificates of the agents it hosts (it certifies them with its issuer key), and
            # its issuer's own certificate.
            f"$KV.{prefix.lower()}_keyring.agentcert.*.*",
            f"$KV.{prefix.lower()}_keyring.cert.{principal_id}-issuer.*",
            *consumer_api,
        ]
        return {
            "publish": {"allow": publish},
            "subscribe": {"allow": [inbox]},
            "allow_responses": True,
        }
    if role == "agent":
        direct, events = f"{prefix}_DIRECT", f"{prefix}_EVENTS"
        inbox_consumer = f"direct-{principal_id}"
        topics_consumer = f"topics-{principal_id}"  # its one subscription to agent topics
        publish = [
            "symbi.direct.*",
            "symbi.topic.agents.>",
            "symbi.rpc.>",
            *js_common,
            f"$JS.API.STREAM.INFO.{direct}",
            f"$JS.API.CONSUMER.CREATE.{direct}.{inbox_consumer}.symbi.direct.{principal_id}",
            f"$JS.API.CONSUMER.INFO.{direct}.{inbox_consumer}",
            f"$JS.API.CONSUMER.MSG.NEXT.{direct}.{inbox_consumer}",
            f"$JS.ACK.{direct}.{inbox_consumer}.>",
            f"$JS.API.STREAM.INFO.{events}",
            f"$JS.API.CONSUMER.CREATE.{events}.{topics_consumer}.symbi.topic.agents.>",
            f"$JS.API.CONSUMER.INFO.{events}.{topics_consumer}",
            f"$JS.API.CONSUMER.MSG.NEXT.{events}.{topics_consumer}",
            f"$JS.ACK.{events}.{topics_consumer}.>",
        ]
        subscribe = [inbox, f"symbi.rpc.agents.{principal_id}.>"]
        return {
            "publish": {"allow": publish},
            "subscribe": {"allow": subscribe},
            "allow_responses": True,
        }
    raise ValueError(f"no NATS permissions for role {role!r}")


def authorization_block(users: Iterable[NatsUser], *, prefix: str = "SYMBI") -> str:
    """The server configuration's ``authorization { users = [...] }`` block."""
    entries = [
        {
            "nkey": user.nkey_public,
            "permissions": permissions_for(user.role, user.principal_id, prefix=prefix),
        }
        for user in users
    ]
    # JSON is valid NATS configuration syntax.
    return "authorization {\n  users = " + json.dumps(entries, indent=2) + "\n}\n"
