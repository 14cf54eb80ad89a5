"""Sub-command groups of ``symbi``; each module exposes ``app`` (a group) and/or ``register``."""
