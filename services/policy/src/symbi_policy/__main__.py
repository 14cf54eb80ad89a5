"""``python -m symbi_policy``: run the policy service."""

from symbi_common.runner import run_main
from symbi_policy.app import build
from symbi_policy.settings import PolicySettings

if __name__ == "__main__":
    run_main(PolicySettings, build)
