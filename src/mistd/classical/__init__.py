"""Classical (non-learned) detectors: white top-hat, MPCM, temporal background subtraction.

All implement `detect(frames [T, H, W] uint8|uint16, bit_depth) -> Detections` (boxes in original
pixels, key frame = last) and have `num_frames`. `CLASSICAL` is the one explicit table of them:
name -> constructor (call with no arguments for the defaults).
"""

from __future__ import annotations

from collections.abc import Callable

from mistd.classical.base import BoxRule, response_to_detections
from mistd.classical.mpcm import MPCMDetector, mpcm_response
from mistd.classical.temporal import TemporalDetector
from mistd.classical.tophat import TopHatDetector

CLASSICAL: dict[str, Callable[..., TopHatDetector | MPCMDetector | TemporalDetector]] = {
    "tophat": TopHatDetector,
    "mpcm": MPCMDetector,
    "temporal": TemporalDetector,
}

__all__ = [
    "CLASSICAL",
    "BoxRule",
    "MPCMDetector",
    "TemporalDetector",
    "TopHatDetector",
    "mpcm_response",
    "response_to_detections",
]
