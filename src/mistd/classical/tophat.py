"""White top-hat detector: `I - opening(I)` keeps bright structures smaller than the kernel.

Reference: the morphological top-hat for small target detection (e.g. Tom, V. T. et al.,
"Morphology-based algorithm for point target detection in infrared backgrounds", SPIE 1954, 1993).
The frame is first smoothed with a small Gaussian (a matched filter for a point-spread target), so
single-pixel sensor noise does not dominate the response. Several kernel sizes (multi-scale, each
normalised by its own spread) cover targets from 2 px (DAUB) to ~30 px (close drones); boxes come
from segmenting each candidate in the key frame, not from the kernel (see `base.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from mistd.classical.base import (
    BoxRule,
    OverlayConfig,
    OverlaySuppressor,
    gaussian_smooth,
    multiscale_tophat,
    response_to_detections,
    to_float,
)
from mistd.structures import Detections


@dataclass
class TopHatConfig:
    """Config keys of the top-hat detector (`TopHatDetector`)."""

    kernel_sizes: tuple[int, ...] = (5, 9, 15, 25)
    shape: str = "rect"
    smooth_sigma: float = 0.8
    rule: BoxRule = field(default_factory=lambda: BoxRule(z_scale=15.0))
    overlay: OverlayConfig = field(default_factory=lambda: OverlayConfig(scene_motion=0.05))

    VALID_RANGES: ClassVar[dict[str, str]] = {"kernel_sizes": "[1, 255]", "smooth_sigma": "[0, 20]"}


class TopHatDetector:
    """Single-frame multi-scale white top-hat detector (the previous frame is used only to
    follow the sequence for overlay suppression).

    Args:
        kernel_sizes: sides of the structuring elements in pixels (odd); a target up to about
            `kernel_size - 1` px wide responds fully to that scale.
        shape: "rect" (square) or "ellipse" (disk) structuring element.
        smooth_sigma: Gaussian pre-smoothing (px), 0 to disable.
        rule: response -> boxes rule (see `base.py`).
        overlay: burned-in overlay suppression (`OverlayConfig`); by default only learned while
            the scene moves, so a static target of a still camera is kept.
    """

    num_frames = 2

    def __init__(
        self,
        kernel_sizes: Sequence[int] = (5, 9, 15, 25),
        shape: str = "rect",
        smooth_sigma: float = 0.8,
        rule: BoxRule | None = None,
        overlay: OverlayConfig | None = None,
    ) -> None:
        if not kernel_sizes or any(k < 3 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be odd integers >= 3, got {list(kernel_sizes)}")
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.shape = shape
        self.smooth_sigma = smooth_sigma
        self.rule = rule or BoxRule(z_scale=15.0)
        self.overlay = OverlaySuppressor(overlay or OverlayConfig(scene_motion=0.05))

    @classmethod
    def from_config(cls, cfg: TopHatConfig) -> TopHatDetector:
        """Build from `TopHatConfig` (typed config keys)."""
        return cls(cfg.kernel_sizes, cfg.shape, cfg.smooth_sigma, cfg.rule, cfg.overlay)

    def response(self, frames: np.ndarray, bit_depth: int = 8) -> np.ndarray:
        """Top-hat response `[H, W]` float32 of the key (last) frame of `[T, H, W]` frames."""
        frames = to_float(frames)
        key = frames[-1] if frames.ndim == 3 else frames
        return multiscale_tophat(
            gaussian_smooth(key, self.smooth_sigma), self.kernel_sizes, self.shape
        )

    def detect(self, frames: np.ndarray, bit_depth: int = 8) -> Detections:
        """Detections on the key frame of `frames [T, H, W]` (boxes in pixels)."""
        frames = to_float(frames)
        frames = frames if frames.ndim == 3 else frames[None]
        ignore = self.overlay.update(frames)
        key = gaussian_smooth(frames[-1], self.smooth_sigma)
        response = multiscale_tophat(key, self.kernel_sizes, self.shape)
        # segmented in the smoothed key frame (on Anti-UAV 4.avi segmenting the largest scale's
        # top-hat instead scored mAP50 47.6 against 59.5)
        return response_to_detections(response, self.rule, image=key, ignore=ignore)
