"""The whole local platform (`symbi up --detach`) for end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LocalPlatform", "symbi_cli"]

#: Start-up under a loaded CI machine can take longer than the interactive default (20 s);
#: these tests check behaviour, not start-up time.
START_TIMEOUT_S = 90


def symbi_cli(
    *args: str, timeout: float = START_TIMEOUT_S + 60, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``symbi`` as a separate process, as a user would (``home``: its SYMBI_HOME)."""
    env = dict(os.environ)
    if home is not None:
        env["SYMBI_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "symbi_cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


@dataclass
class LocalPlatform:
    data_dir: Path

    def up(self) -> None:
        result = symbi_cli(
            "up",
            "--detach",
            "--ephemeral",
            "--timeout",
            str(START_TIMEOUT_S),
            "--data-dir",
            str(self.data_dir),
        )
        if result.returncode != 0:
            logs = "\n".join(
                f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                for log in sorted((self.data_dir / "logs").glob("*.log"))
            )
            raise AssertionError(f"symbi up failed:\n{result.stdout}{result.stderr}\n{logs}")

    @property
    def state(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.data_dir / "state.json").read_text())
        return loaded

    def grpc(self, service: str) -> str:
        return str(self.state["services"][service]["grpc"])

    @property
    def nats_url(self) -> str:
        return str(self.state["nats_url"])

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``symbi <args>`` against this platform (SYMBI_HOME points at it)."""
        return symbi_cli(*args, home=self.data_dir)

    def down(self) -> subprocess.CompletedProcess[str]:
        return symbi_cli("down", "--data-dir", str(self.data_dir))
