"""How a command calls a service: find its address, open a channel, run one async action, and
turn a failure into one red line on stderr and an exit code.

The areas differ in what a failure means to the user, so each states it once as a
:class:`ServiceClient`: the exit code of each status (and of a server's reason), whether the
line names the action and the server's reason, and whether an unreached server is named.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import grpc
import typer
from rich.console import Console

from symbi_cli import output
from symbi_cli.connect import service_address
from symbi_common.errors import SymbiError, Unavailable
from symbi_common.grpc import ChannelOptions, error_from_rpc, open_channel

__all__ = ["ExitCodes", "ServiceClient", "unreached"]

StubT = TypeVar("StubT")
T = TypeVar("T")

#: A following call's deadline past its follow time; "forever" when it follows until it ends.
FOLLOW_DEADLINE_MARGIN_S = 10.0
FOLLOW_FOREVER_S = 365 * 86_400.0

#: The statuses of a call that may never have reached a server.
_UNREACHED_STATUSES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def unreached(status: grpc.StatusCode, error: SymbiError) -> bool:
    """Whether a failed call got no answer from a server: the status says it could not be
    delivered and no server's error details came back (the reason is just the status name);
    a server that answered ``UNAVAILABLE`` (e.g. no leader yet) sends its own reason."""
    return status in _UNREACHED_STATUSES and error.reason == status.name


@dataclass(frozen=True, kw_only=True)
class ExitCodes:
    """The exit code of each way a call can fail."""

    #: The service's address cannot be found.
    missing: int = output.UNREACHABLE
    #: By the server's reason; looked up before the status.
    reasons: Mapping[str, int] = field(default_factory=dict)
    #: By the call's status.
    statuses: Mapping[grpc.StatusCode, int] = field(default_factory=dict)
    #: Any other failure: the service refused.
    refused: int = output.REFUSED

    def of(self, status: grpc.StatusCode, error: SymbiError) -> int:
        """The exit code of a call that failed with ``status`` and ``error``."""
        if error.reason is not None and error.reason in self.reasons:
            return self.reasons[error.reason]
        return self.statuses.get(status, self.refused)


@dataclass(frozen=True, kw_only=True)
class ServiceClient(Generic[StubT]):
    """Calls to one service from one command area."""

    #: The service's name (as :func:`symbi_cli.connect.service_address` knows it).
    service: str
    #: The async stub on a channel.
    stub: Callable[[grpc.aio.Channel], StubT]
    codes: ExitCodes = field(default_factory=ExitCodes)
    #: End the line with the server's reason: ``error: <message> (<REASON>)``.
    show_reason: bool = False
    #: Say ``cannot reach the <service> at <address>:`` when the call reached no server.
    name_unreached: bool = False
    #: Where the error line goes.
    err: Console = output.err

    def target(self, address: str | None) -> str:
        """The service's ``host:port``; exits with ``codes.missing`` when it cannot be found."""
        try:
            return service_address(self.service, address=address)
        except Unavailable as exc:
            raise output.fail(exc.message, self.codes.missing, console=self.err) from None

    def call(
        self,
        address: str | None,
        action: Callable[[StubT], Awaitable[T]],
        what: str | None = None,
        *,
        options: ChannelOptions | None = None,
    ) -> T:
        """Run ``action`` on a stub; a failure prints one line (``what`` first) and exits."""
        target = self.target(address)

        async def run() -> T:
            async with open_channel(target, options) as channel:
                return await action(self.stub(channel))

        try:
            return asyncio.run(run())
        except grpc.aio.AioRpcError as exc:
            raise self.failed(exc, what, target=target) from None
        except SymbiError as exc:
            raise self.refused(exc.message, what) from None

    def follow(
        self,
        address: str | None,
        action: Callable[[StubT], Awaitable[None]],
        what: str | None = None,
        *,
        seconds: float = 0.0,
    ) -> None:
        """Run a following ``action`` (a watch) for at most ``seconds`` (0: until it ends); the
        end of that time and Ctrl-C (exit 0) end it cleanly, failures as in :meth:`call`."""

        async def timed(stub: StubT) -> None:
            if seconds <= 0:
                await action(stub)
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await action(stub)

        # A watch is open-ended: the channel's default deadline (meant for unary calls) would
        # end it after 30 s, so its calls get one past the follow time instead.
        deadline_s = seconds + FOLLOW_DEADLINE_MARGIN_S if seconds > 0 else FOLLOW_FOREVER_S
        try:
            self.call(address, timed, what, options=ChannelOptions(default_timeout_s=deadline_s))
        except KeyboardInterrupt:
            raise typer.Exit(0) from None

    def failed(
        self, exc: grpc.aio.AioRpcError, what: str | None = None, *, target: str = ""
    ) -> typer.Exit:
        """Print the line for a failed call; the Exit to raise with its code."""
        error = error_from_rpc(exc)
        status = exc.code()
        message = error.message
        if self.name_unreached and unreached(status, error):
            message = f"cannot reach the {self.service} at {target}: {message}"
        if self.show_reason:
            message = f"{message} ({error.reason})"
        return self._exit(message, what, self.codes.of(status, error))

    def refused(self, message: str, what: str | None = None) -> typer.Exit:
        """Print the line for a call the client itself gave up on (a SymbiError)."""
        return self._exit(message, what, self.codes.refused)

    def _exit(self, message: str, what: str | None, code: int) -> typer.Exit:
        return output.fail(f"{what}: {message}" if what else message, code, console=self.err)
