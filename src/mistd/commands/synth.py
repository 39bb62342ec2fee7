"""CLI command: `mistd data synth` (registered on the `data` sub-app)."""

from __future__ import annotations

from mistd.commands.data import data_app  # noqa: F401
