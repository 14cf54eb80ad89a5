"""symbi_common."""
