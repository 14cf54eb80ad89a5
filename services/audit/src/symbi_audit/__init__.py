"""symbi_audit."""
