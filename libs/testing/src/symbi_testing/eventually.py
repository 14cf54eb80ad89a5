"""Poll until a condition holds, instead of sleeping and hoping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["eventually", "eventually_sync"]

T = TypeVar("T")


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "",
) -> T:
    """Call ``check`` until it returns a truthy value without raising AssertionError.

    Returns that value. On the deadline, re-raises the last AssertionError (or raises one
    saying the value stayed falsy), so the failure shows what was last observed.
    """
    deadline = time.monotonic() + timeout
    last_error: AssertionError | None = None
    last_value: object = None
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            last_value, last_error = result, None
        except AssertionError as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            if last_error is not None:
                raise AssertionError(
                    f"{message or 'condition'} not met in {timeout} s: {last_error}"
                ) from last_error
            raise AssertionError(
                f"{message or 'condition'} not met in {timeout} s (last value: {last_value!r})"
            )
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02, message: str = ""
) -> T:
    """The same, for synchronous code."""
    deadline = time.monotonic() + timeout
    last_error: AssertionError | None = None
    last_value: object = None
    while True:
        try:
            result = check()
            if result:
                return result
            last_value, last_error = result, None
        except AssertionError as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            if last_error is not None:
                raise AssertionError(
                    f"{message or 'condition'} not met in {timeout} s: {last_error}"
                ) from last_error
            raise AssertionError(
                f"{message or 'condition'} not met in {timeout} s (last value: {last_value!r})"
            )
        time.sleep(interval)
