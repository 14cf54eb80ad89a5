"""`symbi sandbox`: build-images and node against real Docker; run, get and info as a real
CLI process against a real sandbox service."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from symbi_cli.main import app
from symbi_testing.services import ServiceCluster

from .platform import SchedulerStandIn, start_node

pytestmark = pytest.mark.docker


def test_build_images_if_missing_keeps_present_images(docker_images: None) -> None:
    result = CliRunner().invoke(app, ["sandbox", "build-images", "--if-missing"])
    assert result.exit_code == 0, result.output
    assert "symbi/busybox:latest: present (recipe 1), kept" in result.output
    assert "symbi/python:latest: present (recipe 1), kept" in result.output


def test_unknown_image_is_bad_usage(docker_images: None) -> None:
    result = CliRunner().invoke(app, ["sandbox", "build-images", "--image", "symbi/ruby"])
    assert result.exit_code == 2
    assert "no image recipe named symbi/ruby" in result.output


def test_node_lists_both_runtimes(docker_images: None) -> None:
    result = CliRunner().invoke(app, ["sandbox", "node"])
    assert result.exit_code == 0, result.output
    assert "runc" in result.output
    assert "runsc" in result.output


async def symbi(*args: str, address: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from symbi_cli.main import app; app()",
        *args,
        env={**os.environ, "SYMBI_SANDBOX_ADDRESS": address, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_run_get_and_info_against_the_service(
    scheduler: SchedulerStandIn, services: ServiceCluster, short_dir: Path
) -> None:
    name = f"k{uuid.uuid4().hex[:8]}"
    process = await start_node(services, short_dir, name)
    assert process.grpc_address is not None
    address = process.grpc_address

    code, out, err = await symbi(
        "sandbox", "run", "--tier", "gvisor", "--no-channel", "--task-id", "cli-1",
        "symbi/busybox", "--", "sh", "-c", "echo visible; echo oops >&2; exit 5",
        address=address,
    )  # fmt: skip
    assert code == 5, err
    assert out == "visible\n"
    assert "oops" in err
    assert "EXITED" in err

    code, out, _ = await symbi("sandbox", "get", "cli-1", address=address)
    assert code == 0
    assert "EXITED" in out
    assert "gvisor" in out
    code, out, _ = await symbi("sandbox", "info", address=address)
    assert code == 0
    assert f"node-{name}" in out
    assert "tiers: docker, gvisor" in out

    code, _, err = await symbi("sandbox", "run", "NOT VALID", address=address)
    assert code == 2
    assert "task.image" in err
    code, _, err = await symbi("sandbox", "info", address="127.0.0.1:1")
    assert code == 3
