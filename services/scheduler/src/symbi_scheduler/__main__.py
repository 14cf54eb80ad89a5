"""``python -m symbi_scheduler``: run the scheduler service."""

from symbi_common.runner import run_main
from symbi_scheduler.app import build
from symbi_scheduler.settings import SchedulerSettings

if __name__ == "__main__":
    run_main(SchedulerSettings, build)
