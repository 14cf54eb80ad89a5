"""symbi_testing."""
