"""Score thresholds: three names for three jobs, and where a model's own values come from.

- `DECODE_FLOOR` (0.001): the lowest score a detector keeps when decoding. Everything above it is
  scored by `mistd eval` (mAP integrates over all scores, the official protocol); it is never a
  display or deployment setting.
- `Thresholds.display`: boxes shown, drawn and written by `mistd detect` / `Predictor` results.
- `Thresholds.operating`: the deployment point where `eval` reports P/R/F1 (`op_f1`).
- `Thresholds.track`: the score from which the tracker trusts a detection to start or lead a
  track (`TrackerConfig.high_threshold` and `birth_threshold`).

A checkpoint may carry its own values under the top-level key `thresholds`:

    {"thresholds": {"display": 0.25, "operating": 0.4, "track": 0.25}, "state_dict": ..., ...}

(any subset of the three keys; each a number in [0, 1]). `mistd.weights.read_weights` reads it
(`Weights.thresholds`) through `Thresholds.from_dict`, the one place that parses it; a missing key
keeps the default of the model's kind (`LEARNED_DEFAULTS` for trained models,
`CLASSICAL_DEFAULTS` for the hand-crafted detectors). Command-line options and `Predictor`
arguments override it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from mistd.errors import InputError, in_range

DECODE_FLOOR = 0.001
CHECKPOINT_KEY = "thresholds"


@dataclass(frozen=True)
class Thresholds:
    """A detector's score thresholds (see module docstring)."""

    display: float = 0.3
    operating: float = 0.5
    track: float = 0.5

    @classmethod
    def from_dict(cls, data: Any, default: Thresholds, source: Any = None) -> Thresholds:
        """`default` with the values of `data` (a checkpoint's `thresholds` dict, or None).

        InputError naming `source` for a non-dict, an unknown key or a value outside [0, 1]."""
        if data is None:
            return default
        if not isinstance(data, dict):
            raise InputError(
                f"'{CHECKPOINT_KEY}' must be a dict of display/operating/track scores, "
                f"got {type(data).__name__}",
                source,
            )
        known = set(asdict(default))
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(
                f"'{CHECKPOINT_KEY}' has unknown key(s) {unknown} (expected {sorted(known)})",
                source,
            )
        values = {}
        for key, value in data.items():
            if not in_range(value, "[0, 1]"):
                raise InputError(
                    f"'{CHECKPOINT_KEY}.{key}' must be a number in [0, 1], got {value!r}", source
                )
            values[key] = float(value)
        return replace(default, **values)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


# Trained models: scores on cameras they never saw stay lower than the classical detectors'
# (`python benchmarks/tracker_settings.py`), so they start tracks from 0.3.
LEARNED_DEFAULTS = Thresholds(display=0.3, operating=0.5, track=0.3)
CLASSICAL_DEFAULTS = Thresholds(display=0.3, operating=0.5, track=0.5)
