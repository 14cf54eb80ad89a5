"""``python -m symbi_context``: run the context service."""

from symbi_common.runner import run_main
from symbi_context.app import build
from symbi_context.settings import ContextSettings

if __name__ == "__main__":
    run_main(ContextSettings, build)
