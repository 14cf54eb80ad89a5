"""symbi_policy."""
