"""symbi_lifecycle."""
