"""Targets of the synthetic generator: smooth tracks, the point-spread function, boxes, visibility.

Definitions of the boxes and of the visibility rules: `mistd.data.synth` (module docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr

from mistd.data.synth.config import SynthConfig, draw_range


@dataclass
class Track:
    xy: np.ndarray  # [M, 2] world positions (before camera motion)
    sigma: tuple[float, float]
    scr: np.ndarray  # [M] wanted SCR per frame
    visible: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


def make_tracks(
    cfg: SynthConfig, rng: np.random.Generator, size: tuple[int, int], num_frames: int
) -> list[Track]:
    """Smooth target paths; some cross the border (enter or leave) during the sequence."""
    h, w = size
    t = np.arange(num_frames, dtype=np.float64)
    tracks = []
    for _ in range(int(rng.integers(cfg.min_targets, cfg.max_targets + 1))):
        s_lo, s_hi = cfg.sigma_range
        sx = draw_range(rng, (s_lo, s_hi))
        sy = float(np.clip(sx * rng.uniform(1 / cfg.max_aspect, cfg.max_aspect), s_lo, s_hi))
        speed = draw_range(rng, cfg.speed_range)
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
        tracks.append(Track(xy=xy.astype(np.float64), sigma=(sx, sy), scr=scr))
    return tracks


def empty_block(cfg: SynthConfig, rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """`[M]` bool: frames where no target is shown (one contiguous block)."""
    empty = np.zeros(num_frames, dtype=bool)
    length = int(round(cfg.empty_frame_fraction * num_frames))
    if length > 0:
        start = int(rng.integers(0, num_frames - length + 1))
        empty[start : start + length] = True
    return empty


def psf_patch(
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


def peak_fraction(cx: float, cy: float, sx: float, sy: float) -> float:
    """PSF mass in the pixel holding the centre (the brightest pixel)."""
    fx, fy = math.floor(cx), math.floor(cy)
    px = ndtr((fx + 1 - cx) / sx) - ndtr((fx - cx) / sx)
    py = ndtr((fy + 1 - cy) / sy) - ndtr((fy - cy) / sy)
    return float(px * py)


def target_box(cx: float, cy: float, sx: float, sy: float, margin: float = 1.0) -> np.ndarray:
    """Unclipped box `[4]` xyxy of a target (module docstring): centre +- (2 sigma + margin)."""
    hx, hy = 2 * sx + margin, 2 * sy + margin
    return np.array([cx - hx, cy - hy, cx + hx, cy + hy], dtype=np.float64)


def visible_box(
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
