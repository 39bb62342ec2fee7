"""Synthetic infrared video generator: the embedded default data set (demos, tests, benchmarks).

A sequence is a physically motivated infrared scene (`mistd.data.synth_clutter`: sky, fractal clouds
with bright edges, optional horizon and ground, camera pan/jitter, optics, fixed-pattern and
temporal sensor noise, dead/hot pixels) with small moving targets added before the sensor noise.
Semi-synthetic mode replaces the simulated background by real infrared footage (whose own annotated
target is first painted out) and adds the same simulated targets.

Targets. Each target (a track) is a Gaussian point-spread blob with per-axis sigmas in
`sigma_range` (pixel-integrated, so sub-pixel positions render exactly), moving on a smooth path
(constant speed, slowly turning heading) plus the camera motion. Some tracks cross the frame border
(entering or leaving); a block of `empty_frame_fraction * M` consecutive frames per sequence shows
no target at all (the targets are "not there", e.g. behind the horizon), and `min_targets = 0` gives
sequences with no target.

Boxes. A target at sub-pixel centre `(cx, cy)` (pixel `(i, j)` covers `[j, j+1) x [i, i+1)`) with
sigmas `(sx, sy)` has the box `[cx - hx, cy - hy, cx + hx, cy + hy]` with `hx = 2 sx + box_margin`,
`hy = 2 sy + box_margin` (the +-2 sigma extent plus a margin, default 1 px: 4 px boxes for
sigma 0.5, 10 px for sigma 2), xyxy float pixels, clipped to the image. A partly visible target is
labelled only if its clipped box keeps at least `min_visible_fraction` of its area, both clipped
sides are at least `min_visible_size` px and its centre pixel is inside the image; otherwise it is
still rendered but carries no box (as in real data, where border targets are often unlabelled).

Signal-to-clutter ratio (SCR), as written into `synth.yaml` and checked by the tests::

    SCR = (I[floor(cy), floor(cx)] - mean(ring)) / max(std(ring), 1/255 full scale)

measured on the output frame (quantised, with noise). `I[...]` is the pixel holding the box centre
(the brightest pixel of the target's pixel-integrated PSF). The ring is the square annulus between
the box grown by `SCR_RING_GAP` (2) px and the box grown by `SCR_RING_GAP + SCR_RING_WIDTH` (7) px,
clipped to the image, excluding other targets' grown boxes. The std floor of one 8-bit grey level
keeps SCR bounded on flat quantised backgrounds (a black sky in real 8-bit video). The generator
draws a wanted SCR per track (slowly varying in `scr_range`) and solves for the target amplitude so
that the centre pixel hits `mean + SCR * std` exactly after noise; the measured SCR then differs
from the wanted one only by quantisation (at most 0.5 grey level / std, <= 0.5 at 8 bits, ~0 at 16),
PSF leakage into the ring (< 0.3 % of the peak at 2 px gap) and, rarely, when the centre pixel's
background is already brighter than the wanted peak (a target on a bright cloud edge: the SCR is
then higher; `FrameTruth.clutter_dominated` flags it) or the peak saturates (flagged `saturated`).

Output layout (`write_synthetic_dataset`, the CLI `mistd data synth`)::

    DIR/images/seq000/0.png ...    8- or 16-bit single-channel PNG frames
    DIR/coco.json                  COCO ground truth (category 1 = target, empty frames included)
    DIR/uestc.txt                  UESTC txt index (integer boxes)
    DIR/synth.yaml                 every parameter (seed, preset, config) and per-target SCR stats
    DIR/README.md                  this box and SCR definition, for people who find the folder
    DIR/preview.png                contact sheet (optional)

Reproducibility: sequence `i` uses `numpy.random.SeedSequence(seed).spawn(sequences)[i]`, so each
sequence can be regenerated (or generated in parallel) on its own; same seed -> same bytes.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml
from scipy.special import ndtr

from mistd.data.synth_clutter import ClutterParams, SceneModel
from mistd.errors import InputError
from mistd.io import atomic_folder
from mistd.structures import FrameDataset, FrameRecord, Sequence

SCR_RING_GAP = 2
SCR_RING_WIDTH = 5
#: SCR std floor, in full-scale units (one 8-bit grey level).
SCR_STD_FLOOR = 1.0 / 255.0
IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")

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


@dataclass
class FrameTruth:
    """Ground truth of one frame: the labelled (visible) targets.

    Attributes:
        boxes: `[N, 4]` float32 xyxy pixels (clipped to the image).
        labels: `[N]` int64 (all 0: one class, "target").
        scr: `[N]` float32 SCR measured on the output frame (module docstring definition).
        scr_wanted: `[N]` float32 SCR the generator aimed for.
        track_ids: `[N]` int64 track index within the sequence.
        centers: `[N, 2]` float32 sub-pixel target centres `(x, y)`.
        sigmas: `[N, 2]` float32 PSF sigmas `(sx, sy)`.
        clutter_dominated: `[N]` bool, background at the centre pixel already above the wanted peak.
        saturated: `[N]` bool, the wanted peak exceeded full scale.
    """

    boxes: np.ndarray
    labels: np.ndarray
    scr: np.ndarray
    scr_wanted: np.ndarray
    track_ids: np.ndarray
    centers: np.ndarray
    sigmas: np.ndarray
    clutter_dominated: np.ndarray
    saturated: np.ndarray

    @property
    def num_targets(self) -> int:
        return int(self.boxes.shape[0])


@dataclass
class _Track:
    xy: np.ndarray  # [M, 2] world positions (before camera motion)
    sigma: tuple[float, float]
    scr: np.ndarray  # [M] wanted SCR per frame
    visible: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


def _draw(rng: np.random.Generator, value: Range) -> float:
    lo, hi = value
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def _draw_clutter(cfg: SynthConfig, rng: np.random.Generator) -> ClutterParams:
    """Per-sequence clutter parameters (fixed draw order: reproducible)."""
    pan_angle = rng.uniform(0, 2 * np.pi)
    pan = _draw(rng, cfg.pan_speed)
    wind_angle = pan_angle + rng.normal(0, 0.6)
    wind = _draw(rng, cfg.wind_speed)
    has_ground = bool(rng.random() < cfg.ground_prob)
    sky_level = _draw(rng, cfg.sky_level)
    glow = _draw(rng, cfg.horizon_glow)
    return ClutterParams(
        sky_level=sky_level,
        horizon_glow=glow,
        sky_gradient=float(rng.normal(0, 0.03)),
        cloud_beta=_draw(rng, cfg.cloud_beta),
        cloud_coverage=_draw(rng, cfg.cloud_coverage),
        cloud_contrast=_draw(rng, cfg.cloud_contrast),
        cloud_texture=cfg.cloud_texture,
        edge_gain=_draw(rng, cfg.edge_gain),
        edge_width=cfg.edge_width,
        sun_angle=float(rng.uniform(0, 2 * np.pi)),
        cloud_evolution=_draw(rng, cfg.cloud_evolution),
        wind=(wind * math.cos(wind_angle), wind * math.sin(wind_angle)),
        has_ground=has_ground,
        horizon_row=_draw(rng, cfg.horizon_row),
        horizon_tilt=float(rng.normal(0, 0.04)),
        hill_height=float(rng.uniform(1.0, 0.06 * cfg.height)),
        ground_level=sky_level + glow + _draw(rng, cfg.ground_contrast),
        ground_texture=_draw(rng, cfg.ground_texture),
        num_structures=int(rng.integers(0, cfg.max_structures + 1)),
        structure_contrast=float(rng.uniform(0.05, 0.2)),
        pan=(pan * math.cos(pan_angle), 0.3 * pan * math.sin(pan_angle)),
        jitter=_draw(rng, cfg.jitter),
        optics_blur=cfg.optics_blur,
        vignetting=cfg.vignetting,
        prnu=cfg.prnu,
        column_fpn=cfg.column_fpn,
        row_fpn=cfg.row_fpn,
        read_noise=_draw(rng, cfg.read_noise),
        shot_gain=cfg.shot_gain,
        defect_fraction=cfg.defect_fraction,
    )


def _make_tracks(
    cfg: SynthConfig, rng: np.random.Generator, size: tuple[int, int], num_frames: int
) -> list[_Track]:
    """Smooth target paths; some cross the border (enter or leave) during the sequence."""
    h, w = size
    t = np.arange(num_frames, dtype=np.float64)
    tracks = []
    for _ in range(int(rng.integers(cfg.min_targets, cfg.max_targets + 1))):
        s_lo, s_hi = cfg.sigma_range
        sx = _draw(rng, (s_lo, s_hi))
        sy = float(np.clip(sx * rng.uniform(1 / cfg.max_aspect, cfg.max_aspect), s_lo, s_hi))
        speed = _draw(rng, cfg.speed_range)
        heading0 = rng.uniform(0, 2 * np.pi)
        turn = rng.uniform(-cfg.turn_rate, cfg.turn_rate)
        wobble = rng.normal(0, 0.2)
        crosses = rng.random() < cfg.cross_border_prob
        if crosses:
            # Anchor on a border point at a random frame, heading inwards; half of them leave.
            anchor = int(rng.integers(0, num_frames))
            side = int(rng.integers(0, 4))
            u = rng.uniform(0.15, 0.85)
            point = [(u * w, 0.0), (w, u * h), (u * w, h), (0.0, u * h)][side]
            inward = [np.pi / 2, np.pi, -np.pi / 2, 0.0][side] + rng.uniform(-0.8, 0.8)
            # Heading inwards the target enters at the anchor frame; heading outwards it leaves.
            heading0 = inward if rng.random() < 0.5 else inward + np.pi
            heading = heading0 + turn * (t - anchor) + wobble * np.sin(2 * np.pi * t / num_frames)
            step = speed * np.stack([np.cos(heading), np.sin(heading)], axis=1)
            xy = np.cumsum(step, axis=0)
            xy += np.asarray(point) - xy[anchor]
        else:
            anchor = num_frames // 2
            margin = 0.1
            point = (rng.uniform(margin, 1 - margin) * w, rng.uniform(margin, 1 - margin) * h)
            heading = heading0 + turn * (t - anchor) + wobble * np.sin(2 * np.pi * t / num_frames)
            step = speed * np.stack([np.cos(heading), np.sin(heading)], axis=1)
            xy = np.cumsum(step, axis=0)
            xy += np.asarray(point) - xy[anchor]
        # Wanted SCR: a slow fluctuation (scintillation / aspect changes) inside the range.
        lo, hi = cfg.scr_range
        centre = rng.uniform(lo, hi)
        swing = (
            0.25 * (hi - lo) * np.sin(2 * np.pi * (t / max(num_frames, 1)) * rng.uniform(0.5, 2))
        )
        scr = np.clip(centre + swing + rng.uniform(-0.05, 0.05, num_frames) * (hi - lo), lo, hi)
        tracks.append(_Track(xy=xy.astype(np.float64), sigma=(sx, sy), scr=scr))
    return tracks


def _empty_block(cfg: SynthConfig, rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """`[M]` bool: frames where no target is shown (one contiguous block)."""
    empty = np.zeros(num_frames, dtype=bool)
    length = int(round(cfg.empty_frame_fraction * num_frames))
    if length > 0:
        start = int(rng.integers(0, num_frames - length + 1))
        empty[start : start + length] = True
    return empty


def _psf_patch(
    cx: float, cy: float, sx: float, sy: float, size: tuple[int, int]
) -> tuple[slice, slice, np.ndarray] | None:
    """Pixel-integrated Gaussian PSF (sums to 1 over the plane) around `(cx, cy)`, clipped."""
    h, w = size
    rx, ry = int(math.ceil(4 * sx)) + 1, int(math.ceil(4 * sy)) + 1
    x0, x1 = max(int(math.floor(cx)) - rx, 0), min(int(math.floor(cx)) + rx + 1, w)
    y0, y1 = max(int(math.floor(cy)) - ry, 0), min(int(math.floor(cy)) + ry + 1, h)
    if x0 >= x1 or y0 >= y1:
        return None
    ex = np.arange(x0, x1 + 1, dtype=np.float64)
    ey = np.arange(y0, y1 + 1, dtype=np.float64)
    px = np.diff(ndtr((ex - cx) / sx))
    py = np.diff(ndtr((ey - cy) / sy))
    return slice(y0, y1), slice(x0, x1), np.outer(py, px)


def _peak_fraction(cx: float, cy: float, sx: float, sy: float) -> float:
    """PSF mass in the pixel holding the centre (the brightest pixel)."""
    fx, fy = math.floor(cx), math.floor(cy)
    px = ndtr((fx + 1 - cx) / sx) - ndtr((fx - cx) / sx)
    py = ndtr((fy + 1 - cy) / sy) - ndtr((fy - cy) / sy)
    return float(px * py)


def target_box(cx: float, cy: float, sx: float, sy: float, margin: float = 1.0) -> np.ndarray:
    """Unclipped box `[4]` xyxy of a target (module docstring): centre +- (2 sigma + margin)."""
    hx, hy = 2 * sx + margin, 2 * sy + margin
    return np.array([cx - hx, cy - hy, cx + hx, cy + hy], dtype=np.float64)


def _ring_slices(box: np.ndarray, size: tuple[int, int]) -> tuple[tuple[int, int, int, int], ...]:
    """Integer pixel rectangles (y0, y1, x0, x1) of the inner (excluded) and outer ring bounds."""
    h, w = size
    x1, y1, x2, y2 = box
    g, r = SCR_RING_GAP, SCR_RING_GAP + SCR_RING_WIDTH
    inner = (
        max(math.floor(y1 - g), 0),
        min(math.ceil(y2 + g), h),
        max(math.floor(x1 - g), 0),
        min(math.ceil(x2 + g), w),
    )
    outer = (
        max(math.floor(y1 - r), 0),
        min(math.ceil(y2 + r), h),
        max(math.floor(x1 - r), 0),
        min(math.ceil(x2 + r), w),
    )
    return inner, outer


def local_background(
    frame: np.ndarray, box: np.ndarray, exclude: np.ndarray | None = None
) -> tuple[float, float]:
    """Mean and std (std floored at `SCR_STD_FLOOR` full scale) of the SCR ring around `box`.

    Args:
        frame: `[H, W]` frame (any dtype; stats in the frame's own units).
        box: `[4]` xyxy box of the target.
        exclude: `[K, 4]` xyxy boxes of other targets, left out of the ring (grown by the gap).
    """
    size = frame.shape[:2]
    (iy0, iy1, ix0, ix1), (oy0, oy1, ox0, ox1) = _ring_slices(np.asarray(box, float), size)
    mask = np.ones((oy1 - oy0, ox1 - ox0), dtype=bool)
    mask[iy0 - oy0 : iy1 - oy0, ix0 - ox0 : ix1 - ox0] = False
    if exclude is not None:
        for other in np.asarray(exclude, float).reshape(-1, 4):
            (ey0, ey1, ex0, ex1), _ = _ring_slices(other, size)
            mask[max(ey0 - oy0, 0) : max(ey1 - oy0, 0), max(ex0 - ox0, 0) : max(ex1 - ox0, 0)] = (
                False
            )
    values = frame[oy0:oy1, ox0:ox1][mask].astype(np.float64)
    if values.size < 4:
        return float("nan"), float("nan")
    full_scale = (
        65535.0 if frame.dtype == np.uint16 else (255.0 if frame.dtype == np.uint8 else 1.0)
    )
    return float(values.mean()), max(float(values.std()), SCR_STD_FLOOR * full_scale)


def measure_scr(frame: np.ndarray, box: np.ndarray, exclude: np.ndarray | None = None) -> float:
    """SCR of the target in `box` on `frame` (module docstring definition); NaN if not measurable.

    Args:
        frame: `[H, W]` uint8/uint16 output frame (float frames are taken as full scale 1.0).
        box: `[4]` xyxy box as written in the annotations (centre = target centre).
        exclude: `[K, 4]` other targets' boxes in the same frame.
    """
    h, w = frame.shape[:2]
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    col, row = math.floor(cx), math.floor(cy)
    if not (0 <= col < w and 0 <= row < h):
        return float("nan")
    mean, std = local_background(frame, box, exclude)
    return (float(frame[row, col]) - mean) / std


def _quantise(frame: np.ndarray, bit_depth: int) -> np.ndarray:
    full = 255.0 if bit_depth == 8 else 65535.0
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return np.clip(np.rint(frame * full), 0, full).astype(dtype)


def _visible_box(
    cx: float, cy: float, sigma: tuple[float, float], cfg: SynthConfig, size: tuple[int, int]
) -> np.ndarray | None:
    """Clipped box if the target counts as labelled (visibility rules in the module docstring)."""
    h, w = size
    box = target_box(cx, cy, sigma[0], sigma[1], cfg.box_margin)
    clipped = np.array(
        [max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(w)), min(box[3], float(h))]
    )
    cw, ch = clipped[2] - clipped[0], clipped[3] - clipped[1]
    if cw < cfg.min_visible_size or ch < cfg.min_visible_size:
        return None
    area = (box[2] - box[0]) * (box[3] - box[1])
    if cw * ch < cfg.min_visible_fraction * area:
        return None
    if not (0 <= math.floor(cx) < w and 0 <= math.floor(cy) < h):
        return None
    return clipped


def _solve_signal(target: float, read: float, shot: float, z: float) -> float:
    """Expected signal s with `s + z sqrt(read^2 + shot s) = target` (fixed point, contractive)."""
    s = target
    for _ in range(6):
        s = target - z * math.sqrt(read * read + shot * max(s, 0.0))
    return s


def generate_sequence(
    cfg: SynthConfig,
    rng: np.random.Generator,
    background: np.ndarray | None = None,
) -> tuple[np.ndarray, list[FrameTruth]]:
    """Generate one sequence in memory.

    Args:
        cfg: generator settings (`cfg.num_frames` frames of `cfg.height x cfg.width`).
        rng: random generator (e.g. from `sequence_rngs(seed, n)[i]`).
        background: optional real footage `[M, H, W]` float32 in full-scale units (semi-synthetic
            mode; its size replaces `cfg`'s, no simulated clutter or sensor noise is added).

    Returns:
        frames `[M, H, W]` uint8 (bit_depth 8) or uint16 (16), and one `FrameTruth` per frame.
    """
    validate_config(cfg)
    if background is not None:
        background = np.asarray(background, dtype=np.float32)
        num_frames, h, w = background.shape
        scene = None
    else:
        num_frames, h, w = cfg.num_frames, cfg.height, cfg.width
        scene = SceneModel(_draw_clutter(cfg, rng), (h, w), num_frames, rng)
    size = (h, w)
    full = 255.0 if cfg.bit_depth == 8 else 65535.0
    tracks = _make_tracks(cfg, rng, size, num_frames)
    empty = _empty_block(cfg, rng, num_frames)
    noise_seed = rng.integers(0, 2**63 - 1)
    noise_rng = np.random.default_rng(noise_seed)

    frames = np.empty((num_frames, h, w), dtype=np.uint8 if cfg.bit_depth == 8 else np.uint16)
    truths: list[FrameTruth] = []
    for k in range(num_frames):
        if scene is not None:
            radiance = scene.render(k)
            clean = scene.sensor_clean(radiance)
            z = noise_rng.standard_normal(size).astype(np.float32)
            base = clean + z * scene.sensor_noise_std(clean)
            base_q = _quantise(scene.apply_defects(base.copy()), cfg.bit_depth)
            camera = scene.camera[k]
        else:
            radiance = background[k]
            clean = radiance
            z = None
            base_q = _quantise(radiance, cfg.bit_depth)
            camera = np.zeros(2)

        # Every rendered target: centre in image coordinates (world path minus camera motion).
        shown = []
        if not empty[k]:
            for tid, track in enumerate(tracks):
                cx, cy = track.xy[k] - camera
                sx, sy = track.sigma
                if -4 * sx < cx < w + 4 * sx and -4 * sy < cy < h + 4 * sy:
                    shown.append(
                        (tid, cx, cy, sx, sy, _visible_box(cx, cy, track.sigma, cfg, size))
                    )
        all_boxes = np.array(
            [target_box(cx, cy, sx, sy, cfg.box_margin) for _, cx, cy, sx, sy, _ in shown]
        ).reshape(-1, 4)

        target_radiance = np.zeros(size, dtype=np.float32)
        keep = np.zeros(size, dtype=bool)
        records = []
        for n, (tid, cx, cy, sx, sy, vis) in enumerate(shown):
            box = all_boxes[n]
            others = np.delete(all_boxes, n, axis=0)
            mean, std = local_background(base_q, box, others)
            if not np.isfinite(mean):
                continue
            wanted = float(tracks[tid].scr[k])
            peak_dn = mean + wanted * std
            saturated = peak_dn > full - 0.5
            peak = min(peak_dn, full - 0.5) / full
            frac = _peak_fraction(cx, cy, sx, sy)
            col, row = math.floor(cx), math.floor(cy)
            inside = 0 <= col < w and 0 <= row < h
            nominal = wanted * std / full
            if scene is not None and inside:
                g = float(scene.gain[row, col])
                s = _solve_signal(
                    peak, scene.params.read_noise, scene.params.shot_gain, float(z[row, col])
                )
                amplitude = (s - float(clean[row, col])) / (g * frac)
            elif inside:
                amplitude = (peak - float(clean[row, col])) / frac
            else:
                amplitude = nominal / frac
            # A target never goes below half its nominal contrast: on a background pixel that is
            # already brighter than the wanted peak (bright cloud edge) the SCR ends up higher.
            dominated = amplitude < 0.5 * nominal / frac
            amplitude = max(amplitude, 0.5 * nominal / frac)
            patch = _psf_patch(cx, cy, sx, sy, size)
            if patch is None:
                continue
            ys, xs, psf = patch
            target_radiance[ys, xs] += (amplitude * psf).astype(np.float32)
            # Sensor defects never hide a target's core (they would make its SCR meaningless).
            bx0, by0 = max(math.floor(box[0]), 0), max(math.floor(box[1]), 0)
            keep[by0 : max(math.ceil(box[3]), 0), bx0 : max(math.ceil(box[2]), 0)] = True
            if vis is not None:
                records.append((tid, cx, cy, sx, sy, vis, wanted, dominated, saturated))

        if scene is not None:
            signal = clean + target_radiance * scene.gain
            frame = signal + z * scene.sensor_noise_std(signal)
            frame = scene.apply_defects(frame, keep=keep)
        else:
            frame = clean + target_radiance
        frames[k] = _quantise(frame, cfg.bit_depth)

        boxes = np.array([r[5] for r in records], dtype=np.float32).reshape(-1, 4)
        centers_full = np.array(
            [target_box(r[1], r[2], r[3], r[4], cfg.box_margin) for r in records]
        ).reshape(-1, 4)
        scr = np.array(
            [
                measure_scr(
                    frames[k], centers_full[i], np.delete(all_boxes, _index(shown, r[0]), 0)
                )
                for i, r in enumerate(records)
            ],
            dtype=np.float32,
        )
        truths.append(
            FrameTruth(
                boxes=boxes,
                labels=np.zeros(len(records), dtype=np.int64),
                scr=scr,
                scr_wanted=np.array([r[6] for r in records], dtype=np.float32),
                track_ids=np.array([r[0] for r in records], dtype=np.int64),
                centers=np.array([(r[1], r[2]) for r in records], dtype=np.float32).reshape(-1, 2),
                sigmas=np.array([(r[3], r[4]) for r in records], dtype=np.float32).reshape(-1, 2),
                clutter_dominated=np.array([r[7] for r in records], dtype=bool),
                saturated=np.array([r[8] for r in records], dtype=bool),
            )
        )
    return frames, truths


def _index(shown: list, track_id: int) -> int:
    return next(i for i, s in enumerate(shown) if s[0] == track_id)


def sequence_rngs(seed: int, count: int) -> list[np.random.Generator]:
    """One independent generator per sequence: `SeedSequence(seed).spawn(count)`."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(count)]


# ----------------------------------------------------------------------------- semi-synthetic


def load_backgrounds(
    source: str | Path,
    num_frames: int,
    size: tuple[int, int] | None = None,
    mask_grow: int = 3,
) -> tuple[np.ndarray, int]:
    """Real infrared footage for the semi-synthetic mode, with its own annotated targets removed.

    Args:
        source: a video (with an Anti-UAV track file beside it, or without), an image folder, or
            any data set `read_dataset` accepts; its FIRST sequence is used.
        num_frames: frames to take (from the start of the footage).
        size: optional `(H, W)` to resize to (boxes of the footage are scaled alike).
        mask_grow: pixels added around each annotated box before it is painted out (cv2.inpaint,
            Telea): the footage's own target must not stay in as an unlabelled target.

    Returns:
        `([num_frames, H, W] float32 in full-scale units, bit_depth)`.
    """
    from mistd.data.readers import read_dataset
    from mistd.data.readers.frames import load_frame

    dataset = read_dataset(source)
    if not dataset.sequences or not dataset.sequences[0].frames:
        raise InputError("no frames found for --backgrounds", source)
    records = dataset.sequences[0].frames
    if len(records) < num_frames:
        raise InputError(
            f"--backgrounds has {len(records)} frames in its first sequence, "
            f"{num_frames} are needed (lower --frames)",
            source,
        )
    out: list[np.ndarray] = []
    bit_depth = 8
    for record in records[:num_frames]:
        frame, bit_depth = load_frame(record)
        full = 255.0 if bit_depth == 8 else 65535.0
        if len(record.boxes):
            mask = np.zeros(frame.shape, dtype=np.uint8)
            for x1, y1, x2, y2 in record.boxes:
                x0, y0 = max(int(x1) - mask_grow, 0), max(int(y1) - mask_grow, 0)
                mask[y0 : int(math.ceil(y2)) + mask_grow, x0 : int(math.ceil(x2)) + mask_grow] = 1
            image8 = frame if bit_depth == 8 else (frame / 257.0).round().astype(np.uint8)
            painted = cv2.inpaint(image8, mask, 3, cv2.INPAINT_TELEA)
            frame = painted if bit_depth == 8 else frame.copy()
            if bit_depth == 16:
                frame[mask > 0] = painted[mask > 0].astype(np.uint16) * 257
        image = frame.astype(np.float32) / full
        if size is not None and image.shape != tuple(size):
            image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        out.append(image)
    return np.stack(out), bit_depth


# ----------------------------------------------------------------------------- writing a data set


def _truth_stats(truths: list[FrameTruth]) -> dict:
    scr = np.concatenate([t.scr for t in truths]) if truths else np.zeros(0)
    return {
        "frames": len(truths),
        "targets": int(sum(t.num_targets for t in truths)),
        "empty_frames": int(sum(t.num_targets == 0 for t in truths)),
        "scr_min": round(float(scr.min()), 3) if scr.size else None,
        "scr_median": round(float(np.median(scr)), 3) if scr.size else None,
        "scr_max": round(float(scr.max()), 3) if scr.size else None,
        "clutter_dominated": int(sum(int(t.clutter_dominated.sum()) for t in truths)),
        "saturated": int(sum(int(t.saturated.sum()) for t in truths)),
    }


def _readme(cfg: SynthConfig, sequences: int, seed: int) -> str:
    doc = __doc__ or ""
    boxes = doc[doc.index("Boxes.") : doc.index("Output layout")]
    return (
        f"# Synthetic infrared video (mistd, preset '{cfg.preset}', seed {seed})\n\n"
        f"{sequences} sequences x {cfg.num_frames} frames of {cfg.height}x{cfg.width}, "
        f"{cfg.bit_depth}-bit. Regenerate with:\n\n    mistd data synth --out DIR --preset "
        f"{cfg.preset} --sequences {sequences} --frames {cfg.num_frames} "
        f"--size {cfg.height}x{cfg.width} --seed {seed} --bit-depth {cfg.bit_depth}\n\n"
        "Files: images/<seq>/<k>.png, coco.json (COCO, category 1 = target), uestc.txt "
        "(UESTC index, integer boxes), synth.yaml (all parameters, SCR statistics).\n\n"
        + boxes.strip()
        + "\n"
    )


def write_synthetic_dataset(
    out_dir: str | Path,
    cfg: SynthConfig,
    sequences: int,
    seed: int,
    backgrounds: str | Path | None = None,
    overwrite: bool = False,
    preview: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> FrameDataset:
    """Generate `sequences` sequences and write them in the mistd layout (module docstring).

    The folder is written under a temporary name and renamed at the end: an interrupted run
    leaves no partial data set, and `overwrite` replaces an old one only once the new one is
    complete. Returns the data set as a `FrameDataset` whose paths point into `out_dir`.
    """
    from mistd.data.writers import write_coco_json, write_uestc_txt

    if backgrounds is None:
        validate_config(cfg)
    if sequences < 1:
        raise InputError(f"--sequences must be at least 1, got {sequences}")
    out_dir = Path(out_dir)
    with atomic_folder(out_dir, overwrite) as tmp_dir:
        background_frames = None
        if backgrounds is not None:
            size = None if not cfg.height else (cfg.height, cfg.width)
            needed = cfg.num_frames * sequences
            background_frames, _ = load_backgrounds(backgrounds, needed, size)
            cfg = dataclasses.replace(
                cfg, height=background_frames.shape[1], width=background_frames.shape[2]
            )
            validate_config(cfg)
        seqs: list[Sequence] = []
        stats: dict[str, dict] = {}
        sheet_frames, sheet_boxes, sheet_titles = [], [], []
        for i, rng in enumerate(sequence_rngs(seed, sequences)):
            name = f"seq{i:03d}"
            background = None
            if background_frames is not None:
                background = background_frames[i * cfg.num_frames : (i + 1) * cfg.num_frames]
            frames, truths = generate_sequence(cfg, rng, background)
            folder = tmp_dir / "images" / name
            folder.mkdir(parents=True)
            records = []
            for k, (frame, truth) in enumerate(zip(frames, truths, strict=True)):
                if not cv2.imwrite(str(folder / f"{k}.png"), frame):
                    raise InputError("cannot write frame", folder / f"{k}.png")
                records.append(
                    FrameRecord(
                        sequence=name,
                        index=k,
                        path=out_dir / "images" / name / f"{k}.png",
                        boxes=truth.boxes,
                        labels=truth.labels,
                        width=cfg.width,
                        height=cfg.height,
                    )
                )
            seqs.append(Sequence(name, records))
            stats[name] = _truth_stats(truths)
            if preview and len(sheet_frames) < 12:
                for k in np.linspace(0, len(frames) - 1, 3).round().astype(int):
                    sheet_frames.append(frames[k])
                    sheet_boxes.append(truths[k].boxes)
                    scr = " ".join(f"{v:.1f}" for v in truths[k].scr)
                    sheet_titles.append(f"{name} #{k}  SCR {scr}")
            if progress is not None:
                progress(i + 1, sequences)
        dataset = FrameDataset(seqs, ["target"], source=str(out_dir), format="coco")
        write_coco_json(dataset, tmp_dir / "coco.json", root=out_dir)
        write_uestc_txt(dataset, tmp_dir / "uestc.txt", root=out_dir)
        meta = {
            "generator": "mistd data synth",
            "seed": seed,
            "sequences": sequences,
            "backgrounds": None if backgrounds is None else str(backgrounds),
            "config": dataclasses.asdict(cfg),
            "stats": stats,
        }
        (tmp_dir / "synth.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
        (tmp_dir / "README.md").write_text(_readme(cfg, sequences, seed))
        if preview:
            from mistd.viz.sheet import save_contact_sheet

            save_contact_sheet(
                tmp_dir / "preview.png", sheet_frames, sheet_boxes, sheet_titles, columns=6
            )
    return dataset
