"""The agent-side SDK, mounted read-only into every sandbox (``import symbi_agent``)."""
