"""White top-hat detector: `I - opening(I)` keeps bright structures smaller than the kernel.

Reference: the morphological top-hat for small target detection (e.g. Tom, V. T. et al.,
"Morphology-based algorithm for point target detection in infrared backgrounds", SPIE 1954, 1993).
The frame is first smoothed with a small Gaussian (a matched filter for a point-spread target), so
single-pixel sensor noise does not dominate the response.
"""

from __future__ import annotations

import numpy as np

from mistd.classical.base import (
    BoxRule,
    gaussian_smooth,
    response_to_detections,
    to_float,
    white_tophat,
)
from mistd.structures import Detections


class TopHatDetector:
    """Single-frame white top-hat detector.

    Args:
        kernel_size: side of the structuring element in pixels; targets up to about
            `kernel_size - 1` px wide respond fully.
        shape: "rect" (square) or "ellipse" (disk) structuring element.
        smooth_sigma: Gaussian pre-smoothing (px), 0 to disable.
        rule: response -> boxes rule (default `BoxRule(z_scale=15.0)`, see `base.py`).
    """

    num_frames = 1

    def __init__(
        self,
        kernel_size: int = 9,
        shape: str = "rect",
        smooth_sigma: float = 0.8,
        rule: BoxRule | None = None,
    ) -> None:
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd integer >= 3, got {kernel_size}")
        self.kernel_size = kernel_size
        self.shape = shape
        self.smooth_sigma = smooth_sigma
        self.rule = rule or BoxRule(z_scale=15.0)

    def response(self, frames: np.ndarray, bit_depth: int = 8) -> np.ndarray:
        """Top-hat response `[H, W]` float32 of the key (last) frame of `[T, H, W]` frames."""
        frames = to_float(frames)
        key = frames[-1] if frames.ndim == 3 else frames
        return white_tophat(gaussian_smooth(key, self.smooth_sigma), self.kernel_size, self.shape)

    def detect(self, frames: np.ndarray, bit_depth: int = 8) -> Detections:
        """Detections on the key frame of `frames [T, H, W]` (boxes in pixels)."""
        return response_to_detections(self.response(frames, bit_depth), self.rule)
