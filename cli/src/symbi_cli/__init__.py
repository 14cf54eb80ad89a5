"""symbi_cli."""
