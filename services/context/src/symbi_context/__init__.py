"""symbi_context."""
