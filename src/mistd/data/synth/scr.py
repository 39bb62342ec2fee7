"""Signal-to-clutter ratio (SCR) of a target, as defined in the `mistd.data.synth` docstring."""

from __future__ import annotations

import math

import numpy as np

SCR_RING_GAP = 2
SCR_RING_WIDTH = 5
#: SCR std floor, in full-scale units (one 8-bit grey level).
SCR_STD_FLOOR = 1.0 / 255.0


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
