"""``python -m symbi_sandbox``: run the sandbox service."""

from symbi_common.runner import run_main
from symbi_sandbox.app import build
from symbi_sandbox.settings import SandboxSettings

if __name__ == "__main__":
    run_main(SandboxSettings, build)
