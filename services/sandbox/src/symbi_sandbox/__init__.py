"""symbi_sandbox."""
