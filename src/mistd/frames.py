"""A user's frame as the detectors read it: gray `[H, W]` (no torch; one conversion for the
`Predictor`, the onnxruntime detector and the frame check)."""

from __future__ import annotations

import numpy as np


def to_gray(frame: np.ndarray) -> np.ndarray:
    """`[H, W]`, `[H, W, 1]`, BGR `[H, W, 3]` or BGRA `[H, W, 4]` -> `[H, W]` of the same dtype
    (OpenCV's BGR -> gray weights; equal colour channels are taken as they are, exactly).
    ValueError naming the shape otherwise."""
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[..., 0]
    elif frame.ndim == 3 and frame.shape[2] in (3, 4):
        if np.array_equal(frame[..., 0], frame[..., 1]) and np.array_equal(
            frame[..., 0], frame[..., 2]
        ):
            frame = frame[..., 0]
        else:
            import cv2

            code = cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
            frame = cv2.cvtColor(np.ascontiguousarray(frame), code)
    if frame.ndim != 2 or min(frame.shape) < 1:
        raise ValueError(
            f"expected a gray [H, W] or BGR [H, W, 3] frame, got shape {tuple(frame.shape)}"
        )
    return np.ascontiguousarray(frame)
