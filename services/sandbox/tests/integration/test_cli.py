"""`symbi sandbox build-images --if-missing` and `symbi sandbox node` against real Docker."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from symbi_cli.main import app

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
