"""Test harness for Symbi: real nats-server, service processes, and polling with a deadline.

Loaded by pytest through the ``pytest11`` entry point (``symbi_testing.plugin``); the helpers
here can also be imported directly.
"""

from symbi_testing.eventually import eventually, eventually_sync
from symbi_testing.platform import LocalPlatform, symbi_cli
from symbi_testing.services import ServiceCluster

__all__ = ["LocalPlatform", "ServiceCluster", "eventually", "eventually_sync", "symbi_cli"]
