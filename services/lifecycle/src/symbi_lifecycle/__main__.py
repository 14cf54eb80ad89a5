"""``python -m symbi_lifecycle``: run the lifecycle service."""

from symbi_common.runner import run_main
from symbi_lifecycle.app import build
from symbi_lifecycle.settings import LifecycleSettings

if __name__ == "__main__":
    run_main(LifecycleSettings, build)
