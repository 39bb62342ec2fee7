"""Optics and sensor of the synthetic generator: gain, fixed-pattern offsets, noise, defects.

All values are in normalised full-scale units (`mistd.data.synth.background`). Per sequence (it is
the same camera for all frames): vignetting (radial gain fall-off) and per-pixel gain
non-uniformity (PRNU), column and row fixed-pattern offsets, and a fixed set of dead (dark) and hot
(bright) pixels. Per frame: Gaussian read noise plus signal-dependent shot noise (variance
`read^2 + shot_gain * signal`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mistd.data.synth.config import SynthConfig, draw_range


@dataclass
class SensorParams:
    """Drawn (per sequence) values of the optics and sensor model; see the module docstring."""

    vignetting: float
    prnu: float
    column_fpn: float
    row_fpn: float
    read_noise: float
    shot_gain: float
    defect_fraction: float


def draw_sensor(cfg: SynthConfig, rng: np.random.Generator) -> SensorParams:
    """Per-sequence sensor parameters; drawn right after `draw_clutter` (fixed draw order)."""
    return SensorParams(
        vignetting=cfg.vignetting,
        prnu=cfg.prnu,
        column_fpn=cfg.column_fpn,
        row_fpn=cfg.row_fpn,
        read_noise=draw_range(rng, cfg.read_noise),
        shot_gain=cfg.shot_gain,
        defect_fraction=cfg.defect_fraction,
    )


class SensorModel:
    """A sequence's camera: fixed gain, offsets and defects, plus the temporal noise model.

    Args:
        params: the drawn sensor parameters.
        size: `(H, W)` of the output frames.
        rng: random generator (consumed in a fixed order, right after `SceneModel`'s draws).
    """

    def __init__(self, params: SensorParams, size: tuple[int, int], rng: np.random.Generator):
        self.params = params
        self.size = size
        h, w = size
        p = params
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2
        gain = (1.0 - p.vignetting * r2 / 2.0) * (1.0 + p.prnu * rng.standard_normal((h, w)))
        self.gain = gain.astype(np.float32)
        offset = p.column_fpn * rng.standard_normal((1, w)) + p.row_fpn * rng.standard_normal(
            (h, 1)
        )
        self.offset = offset.astype(np.float32)
        num_defects = int(rng.binomial(h * w, p.defect_fraction)) if p.defect_fraction > 0 else 0
        flat = rng.choice(h * w, size=num_defects, replace=False) if num_defects else np.zeros(0)
        self.defect_rows, self.defect_cols = np.divmod(flat.astype(np.int64), w)
        hot = rng.random(num_defects) < 0.6
        self.defect_values = np.where(
            hot, rng.uniform(0.75, 1.0, num_defects), rng.uniform(0.0, 0.08, num_defects)
        ).astype(np.float32)

    def clean(self, radiance: np.ndarray) -> np.ndarray:
        """Expected sensor signal (gain, vignetting, fixed-pattern offsets), `[H, W]` float32."""
        return radiance * self.gain + self.offset

    def noise_std(self, signal: np.ndarray) -> np.ndarray:
        """Per-pixel temporal noise std for a given expected signal (read + shot noise)."""
        p = self.params
        return np.sqrt(p.read_noise**2 + p.shot_gain * np.clip(signal, 0.0, None))

    def apply_defects(self, frame: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        """Overwrite dead/hot pixels in `frame` (in place) except where `keep` is True."""
        if self.defect_rows.size:
            values = self.defect_values
            rows, cols = self.defect_rows, self.defect_cols
            if keep is not None:
                ok = ~keep[rows, cols]
                rows, cols, values = rows[ok], cols[ok], values[ok]
            frame[rows, cols] = values
        return frame


def quantise(frame: np.ndarray, bit_depth: int) -> np.ndarray:
    """Full-scale float frame -> `uint8` (bit_depth 8) or `uint16` (16), rounded and clipped."""
    full = 255.0 if bit_depth == 8 else 65535.0
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return np.clip(np.rint(frame * full), 0, full).astype(dtype)


def solve_signal(target: float, read: float, shot: float, z: float) -> float:
    """Expected signal s with `s + z sqrt(read^2 + shot s) = target` (fixed point, contractive)."""
    s = target
    for _ in range(6):
        s = target - z * math.sqrt(read * read + shot * max(s, 0.0))
    return s
