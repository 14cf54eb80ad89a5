"""Real stdio servers: mcp-server-time and mcp-server-git from PyPI, and a misbehaving one of
our own. One pooled process per server, whatever the number of calls."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from symbi_common.errors import DeadlineExceeded, PermissionDenied, ResourceExhausted, Unavailable
from symbi_mcp_gateway import McpServerConfig, ToolGateway, ToolStatus, sha256_digest
from symbi_testing.eventually import eventually

if TYPE_CHECKING:
    from ..conftest import RecordingAlerts, RecordingAudit, RulePolicy

OpenGateway = Callable[..., AbstractAsyncContextManager[ToolGateway]]
BIN = Path(sys.executable).parent
FAULTY = Path(__file__).with_name("faulty_server.py")


def time_server(**overrides: object) -> McpServerConfig:
    values: dict[str, object] = {
        "name": "time",
        "command": str(BIN / "mcp-server-time"),
        "domain": "time.example",
        "trust_mode": "permissive",
        "connection_timeout_s": 30,
    }
    values.update(overrides)
    return McpServerConfig.model_validate(values)


def faulty_server(**overrides: object) -> McpServerConfig:
    values: dict[str, object] = {
        "name": "faulty",
        "command": sys.executable,
        "args": [str(FAULTY)],
        "trust_mode": "development",
        "connection_timeout_s": 30,
    }
    values.update(overrides)
    return McpServerConfig.model_validate(values)


async def test_time_server_discovery_and_calls(
    open_gateway: OpenGateway, audit: RecordingAudit
) -> None:
    async with open_gateway() as gateway:
        info = await gateway.register_server(time_server())
        assert info.connected, info.last_error
        names = {view.name: view.status for view in gateway.tools("time")}
        assert names == {
            "get_current_time": ToolStatus.ALLOWED_UNVERIFIED,
            "convert_time": ToolStatus.ALLOWED_UNVERIFIED,
        }
        results = await asyncio.gather(
            *(
                gateway.invoke("agent-1", "time", "get_current_time", {"timezone": "UTC"})
                for _ in range(5)
            )
        )
        assert all(result.structured_content["timezone"] == "UTC" for result in results)
        converted = await gateway.invoke(
            "agent-1",
            "time",
            "convert_time",
            {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
        )
        assert converted.structured_content["target"]["datetime"].startswith(
            converted.structured_content["source"]["datetime"][:10]
        )
    assert len(audit.of_type("mcp.server.connected")) == 1  # one process for six calls
    events = audit.calls(outcome="ok", tool="get_current_time")
    assert len(events) == 5
    assert events[0].details["arguments_sha256"] == sha256_digest({"timezone": "UTC"})


async def test_time_server_in_strict_mode_is_hidden(open_gateway: OpenGateway) -> None:
    async with open_gateway() as gateway:
        await gateway.register_server(time_server(trust_mode="strict"))
        assert {view.status for view in gateway.tools("time")} == {ToolStatus.UNSIGNED}
        assert await gateway.tools_for_agent("agent-1") == []
        with pytest.raises(PermissionDenied):
            await gateway.invoke("agent-1", "time", "get_current_time", {"timezone": "UTC"})


async def test_time_server_rejects_bad_arguments_before_the_call(
    open_gateway: OpenGateway, audit: RecordingAudit
) -> None:
    from symbi_common.errors import InvalidArgument

    async with open_gateway() as gateway:
        await gateway.register_server(time_server())
        with pytest.raises(InvalidArgument, match="timezone"):
            await gateway.invoke("agent-1", "time", "get_current_time", {"tz": 1})
    assert audit.calls(outcome="refused", reason="INVALID_ARGUMENTS")


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "test@example.com")
    git("config", "user.name", "Test")
    (repo / "README.md").write_text("hello\n")
    git("add", "README.md")
    git("commit", "-q", "-m", "first commit")
    (repo / "new.txt").write_text("untracked\n")
    return repo


async def test_git_server_against_a_temp_repo_with_a_denied_call(
    open_gateway: OpenGateway, git_repo: Path, policy: RulePolicy, audit: RecordingAudit
) -> None:
    policy.denied.add(("agent-1", "git/git_commit"))
    config = McpServerConfig(
        name="git",
        command=str(BIN / "mcp-server-git"),
        args=("--repository", str(git_repo)),
        domain="git.example",
        trust_mode="permissive",
        connection_timeout_s=30,
    )
    async with open_gateway() as gateway:
        info = await gateway.register_server(config)
        assert info.connected, info.last_error
        names = {view.name for view in gateway.tools("git")}
        assert {"git_status", "git_log", "git_commit", "git_add"} <= names
        visible = {view.name for view in await gateway.tools_for_agent("agent-1")}
        assert "git_commit" not in visible
        assert "git_status" in visible
        status = await gateway.invoke("agent-1", "git", "git_status", {"repo_path": str(git_repo)})
        assert "new.txt" in "\n".join(status.text)
        log = await gateway.invoke("agent-1", "git", "git_log", {"repo_path": str(git_repo)})
        assert "first commit" in "\n".join(log.text)
        with pytest.raises(PermissionDenied) as caught:
            await gateway.invoke(
                "agent-1", "git", "git_commit", {"repo_path": str(git_repo), "message": "x"}
            )
    assert caught.value.reason == "POLICY_DENIED"
    [denied] = audit.calls(tool="git_commit")
    assert denied.decision == "deny"
    assert denied.details["outcome"] == "refused"
    head = await asyncio.to_thread(
        subprocess.run,
        ["git", "log", "--oneline"],
        cwd=git_repo,
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(head.stdout.splitlines()) == 1  # nothing was committed


async def test_a_crash_mid_call_is_reported_and_the_session_recovers(
    open_gateway: OpenGateway, audit: RecordingAudit
) -> None:
    async with open_gateway() as gateway:
        await gateway.register_server(faulty_server())
        first_pid = (await gateway.invoke("a", "faulty", "pid", {})).structured_content["result"]
        with pytest.raises(Unavailable) as caught:
            await gateway.invoke("a", "faulty", "crash", {})
        assert caught.value.reason == "SERVER_DISCONNECTED"
        assert "faulty" in caught.value.message
        await eventually(lambda: gateway.server_info("faulty").connected, timeout=30)
        second_pid = (await gateway.invoke("a", "faulty", "pid", {})).structured_content["result"]
        assert second_pid != first_pid
        assert (await gateway.invoke("a", "faulty", "echo", {"text": "back"})).text == ["back"]
    assert audit.calls(outcome="failed", reason="SERVER_DISCONNECTED")
    assert audit.of_type("mcp.server.disconnected")


async def test_malformed_json_rpc_is_refused_audited_and_recovered(
    open_gateway: OpenGateway, audit: RecordingAudit, alerts: RecordingAlerts
) -> None:
    async with open_gateway() as gateway:
        await gateway.register_server(faulty_server())
        with pytest.raises(Unavailable) as caught:
            await gateway.invoke("a", "faulty", "garbage", {}, timeout_s=20)
        assert "malformed" in caught.value.message
        await eventually(lambda: gateway.server_info("faulty").connected, timeout=30)
        assert (await gateway.invoke("a", "faulty", "echo", {"text": "ok"})).text == ["ok"]
    assert alerts.kinds() == ["protocol_violation"]
    assert audit.of_type("mcp.server.protocol_violation")


async def test_an_oversized_result_is_refused_and_audited(
    open_gateway: OpenGateway, audit: RecordingAudit, alerts: RecordingAlerts
) -> None:
    config = faulty_server(max_result_bytes=16 * 1024, max_message_bytes=64 * 1024)
    async with open_gateway() as gateway:
        await gateway.register_server(config)
        small = await gateway.invoke("a", "faulty", "big", {"size": 1000})
        assert len(small.text[0]) == 1000
        # Larger than the result limit, within the message limit: read, then refused.
        with pytest.raises(ResourceExhausted) as over_result:
            await gateway.invoke("a", "faulty", "big", {"size": 30_000})
        assert over_result.value.reason == "RESULT_TOO_LARGE"
        assert (await gateway.invoke("a", "faulty", "echo", {"text": "same session"})).text
        # Far beyond the message limit: never buffered; the session is dropped and comes back.
        with pytest.raises(ResourceExhausted) as over_message:
            await gateway.invoke("a", "faulty", "big", {"size": 20_000_000}, timeout_s=30)
        assert over_message.value.reason == "MESSAGE_TOO_LARGE"
        await eventually(lambda: gateway.server_info("faulty").connected, timeout=30)
        assert (await gateway.invoke("a", "faulty", "echo", {"text": "back"})).text == ["back"]
    assert audit.calls(outcome="refused", reason="RESULT_TOO_LARGE")
    assert audit.calls(outcome="refused", reason="MESSAGE_TOO_LARGE")
    reasons = {
        event.details.get("reason") for event in audit.of_type("mcp.server.protocol_violation")
    }
    assert "MESSAGE_TOO_LARGE" in reasons
    assert "protocol_violation" in alerts.kinds()


async def test_a_hanging_tool_times_out_and_the_session_stays_usable(
    open_gateway: OpenGateway,
) -> None:
    async with open_gateway() as gateway:
        await gateway.register_server(faulty_server())
        with pytest.raises(DeadlineExceeded):
            await gateway.invoke("a", "faulty", "hang", {}, timeout_s=0.5)
        assert (await gateway.invoke("a", "faulty", "echo", {"text": "still here"})).text == [
            "still here"
        ]
