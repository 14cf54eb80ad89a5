"""Connecting to NATS: retries with backoff until connected, then reconnects forever.

A process that starts while NATS is down keeps trying (logging each failure) and reports the
connection state through ``on_state`` so the gRPC health can say NOT_SERVING meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NatsClient
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from symbi_common.config import NatsSection

__all__ = ["ConnectionOptions", "NatsClient", "connect"]

log = logging.getLogger(__name__)

StateCallback = Callable[[bool], Awaitable[None]]


@dataclass(frozen=True)
class ConnectionOptions:
    """What identifies this connection and how it reacts to the server's state."""

    name: str
    on_state: StateCallback | None = None
    #: NKey seed (text) of this principal; overrides the section's seed file.
    nkey_seed: str | None = None
    #: Replies come to ``<prefix>.<id>``; NATS permissions confine each principal to its own.
    inbox_prefix: str | None = None
    max_backoff_s: float = 5.0


async def connect(section: NatsSection, options: ConnectionOptions) -> NatsClient:
    """Connect, retrying with exponential backoff and jitter until it works (or is cancelled)."""

    # The owner logs state changes: only it knows whether a disconnect is a drain it asked for.
    async def disconnected() -> None:
        if options.on_state:
            await options.on_state(False)

    async def reconnected() -> None:
        if options.on_state:
            await options.on_state(True)

    async def error(exc: Exception) -> None:
        log.debug("NATS client error: %s", exc)

    kwargs: dict[str, object] = {}
    if options.nkey_seed:
        kwargs["nkeys_seed_str"] = options.nkey_seed
    elif section.nkey_seed_file:
        kwargs["nkeys_seed"] = str(section.nkey_seed_file)
    if options.inbox_prefix:
        kwargs["inbox_prefix"] = options.inbox_prefix

    attempt = 0
    async for retry in AsyncRetrying(
        retry=retry_if_exception_type((OSError, TimeoutError, nats.errors.Error)),
        wait=wait_exponential_jitter(multiplier=0.05, max=options.max_backoff_s),
        reraise=True,
    ):
        with retry:
            attempt += 1
            try:
                client = await nats.connect(
                    servers=[s.strip() for s in section.url.split(",")],
                    name=options.name,
                    connect_timeout=section.connect_timeout_s,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    disconnected_cb=disconnected,
                    reconnected_cb=reconnected,
                    error_cb=error,
                    **kwargs,
                )
            except (OSError, TimeoutError, nats.errors.Error) as exc:
                if attempt == 1 or attempt % 10 == 0:
                    log.warning(
                        "cannot reach NATS at %s (attempt %d): %s",
                        section.url,
                        attempt,
                        exc or type(exc).__name__,
                    )
                raise
    if attempt > 1:
        log.info("connected to NATS after %d attempts", attempt)
    if options.on_state:
        await options.on_state(True)
    return client
