"""Frames -> model input: letterbox resize, normalisation, 3 identical channels (docs/design.md §2).

This reproduces the official CHAL preprocessing (`utils/utils.py::resize_image`,
`utils/dataloader_for_*.py`): scale = min(w/iw, h/ih), resized size `nw = int(iw*scale)`,
`nh = int(ih*scale)`, **PIL bicubic** resize (Pillow's bicubic, which also low-pass filters when
shrinking; OpenCV's INTER_CUBIC gives different pixels), pasted at `((w-nw)//2, (h-nh)//2)` on a
gray 128 canvas, then `/255`, ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225)
per RGB channel. Boxes map as the official loader does: `x*nw/iw + dx`, `y*nh/ih + dy`.

16-bit frames are scaled to 0..255 by a fixed factor 255/65535 before resizing (not by a per-clip
or per-sequence maximum: a fixed factor keeps brightness identical across clips, for training,
evaluation and streaming alike). 8-bit frames are resized in Pillow's 8-bit mode so they match the
official pipeline exactly; 16-bit frames are resized in float.

Note: the official *prediction* decode maps boxes back with `round` instead of `int` and a
`(w-nw)/2` offset instead of `(w-nw)//2`; `boxes_to_original` here is the exact inverse of the
forward mapping, which differs from the official decode by at most half an input pixel where the
padding is odd.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image

from mistd.config import check_input_size  # noqa: F401 (re-exported: the frame pipeline's check)
from mistd.errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAD_VALUE = 128.0


def check_frames(frames: np.ndarray, name: str = "frame") -> None:
    """`InputError` for frames no model input can come from: empty, not finite (NaN/inf), or
    integers outside the 16-bit range [0, 65535] (uint8/uint16 frames always pass)."""
    if frames.size == 0 or frames.ndim < 2 or 0 in frames.shape:
        raise InputError(f"{name} is empty (shape {tuple(frames.shape)}), expected [H, W] pixels")
    if frames.dtype in (np.uint8, np.uint16):
        return
    if frames.dtype.kind == "f":
        if not np.isfinite(frames).all():
            raise InputError(f"{name} holds NaN or infinite pixels")
    elif frames.dtype.kind not in "iub":
        raise InputError(f"{name} has pixel type {frames.dtype}, expected uint8 or uint16")
    low, high = float(frames.min()), float(frames.max())
    if low < 0 or high > 65535:
        raise InputError(
            f"{name} has pixel values from {low:g} to {high:g}, outside 0..65535 "
            "(expected uint8 or uint16 frames)"
        )


def _size_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


@dataclass(frozen=True)
class LetterboxInfo:
    """How frames were letterboxed into the model input.

    Attributes:
        scale: min(w/iw, h/ih).
        pad_x, pad_y: left/top padding in input pixels.
        input_size: `(h, w)` of the model input.
        original_size: `(H, W)` of the original frames.
    """

    scale: float
    pad_x: int
    pad_y: int
    input_size: tuple[int, int]
    original_size: tuple[int, int]

    @classmethod
    def compute(
        cls,
        original_size: tuple[int, int],
        input_size: int | tuple[int, int],
        pad_only: bool = False,
    ):
        """The letterbox for frames of `original_size (H, W)` into `input_size (h, w)`;
        `pad_only`: never enlarge (scale at most 1: a frame smaller than the input is padded)."""
        ih, iw = int(original_size[0]), int(original_size[1])
        h, w = _size_hw(input_size)
        scale = min(w / iw, h / ih)
        if pad_only:
            scale = min(scale, 1.0)
        nw, nh = int(iw * scale), int(ih * scale)
        return cls(scale, (w - nw) // 2, (h - nh) // 2, (h, w), (ih, iw))

    @property
    def resized_size(self) -> tuple[int, int]:
        """`(nh, nw)`: size of the resized image inside the padding."""
        ih, iw = self.original_size
        return int(ih * self.scale), int(iw * self.scale)

    @property
    def scale_xy(self) -> tuple[float, float]:
        """Per-axis factors `(nw/iw, nh/ih)` (as the official loader maps boxes)."""
        nh, nw = self.resized_size
        return nw / self.original_size[1], nh / self.original_size[0]

    def _affine(self, inverse: bool) -> tuple[list[float], list[float]]:
        sx, sy = self.scale_xy
        if inverse:
            mul = [1 / sx, 1 / sy, 1 / sx, 1 / sy]
            add = [-self.pad_x / sx, -self.pad_y / sy, -self.pad_x / sx, -self.pad_y / sy]
        else:
            mul = [sx, sy, sx, sy]
            add = [self.pad_x, self.pad_y, self.pad_x, self.pad_y]
        return mul, add

    def _apply(self, boxes, inverse: bool):
        mul, add = self._affine(inverse)
        if isinstance(boxes, torch.Tensor):
            m = torch.tensor(mul, dtype=boxes.dtype, device=boxes.device)
            a = torch.tensor(add, dtype=boxes.dtype, device=boxes.device)
            return boxes * m + a
        boxes = np.asarray(boxes, dtype=np.float32)
        return (boxes * np.asarray(mul, np.float32) + np.asarray(add, np.float32)).astype(
            np.float32
        )

    def boxes_to_input(self, boxes):
        """xyxy boxes `[..., 4]` (numpy or torch) from original to input pixels."""
        return self._apply(boxes, inverse=False)

    def boxes_to_original(self, boxes):
        """xyxy boxes `[..., 4]` (numpy or torch) from input to original pixels (exact inverse)."""
        return self._apply(boxes, inverse=True)

    def detections_to_original(self, detections):
        """`Detections` in input pixels -> on the CPU in original pixels, clipped to the frame;
        a box wholly in the padding goes (`mistd.boxes.clip_to_frame`)."""
        from mistd.boxes import clip_to_frame
        from mistd.structures import Detections

        detections = detections.to("cpu")
        boxes = self.boxes_to_original(detections.boxes.float().numpy())
        boxes, keep = clip_to_frame(boxes, *self.original_size)
        inside = torch.from_numpy(keep)
        return Detections(
            torch.from_numpy(boxes[keep]),
            detections.scores.float()[inside],
            detections.labels.long()[inside],
            detections.maps,
        )

    def to_dict(self) -> dict:
        """Plain dict (JSON-able, collate-friendly)."""
        out = asdict(self)
        out["input_size"] = list(self.input_size)
        out["original_size"] = list(self.original_size)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> LetterboxInfo:
        return cls(
            float(data["scale"]),
            int(data["pad_x"]),
            int(data["pad_y"]),
            tuple(int(v) for v in data["input_size"]),
            tuple(int(v) for v in data["original_size"]),
        )


def _resize(frame: np.ndarray, nw: int, nh: int) -> np.ndarray:
    # uint8 -> Pillow mode "L", float32 -> mode "F" (inferred from the dtype).
    is_8bit = frame.dtype == np.uint8
    image = Image.fromarray(np.ascontiguousarray(frame if is_8bit else frame.astype(np.float32)))
    if image.size != (nw, nh):
        image = image.resize((nw, nh), Image.Resampling.BICUBIC)
    out = np.asarray(image, dtype=np.float32)
    # The 8-bit path clips bicubic overshoot to 0..255; do the same in float.
    return out if is_8bit else np.clip(out, 0.0, 255.0)


def letterbox(
    frames: np.ndarray, size: int | tuple[int, int], pad_only: bool = False
) -> tuple[np.ndarray, LetterboxInfo]:
    """Letterbox frames into the model input size.

    Args:
        frames: `[T, H, W]` (or `[H, W]`) uint8, uint16 or float (0..255) frames.
        size: `(h, w)` of the model input, or an int for a square input.
        pad_only: never enlarge the frames (see `LetterboxInfo.compute`).
    Returns:
        `[T, h, w]` float32 in 0..255 (gray 128 padding) and the `LetterboxInfo`.
    """
    frames = np.asarray(frames)
    squeeze = frames.ndim == 2
    if squeeze:
        frames = frames[None]
    if frames.ndim != 3:
        raise ValueError(f"letterbox expects [T, H, W] frames, got shape {frames.shape}")
    info = LetterboxInfo.compute(frames.shape[1:], size, pad_only)
    h, w = info.input_size
    nh, nw = info.resized_size
    if frames.dtype == np.uint16:
        frames = frames.astype(np.float32) * np.float32(255.0 / 65535.0)
    out = np.full((frames.shape[0], h, w), PAD_VALUE, dtype=np.float32)
    for t, frame in enumerate(frames):
        out[t, info.pad_y : info.pad_y + nh, info.pad_x : info.pad_x + nw] = _resize(frame, nw, nh)
    return (out[0] if squeeze else out), info


def normalize(letterboxed: np.ndarray | torch.Tensor) -> torch.Tensor:
    """`[T, h, w]` 0..255 -> `[T, 3, h, w]` float32: /255, ImageNet mean/std per RGB channel."""
    x = torch.as_tensor(letterboxed, dtype=torch.float32) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x.unsqueeze(1) - mean) / std


def to_model_input(
    frames: np.ndarray, bit_depth: int, size: int | tuple[int, int], pad_only: bool = False
) -> tuple[torch.Tensor, LetterboxInfo]:
    """Raw clip frames -> model input (the official CHAL preprocessing).

    Args:
        frames: `[T, H, W]` uint8 (bit_depth 8) or uint16 (bit_depth 16) raw frames.
        bit_depth: 8 or 16.
        size: `(h, w)` model input size (or an int).
        pad_only: never enlarge the frames (a frame smaller than `size` is padded).
    Returns:
        `[T, 3, h, w]` float32 tensor and the `LetterboxInfo` to map boxes back.
    """
    frames = np.asarray(frames)
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    check_frames(frames)
    if bit_depth == 16 and frames.dtype != np.uint16:
        frames = frames.astype(np.uint16)
    elif bit_depth == 8 and frames.dtype != np.uint8:
        frames = np.clip(frames, 0, 255).astype(np.uint8)
    boxed, info = letterbox(frames, size, pad_only)
    return normalize(boxed), info
