"""User-facing errors.

`InputError` is raised for anything a user can fix (a bad file, a malformed line, a wrong option).
The CLI prints its message on one line and exits with status 2, without a traceback. Messages name
the file (and line or field) and say what was expected. Values echoed back are cut to a readable
length (`short`), and a message never spans lines.

`check_range` is the one range check for numbers a user gives (options, config values, API
arguments): `check_range("--fps", fps, "> 0")` raises `InputError("--fps must be > 0, got nan")`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

# Longest echoed value and longest whole message (characters).
SHORT_VALUE = 80
LONGEST_MESSAGE = 600


def short(value: Any, limit: int = SHORT_VALUE) -> str:
    """`repr(value)` cut to `limit` characters (`'aaaa…' (7000 characters)`) for messages."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text)} characters)"


def _one_line(text: str) -> str:
    text = " ".join(text.split("\n"))
    if len(text) > LONGEST_MESSAGE:
        text = text[: LONGEST_MESSAGE - 20] + f"… ({len(text)} characters)"
    return text


class InputError(ValueError):
    """A user mistake: bad input data, a bad option or a bad config value.

    A `ValueError`, so code that checks arguments with `except ValueError` keeps working.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
            where += ": "
        super().__init__(_one_line(where + message))


_INTERVAL = re.compile(r"^\s*([\[(])\s*([^,]+),\s*([^\])]+)([\])])\s*$")
_BOUND = re.compile(r"^\s*(>=|>|<=|<)\s*(\S+)\s*$")


def in_range(value: float, interval: str) -> bool:
    """Whether `value` lies in `interval`: `"[0, 1]"`, `"(0, 1]"`, `"[1, inf)"`, `">= 1"`, `"> 0"`.

    NaN lies in no interval; infinities only where the interval says `inf`.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if math.isnan(value):
        return False
    match = _INTERVAL.match(interval)
    if match:
        left, low, high, right = match.groups()
        lo, hi = float(low), float(high)
        above = value >= lo if left == "[" else value > lo
        below = value <= hi if right == "]" else value < hi
        return above and below and (math.isfinite(value) or math.isinf(hi if value > 0 else lo))
    match = _BOUND.match(interval)
    if match is None:
        raise ValueError(f"bad interval {interval!r}")
    op, bound = match.group(1), float(match.group(2))
    if math.isinf(value):
        return False
    return {">=": value >= bound, ">": value > bound, "<=": value <= bound, "<": value < bound}[op]


def check_range(name: str, value: Any, interval: str, path: str | Path | None = None) -> Any:
    """Return `value` if it is a number in `interval` (see `in_range`), else raise `InputError`
    naming `name` (an option `--fps`, a config key `train.ema_decay`, an argument)."""
    if not in_range(value, interval):
        raise InputError(f"{name} must be {_describe(interval)}, got {short(value)}", path=path)
    return value


def _describe(interval: str) -> str:
    return f"in {interval.strip()}" if _INTERVAL.match(interval) else interval.strip()


def check_options(*checks: tuple[str, Any, str]) -> None:
    """`check_range` each `(name, value, interval)`; a None value (option not given) is skipped:
    `check_options(("--fps", fps, "(0, 1000]"), ("--max-frames", max_frames, ">= 1"))`."""
    for name, value, interval in checks:
        if value is not None:
            check_range(name, value, interval)
