"""The ``symbi`` command: one Typer app with a sub-command group per area.

Each area lives in ``symbi_cli.commands.<area>`` and exposes ``app: typer.Typer``.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from symbi_cli import commands

app = typer.Typer(
    name="symbi",
    help="Symbi: a secure, policy-driven runtime for autonomous AI agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_areas() -> None:
    # Areas are discovered so that each one is a single self-contained file; the order of
    # `symbi --help` is alphabetical.
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        area_app = getattr(module, "app", None)
        if isinstance(area_app, typer.Typer):
            app.add_typer(area_app, name=getattr(module, "NAME", info.name))
        register = getattr(module, "register", None)
        if callable(register):  # top-level commands such as `symbi up`
            register(app)


_register_areas()
