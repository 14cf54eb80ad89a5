"""``python -m symbi_audit``: run the audit service."""

from symbi_audit.app import build
from symbi_audit.settings import AuditSettings
from symbi_common.runner import run_main

if __name__ == "__main__":
    run_main(AuditSettings, build)
