"""NATS client failures as Symbi errors, so the core's ports raise only ``SymbiError``.

Compare-and-set conflicts (JetStream error 10071, "wrong last sequence") become ``Aborted``;
timeouts ``DeadlineExceeded``; everything else about the connection or the server
``Unavailable`` (retryable).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats.errors
from nats.js import errors as js_errors

from symbi_common.errors import Aborted, DeadlineExceeded, SymbiError, Unavailable

__all__ = ["WRONG_LAST_SEQUENCE", "nats_call"]

#: JetStream's error code for a failed ``Nats-Expected-Last-*`` check.
WRONG_LAST_SEQUENCE = 10071


def translate(exc: BaseException, what: str) -> SymbiError:
    """The Symbi error for a NATS client exception raised while doing ``what``."""
    if isinstance(exc, js_errors.KeyWrongLastSequenceError) or (
        isinstance(exc, js_errors.APIError) and exc.err_code == WRONG_LAST_SEQUENCE
    ):
        return Aborted(f"{what}: {exc.description or 'wrong last sequence'}", reason="CAS_FAILED")
    if isinstance(exc, nats.errors.TimeoutError | asyncio.TimeoutError | TimeoutError):
        return DeadlineExceeded(f"{what}: NATS did not answer in time", reason="NATS_TIMEOUT")
    return Unavailable(f"{what}: {type(exc).__name__}: {exc}", reason="NATS_UNAVAILABLE")


@asynccontextmanager
async def nats_call(what: str) -> AsyncIterator[None]:
    """Run a block of NATS calls; their failures come out as ``SymbiError``."""
    try:
        yield
    except SymbiError:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise translate(exc, what) from exc
