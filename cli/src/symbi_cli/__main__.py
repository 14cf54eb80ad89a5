"""``python -m symbi_cli`` is the ``symbi`` command."""

from symbi_cli.main import app

if __name__ == "__main__":
    app()
