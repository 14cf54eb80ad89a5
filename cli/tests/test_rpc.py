"""The shared call plumbing of the command areas: how a failed call becomes one error line and
an exit code (per status, per server reason), and an unreached server told apart from one that
answered UNAVAILABLE. No service runs: the actions raise the errors a channel would."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import grpc
import pytest
import typer
from rich.console import Console

from symbi_cli.output import BAD_INPUT, REFUSED, UNREACHABLE
from symbi_cli.rpc import ExitCodes, ServiceClient, unreached
from symbi_common.errors import InvalidArgument, SymbiError, Unavailable
from symbi_common.grpc import ERROR_METADATA_KEY, error_info

ADDRESS = "127.0.0.1:1"


def rpc_error(
    status: grpc.StatusCode, details: str, *, server: SymbiError | None = None
) -> grpc.aio.AioRpcError:
    """The error a call ends with; ``server``: the error the server sent in its details."""
    trailing = grpc.aio.Metadata()
    if server is not None:
        trailing.add(ERROR_METADATA_KEY, error_info(server).SerializeToString())
    return grpc.aio.AioRpcError(status, grpc.aio.Metadata(), trailing, details)


def client(**options: Any) -> tuple[ServiceClient[Any], io.StringIO]:
    stderr = io.StringIO()
    console = Console(file=stderr, width=400, highlight=False, soft_wrap=True)
    return ServiceClient(
        service="scheduler", stub=lambda channel: channel, err=console, **options
    ), stderr


def failing_call(service: ServiceClient[Any], exc: BaseException, what: str | None) -> int:
    async def action(stub: Any) -> None:
        raise exc

    with pytest.raises(typer.Exit) as exit_info:
        service.call(ADDRESS, action, what)
    return exit_info.value.exit_code


SCHEDULER = {
    "codes": ExitCodes(
        reasons={"SCHEDULER_NOT_ACTIVE": REFUSED},
        statuses={
            grpc.StatusCode.UNAVAILABLE: UNREACHABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED: UNREACHABLE,
            grpc.StatusCode.INVALID_ARGUMENT: BAD_INPUT,
        },
    ),
    "name_unreached": True,
}


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        pytest.param(
            rpc_error(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"),
            UNREACHABLE,
            f"error: watch: cannot reach the scheduler at {ADDRESS}: "
            "failed to connect to all addresses",
            id="unreached",
        ),
        pytest.param(
            rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
            UNREACHABLE,
            f"error: watch: cannot reach the scheduler at {ADDRESS}: Deadline Exceeded",
            id="deadline-unreached",
        ),
        pytest.param(
            rpc_error(
                grpc.StatusCode.UNAVAILABLE,
                "x",
                server=Unavailable("no leader elected yet", reason="NO_LEADER"),
            ),
            UNREACHABLE,
            "error: watch: no leader elected yet",
            id="answered-unavailable",
        ),
        pytest.param(
            rpc_error(
                grpc.StatusCode.UNAVAILABLE,
                "x",
                server=Unavailable("standby: ask 10.0.0.2", reason="SCHEDULER_NOT_ACTIVE"),
            ),
            REFUSED,
            "error: watch: standby: ask 10.0.0.2",
            id="reason-first",
        ),
        pytest.param(
            rpc_error(
                grpc.StatusCode.INVALID_ARGUMENT,
                "x",
                server=InvalidArgument("memory [4 GiB] over the limit"),
            ),
            BAD_INPUT,
            "error: watch: memory [4 GiB] over the limit",
            id="invalid-argument",
        ),
        pytest.param(
            rpc_error(grpc.StatusCode.NOT_FOUND, "no task t-1"),
            REFUSED,
            "error: watch: no task t-1",
            id="other-status",
        ),
        pytest.param(
            InvalidArgument("SYMBI_GRPC_TLS_KEY is missing"),
            REFUSED,
            "error: watch: SYMBI_GRPC_TLS_KEY is missing",
            id="client-side",
        ),
    ],
)
def test_scheduler_failures(exc: BaseException, code: int, line: str) -> None:
    service, stderr = client(**SCHEDULER)
    assert failing_call(service, exc, "watch") == code
    assert stderr.getvalue() == line + "\n"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (grpc.StatusCode.UNAVAILABLE, UNREACHABLE),
        (grpc.StatusCode.INVALID_ARGUMENT, REFUSED),
        (grpc.StatusCode.DEADLINE_EXCEEDED, REFUSED),
        (grpc.StatusCode.PERMISSION_DENIED, REFUSED),
    ],
)
def test_only_the_statuses_given_have_their_own_code(status: grpc.StatusCode, code: int) -> None:
    service, stderr = client(codes=ExitCodes(statuses={grpc.StatusCode.UNAVAILABLE: UNREACHABLE}))
    assert failing_call(service, rpc_error(status, "no"), "get a-1") == code
    assert stderr.getvalue() == "error: get a-1: no\n"  # the server is not named


def test_the_reason_follows_the_message_when_asked() -> None:
    service, stderr = client(show_reason=True)
    denied = rpc_error(
        grpc.StatusCode.PERMISSION_DENIED, "x", server=SymbiError("not yours", reason="DENIED")
    )
    assert failing_call(service, denied, None) == REFUSED
    assert stderr.getvalue() == "error: not yours (DENIED)\n"


def test_a_client_side_error_has_no_reason_appended() -> None:
    service, stderr = client(show_reason=True)
    assert failing_call(service, InvalidArgument("bad TLS files"), None) == REFUSED
    assert stderr.getvalue() == "error: bad TLS files\n"


@pytest.mark.parametrize("missing", [BAD_INPUT, UNREACHABLE])
def test_a_service_that_cannot_be_found(
    missing: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYMBI_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.setenv("SYMBI_HOME", str(tmp_path))
    service, stderr = client(codes=ExitCodes(missing=missing))

    async def action(stub: Any) -> None:
        raise AssertionError("no call without an address")

    with pytest.raises(typer.Exit) as exit_info:
        service.call(None, action, "status")
    assert exit_info.value.exit_code == missing
    assert stderr.getvalue().startswith("error: cannot find the scheduler service: ")


def test_a_call_that_succeeds_returns_the_result() -> None:
    service, stderr = client()

    async def action(stub: Any) -> str:
        assert isinstance(stub, grpc.aio.Channel)
        return "ok"

    assert service.call(ADDRESS, action, "status") == "ok"
    assert stderr.getvalue() == ""


def test_unreached_needs_both_the_status_and_no_server_details() -> None:
    assert unreached(grpc.StatusCode.UNAVAILABLE, Unavailable("x", reason="UNAVAILABLE"))
    assert unreached(grpc.StatusCode.DEADLINE_EXCEEDED, SymbiError("x", reason="DEADLINE_EXCEEDED"))
    assert not unreached(grpc.StatusCode.UNAVAILABLE, Unavailable("x", reason="NO_LEADER"))
    assert not unreached(grpc.StatusCode.NOT_FOUND, SymbiError("x", reason="NOT_FOUND"))


def test_a_follow_ends_cleanly_after_its_seconds() -> None:
    service, stderr = client()
    seen: list[str] = []

    async def endless(stub: Any) -> None:
        seen.append("started")
        await asyncio.Event().wait()

    service.follow(ADDRESS, endless, "watch", seconds=0.05)
    assert seen == ["started"]
    assert stderr.getvalue() == ""


def test_a_follow_without_seconds_runs_to_its_end_and_ctrl_c_exits_0() -> None:
    service, _ = client()
    ended: list[bool] = []

    async def short(stub: Any) -> None:
        ended.append(True)

    service.follow(ADDRESS, short, "watch")
    assert ended == [True]

    async def interrupted(stub: Any) -> None:
        raise KeyboardInterrupt

    with pytest.raises(typer.Exit) as exit_info:
        service.follow(ADDRESS, interrupted, "watch", seconds=5)
    assert exit_info.value.exit_code == 0


def test_a_follow_that_fails_exits_like_a_call() -> None:
    service, stderr = client(**SCHEDULER)

    async def lost(stub: Any) -> None:
        raise rpc_error(grpc.StatusCode.UNAVAILABLE, "connection reset")

    with pytest.raises(typer.Exit) as exit_info:
        service.follow(ADDRESS, lost, "watch", seconds=5)
    assert exit_info.value.exit_code == UNREACHABLE
    assert stderr.getvalue() == (
        f"error: watch: cannot reach the scheduler at {ADDRESS}: connection reset\n"
    )


def test_a_follow_is_not_cut_off_by_the_channels_default_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A watch outlives the 30 s default deadline of unary calls."""
    import symbi_cli.rpc as rpc
    from symbi_common.grpc import ChannelOptions, open_channel

    deadlines: list[float] = []

    def recording(target: str, options: Any = None) -> Any:
        deadlines.append((options or ChannelOptions()).default_timeout_s)
        return open_channel(target, options)

    monkeypatch.setattr(rpc, "open_channel", recording)
    service, _ = client()

    async def short(stub: Any) -> None:
        return None

    service.follow(ADDRESS, short, "watch")
    service.follow(ADDRESS, short, "watch", seconds=120)
    service.call(ADDRESS, short, "get")
    assert deadlines[0] >= 86_400  # until it ends
    assert deadlines[1] > 120
    assert deadlines[2] == 30.0  # unary calls keep the default
