"""Settings of the synthetic generator: `SynthConfig`, the difficulty presets, size parsing."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mistd.errors import InputError

Range = tuple[float, float]


@dataclass
class SynthConfig:
    """Everything that defines a synthetic sequence (presets: `preset_config(name)`).

    Ranges `(lo, hi)` are drawn uniformly per sequence (clutter) or per target. Levels and noise are
    in full-scale units (1.0 = largest output value), motion in pixels per frame.
    """

    preset: str = "medium"
    height: int = 256
    width: int = 256
    num_frames: int = 50
    bit_depth: int = 8
    # Targets.
    scr_range: Range = (3.0, 5.0)
    min_targets: int = 1
    max_targets: int = 3
    sigma_range: Range = (0.7, 1.8)
    max_aspect: float = 1.5
    speed_range: Range = (0.3, 2.0)
    turn_rate: float = 0.02  # max heading change, radians per frame
    cross_border_prob: float = 0.3
    empty_frame_fraction: float = 0.1
    box_margin: float = 1.0
    min_visible_fraction: float = 0.5
    min_visible_size: float = 2.0
    # Sky and clouds.
    sky_level: Range = (0.2, 0.35)
    horizon_glow: Range = (0.05, 0.2)
    cloud_beta: Range = (2.8, 3.4)
    cloud_coverage: Range = (0.25, 0.55)
    cloud_contrast: Range = (0.1, 0.22)
    cloud_texture: float = 0.15
    edge_gain: Range = (0.5, 1.0)
    edge_width: float = 0.12
    cloud_evolution: Range = (0.003, 0.01)
    wind_speed: Range = (0.05, 0.3)
    # Ground.
    ground_prob: float = 0.5
    horizon_row: Range = (0.6, 0.9)
    ground_contrast: Range = (0.05, 0.2)
    ground_texture: Range = (0.02, 0.05)
    max_structures: int = 4
    # Camera, optics, sensor.
    pan_speed: Range = (0.05, 0.4)
    jitter: Range = (0.1, 0.4)
    optics_blur: float = 0.6
    vignetting: float = 0.1
    prnu: float = 0.01
    column_fpn: float = 0.002
    row_fpn: float = 0.001
    read_noise: Range = (0.005, 0.008)
    shot_gain: float = 1.5e-4
    defect_fraction: float = 5e-5


def _easy() -> SynthConfig:
    return SynthConfig(
        preset="easy",
        scr_range=(6.0, 10.0),
        min_targets=1,
        max_targets=2,
        sigma_range=(1.0, 2.0),
        speed_range=(0.3, 1.5),
        cross_border_prob=0.2,
        empty_frame_fraction=0.0,
        cloud_beta=(3.2, 3.8),
        cloud_coverage=(0.1, 0.3),
        cloud_contrast=(0.05, 0.12),
        edge_gain=(0.2, 0.4),
        ground_prob=0.2,
        horizon_row=(0.8, 0.95),
        ground_contrast=(0.05, 0.1),
        ground_texture=(0.01, 0.02),
        max_structures=1,
        pan_speed=(0.0, 0.2),
        jitter=(0.0, 0.15),
        vignetting=0.05,
        prnu=0.005,
        column_fpn=0.0,
        row_fpn=0.0,
        read_noise=(0.004, 0.006),
        shot_gain=1e-4,
        defect_fraction=0.0,
    )


def _medium() -> SynthConfig:
    return SynthConfig(preset="medium")


def _hard() -> SynthConfig:
    return SynthConfig(
        preset="hard",
        scr_range=(1.5, 3.0),
        min_targets=1,
        max_targets=4,
        sigma_range=(0.5, 1.5),
        speed_range=(0.3, 2.5),
        cross_border_prob=0.4,
        empty_frame_fraction=0.15,
        cloud_beta=(2.5, 3.1),
        cloud_coverage=(0.4, 0.75),
        cloud_contrast=(0.18, 0.32),
        cloud_texture=0.25,
        edge_gain=(0.9, 1.5),
        edge_width=0.09,
        cloud_evolution=(0.005, 0.02),
        ground_prob=0.8,
        horizon_row=(0.55, 0.85),
        ground_contrast=(0.1, 0.3),
        ground_texture=(0.04, 0.08),
        max_structures=8,
        pan_speed=(0.2, 0.8),
        jitter=(0.3, 0.8),
        vignetting=0.15,
        prnu=0.02,
        column_fpn=0.004,
        row_fpn=0.002,
        read_noise=(0.008, 0.014),
        shot_gain=2.5e-4,
        defect_fraction=3e-4,
    )


#: Difficulty presets: name -> function returning a fresh `SynthConfig`.
PRESETS: dict[str, Callable[[], SynthConfig]] = {"easy": _easy, "medium": _medium, "hard": _hard}


def preset_config(name: str, **overrides) -> SynthConfig:
    """The `SynthConfig` of preset `name` (easy, medium, hard) with keyword `overrides` applied."""
    if name not in PRESETS:
        raise InputError(f"unknown preset '{name}'; expected one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name](), **overrides)


# The largest frame side `data synth` generates (an 8192x8192 float frame is 268 MB).
MAX_SIDE = 8192


def parse_size(text: str) -> tuple[int, int]:
    """`"256x320"` -> `(256, 320)` (height, width); InputError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match:
        raise InputError(f"--size: expected HxW (e.g. 256x256), got '{text}'")
    h, w = int(match.group(1)), int(match.group(2))
    if h < 16 or w < 16:
        raise InputError(f"--size: frames must be at least 16x16 pixels, got {h}x{w}")
    if h > MAX_SIDE or w > MAX_SIDE:
        raise InputError(
            f"--size: frames must be at most {MAX_SIDE}x{MAX_SIDE} pixels, got {h}x{w} (infrared "
            "sensors are 320x256 to 1280x1024)"
        )
    return h, w


def validate_config(cfg: SynthConfig) -> None:
    """Raise InputError naming the field when `cfg` cannot produce a data set."""

    def bad(name: str, expected: str) -> None:
        raise InputError(f"synth config '{name}': expected {expected}, got {getattr(cfg, name)!r}")

    if cfg.bit_depth not in (8, 16):
        bad("bit_depth", "8 or 16")
    if cfg.num_frames < 1:
        bad("num_frames", "at least 1 frame")
    if cfg.height < 16 or cfg.width < 16:
        raise InputError(f"synth config size: at least 16x16, got {cfg.height}x{cfg.width}")
    for name in ("scr_range", "sigma_range", "speed_range"):
        lo, hi = getattr(cfg, name)
        if not 0 < lo <= hi:
            bad(name, "0 < lo <= hi")
    if not 0 <= cfg.min_targets <= cfg.max_targets:
        bad("max_targets", "0 <= min_targets <= max_targets")
    if not 0 <= cfg.empty_frame_fraction <= 1:
        bad("empty_frame_fraction", "a fraction in [0, 1]")


def draw_range(rng: np.random.Generator, value: Range) -> float:
    """A uniform draw from `value = (lo, hi)`; `lo` without a draw when the range is empty."""
    lo, hi = value
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)
