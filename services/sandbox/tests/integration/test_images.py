"""Base images: built locally, labelled with their recipe, kept when current."""

from __future__ import annotations

import docker
import pytest

from symbi_sandbox.images import BUSYBOX_IMAGE, PYTHON_IMAGE, RECIPE_LABEL, build_images

pytestmark = pytest.mark.docker


def test_busybox_rebuilds_and_if_missing_keeps_current_images(docker_images: None) -> None:
    client = docker.from_env(timeout=120)
    try:
        lines: list[str] = []
        built = build_images(client, names=["symbi/busybox"], progress=lines.append)
        assert [(b.name, b.built) for b in built] == [(BUSYBOX_IMAGE, True)]
        assert any("busybox" in line for line in lines)
        image = client.images.get(BUSYBOX_IMAGE)
        assert image.attrs["Config"]["Labels"][RECIPE_LABEL] == "1"
        assert image.attrs["Config"]["User"] == "65534:65534"
        kept = build_images(client, if_missing=True)
        assert {(b.name, b.built) for b in kept} == {(BUSYBOX_IMAGE, False), (PYTHON_IMAGE, False)}
        output = client.containers.run(
            PYTHON_IMAGE,
            ["python3", "-c", "import ssl, sqlite3, json; print('ok')"],
            network_mode="none",
            read_only=True,
            remove=True,
        )
        assert output.strip() == b"ok"
    finally:
        client.close()


def test_unknown_recipe_is_refused(docker_images: None) -> None:
    from symbi_common.errors import NotFound

    client = docker.from_env(timeout=30)
    try:
        with pytest.raises(NotFound, match="known: symbi/busybox"):
            build_images(client, names=["symbi/ruby"])
    finally:
        client.close()
