"""symbi_scheduler."""
