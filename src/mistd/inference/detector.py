"""`ClipDetector`: a model as a detector of raw frames, with boxes in original pixels.

`detect(frames [T, H, W], bit_depth)` letterboxes the causal window ending at the key frame (last)
to the model input (the official preprocessing), predicts on the key frame and maps the boxes back
to the frame. `load_detector` builds one from trained weights; `mistd.inference.predictor.Predictor`
runs it (streamed by `VideoPredictor`, or in clip mode).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mistd.structures import Detections
from mistd.thresholds import DECODE_FLOOR


def key_frame_window(frames: np.ndarray, num_frames: int) -> np.ndarray:
    """The `[num_frames, H, W]` window ending at the key frame (last) of `frames [T, H, W]` (or
    one `[H, W]` frame): the last `num_frames` frames, or, when fewer are given, the earliest one
    repeated in front (the causal sequence-start rule, `mistd.data.clips.causal_window`).
    ValueError for another shape."""
    from mistd.data.clips import causal_window

    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3 or frames.shape[0] == 0:
        raise ValueError(f"expected frames [T, H, W], got shape {frames.shape}")
    return frames[causal_window(len(frames) - 1, num_frames)]


class ClipDetector:
    """A trained model as a clip detector (the interface of docs/design.md §2).

    `detect(frames [T, H, W] raw uint8/uint16, bit_depth) -> Detections` in ORIGINAL pixels (the
    model's clip: for a model with `frame_stride > 1`, T frames already that far apart, as
    `mistd.data.clips.ClipSampler` gives them): frames are letterboxed to the model input
    (official preprocessing), the model predicts on the key frame (last), boxes are mapped back.
    Fewer than `num_frames` frames are padded by
    repeating the earliest one (the causal sequence-start rule); more are cut to the last T.

    Its score thresholds (display, operating, track) are the weights' (`mistd.thresholds`,
    `mistd.weights.Weights.thresholds`), applied by `mistd.inference.predictor.Predictor`.

    Attributes:
        model: the `nn.Module` (eval mode).
        config: the RunConfig dict it was trained with ({} when unknown).
        num_frames: clip length T the model expects.
        frame_stride: frames between its clip frames in the video (the model's; 1 if unset).
        input_size: model input (h, w).
        precision: `fp32`, or `bf16` (the forward under CPU/CUDA autocast; decoding in fp32).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        num_frames: int,
        input_size: tuple[int, int],
        device: str | torch.device = "cpu",
        decode_floor: float = DECODE_FLOOR,
        nms_iou: float = 0.65,
        config: dict[str, Any] | None = None,
        name: str = "",
        precision: str = "fp32",
    ):
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        self.device = torch.device(device)
        self.precision = precision
        self.model = model.to(self.device).eval()
        self.num_frames = int(num_frames)
        self.frame_stride = int(getattr(model, "frame_stride", 1))
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.decode_floor = float(decode_floor)
        self.nms_iou = float(nms_iou)
        self.config = config or {}
        self.name = name
        self.pad_only = False  # True: frames smaller than the input are padded, never enlarged

    @torch.no_grad()
    def detect(self, frames: np.ndarray, bit_depth: int) -> Detections:
        """Detections on the key frame (last) of `frames [T, H, W]`, in original pixels."""
        return self.detect_batch([frames], bit_depth)[0]

    @torch.no_grad()
    def detect_batch(
        self, clips: Sequence[np.ndarray], bit_depth: int | Sequence[int]
    ) -> list[Detections]:
        """`detect` for several clips at once (one forward pass); `bit_depth` per clip or shared.

        Clips may differ in frame size (each is letterboxed to the same input size).
        """
        from mistd.data.transforms import to_model_input
        from mistd.inference.optimize import autocast

        if not clips:
            return []
        depths = [bit_depth] * len(clips) if isinstance(bit_depth, int) else list(bit_depth)
        tensors, infos = [], []
        for frames, depth in zip(clips, depths, strict=True):
            tensor, info = to_model_input(
                key_frame_window(frames, self.num_frames), depth, self.input_size, self.pad_only
            )
            tensors.append(tensor)
            infos.append(info)
        batch = torch.stack(tensors).to(self.device)
        with autocast(self.device, self.precision):
            predictions = self.model.predict(
                batch, decode_floor=self.decode_floor, nms_iou=self.nms_iou
            )
        out = []
        for pred, info in zip(predictions, infos, strict=True):
            out.append(info.detections_to_original(pred))
        return out

    def __repr__(self) -> str:
        return (
            f"ClipDetector({self.name or type(self.model).__name__}, num_frames={self.num_frames}, "
            f"input_size={self.input_size}, device={self.device})"
        )


def load_detector(
    weights: str | Path,
    device: str | torch.device = "cpu",
    decode_floor: float = DECODE_FLOOR,
    nms_iou: float = 0.65,
) -> ClipDetector:
    """A `ClipDetector` from a mistd checkpoint, a shipped-weights name or an official checkpoint.

    Args:
        weights: checkpoint path (`runs/train/exp/weights/best.pt`), the name of shipped weights,
            or an official CHAL `.pth` state dict (converted by `mistd.models.official`).
        device: torch device (`auto` = CUDA if available, else CPU).
        decode_floor, nms_iou: decoding (official protocol: 0.001 and 0.65).
    """
    from mistd.config import to_dict
    from mistd.device import resolve_device
    from mistd.run_config import run_config_to_dict
    from mistd.weights import read_weights

    device = resolve_device(str(device), option="--device")
    loaded = read_weights(weights)
    model = loaded.build_model()
    cfg = loaded.run_config
    # An official checkpoint has no training run: its config is the model's.
    config = to_dict(cfg.model) if loaded.kind == "official" else run_config_to_dict(cfg)
    return ClipDetector(
        model,
        num_frames=cfg.model.num_frames,
        input_size=tuple(cfg.model.input_size),
        device=device,
        decode_floor=decode_floor,
        nms_iou=nms_iou,
        config=config,
        name=loaded.name,
    )
