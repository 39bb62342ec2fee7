"""MPCM: multiscale patch-based contrast measure.

Reference: Y. Wei, X. You, H. Li, "Multiscale patch-based contrast measure for small infrared
target detection", Pattern Recognition 58 (2016) 216-226.

For a scale l (patch side, default 3, 5, 7, 9) let m be the l x l mean-filtered frame, m_T = m at
the pixel (the centre patch) and m_i (i = 1..8) the means of the 8 surrounding patches, centred
l pixels away in the 8 directions. With d_i = m_T - m_i, the patch contrast along the direction pair
(i, i+4) is d_i * d_{i+4}; PCM_l = min over the 4 pairs; MPCM = max over scales. The paper's
product is also positive for dark targets (both d negative); since infrared targets here are
brighter than their surroundings, negative differences are clipped to 0 first (bright-target
MPCM, as the paper does for bright targets). The response is the square root of MPCM, so it is in
intensity units and its mean + k*std threshold is not dominated by a few huge products.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import cv2
import numpy as np

from mistd.classical.base import (
    BoxRule,
    OverlayConfig,
    OverlaySuppressor,
    gaussian_smooth,
    response_to_detections,
    to_float,
)
from mistd.structures import Detections

# the 4 opposite direction pairs (dy, dx) of the 8 surrounding patches
_PAIRS = (((-1, -1), (1, 1)), ((-1, 0), (1, 0)), ((-1, 1), (1, -1)), ((0, -1), (0, 1)))


def mpcm_response(image: np.ndarray, scales: Sequence[int] = (3, 5, 7, 9)) -> np.ndarray:
    """Bright-target MPCM response `[H, W]`: sqrt of max over scales of the min pair product."""
    image = np.asarray(image, dtype=np.float32)
    height, width = image.shape
    best = np.zeros_like(image)
    for l in scales:
        mean = cv2.blur(image, (l, l), borderType=cv2.BORDER_REFLECT)
        padded = cv2.copyMakeBorder(mean, l, l, l, l, cv2.BORDER_REFLECT)
        pcm = None
        for (dy1, dx1), (dy2, dx2) in _PAIRS:
            n1 = padded[l + dy1 * l : l + dy1 * l + height, l + dx1 * l : l + dx1 * l + width]
            n2 = padded[l + dy2 * l : l + dy2 * l + height, l + dx2 * l : l + dx2 * l + width]
            pair = np.maximum(mean - n1, 0) * np.maximum(mean - n2, 0)
            pcm = pair if pcm is None else np.minimum(pcm, pair)
        np.maximum(best, pcm, out=best)
    return np.sqrt(best)


@dataclass
class MPCMConfig:
    """Config keys of the MPCM detector (`MPCMDetector`)."""

    scales: tuple[int, ...] = (3, 5, 7, 9, 13)

    VALID_RANGES: ClassVar[dict[str, str]] = {"scales": "[1, 255]"}
    rule: BoxRule = field(default_factory=lambda: BoxRule(z_scale=25.0))
    overlay: OverlayConfig = field(default_factory=lambda: OverlayConfig(scene_motion=0.05))


class MPCMDetector:
    """Single-frame MPCM detector (the previous frame is used only to follow the sequence for
    overlay suppression).

    Args:
        scales: patch sides in pixels (odd), one PCM per scale.
        rule: response -> boxes rule (see `base.py`); boxes come from segmenting the key frame.
        overlay: burned-in overlay suppression (`OverlayConfig`); by default only learned while
            the scene moves, so a static target of a still camera is kept.
    """

    num_frames = 2

    def __init__(
        self,
        scales: Sequence[int] = (3, 5, 7, 9, 13),
        rule: BoxRule | None = None,
        overlay: OverlayConfig | None = None,
    ) -> None:
        if not scales or any(s < 1 or s % 2 == 0 for s in scales):
            raise ValueError(f"scales must be odd positive integers, got {list(scales)}")
        self.scales = tuple(int(s) for s in scales)
        self.rule = rule or BoxRule(z_scale=25.0)
        self.overlay = OverlaySuppressor(overlay or OverlayConfig(scene_motion=0.05))

    @classmethod
    def from_config(cls, cfg: MPCMConfig) -> MPCMDetector:
        """Build from `MPCMConfig` (typed config keys)."""
        return cls(cfg.scales, cfg.rule, cfg.overlay)

    def response(self, frames: np.ndarray, bit_depth: int = 8) -> np.ndarray:
        """MPCM response `[H, W]` of the key (last) frame of `[T, H, W]` frames."""
        frames = to_float(frames)
        return mpcm_response(frames[-1] if frames.ndim == 3 else frames, self.scales)

    def detect(self, frames: np.ndarray, bit_depth: int = 8) -> Detections:
        """Detections on the key frame of `frames [T, H, W]` (boxes in pixels)."""
        frames = to_float(frames)
        frames = frames if frames.ndim == 3 else frames[None]
        ignore = self.overlay.update(frames)
        response = mpcm_response(frames[-1], self.scales)
        key = gaussian_smooth(frames[-1], 0.8)  # segmented in the smoothed key frame (tophat.py)
        return response_to_detections(response, self.rule, image=key, ignore=ignore)
