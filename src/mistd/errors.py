"""User-facing errors.

`InputError` is raised for anything a user can fix (a bad file, a malformed line, a wrong option).
The CLI prints its message on one line and exits with status 2, without a traceback. Messages name
the file (and line or field) and say what was expected.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """A user mistake: bad input data, a bad option or a bad config value."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
            where += ": "
        super().__init__(where + message)
