"""CLI commands: `mistd data ...` (info, convert, synth)."""

from __future__ import annotations

import typer

data_app = typer.Typer(
    help="Inspect, convert and generate data sets.", no_args_is_help=True, rich_markup_mode=None
)


def register(app: typer.Typer) -> None:
    """Add `mistd data ...` to `app`."""
    from mistd.commands import synth  # noqa: F401  (registers `data synth` on data_app)

    app.add_typer(data_app, name="data")
