"""Streaming inference: frames in one at a time, detections of each frame out.

`VideoPredictor` holds the state of one stream (a rolling window of per-frame features) outside
the `nn.Module`, as SAM's `SamPredictor` does. Each pushed frame costs ONE pass of the model's
per-frame encoder (backbone, pyramid, fusion; for CHAL also the SNF's Conv3d taps, see
`mistd.inference.streaming`) plus one clip head on the cached window, instead of T backbone passes
of clip mode. The window follows the clip convention (docs/design.md §2): key frame last, and at a
sequence start the earliest frame is repeated (key k=2 -> frames [0, 0, 0, 1, 2]), so the
outputs equal clip mode's on the same frames.

    predictor = VideoPredictor(model, input_size=(512, 512))
    for frame in iter_video_frames("video.avi"):
        detections = predictor.push(frame)          # boxes in original pixels
    predictor.reset()                                # before the next sequence
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

import numpy as np
import torch
from torch import nn

from mistd.data.clips import causal_window, frame_stride_of, window_span
from mistd.data.transforms import LetterboxInfo, check_input_size, to_model_input
from mistd.decoding import decode_outputs
from mistd.inference.optimize import autocast, compile_for_inference, set_channels_last
from mistd.inference.streaming import streaming_parts
from mistd.models.ops import postprocess
from mistd.structures import Detections
from mistd.thresholds import DECODE_FLOOR

Precision = Literal["fp32", "bf16"]
FrameEncoder = Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
ClipHead = Callable[..., list[torch.Tensor]]


def key_frame_maps(maps: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CHAL's intermediate maps of a batch-1 window -> the per-key-frame maps that
    `CHAL.predict(return_maps=True)` returns (same names and meaning)."""
    key = maps["fused"][0, -1]
    out: dict[str, torch.Tensor] = {}
    if "background" in maps:
        background = maps["background"][0, -1]
        out["background"] = torch.linalg.vector_norm(background, dim=0)
        out["background_residual"] = torch.linalg.vector_norm(key - background, dim=0)
    if "appearance_anomaly" in maps:
        out["appearance_anomaly"] = maps["appearance_anomaly"][0, :, 0]
    for name in ("anomaly", "gate"):
        if name in maps:
            out[name] = maps[name][0, 0]
    return out


class VideoPredictor:
    """Per-frame detections of a stream with a cache of per-frame features.

    Args:
        model: a zoo detector (`yolox-s`, `mf-baseline`, `chal`, ... and their variants); put in
            eval mode here.
        input_size: `(h, w)` model input (frames are letterboxed to it, official preprocessing).
        num_frames: clip length T (default `model.num_frames`).
        frame_stride: frames between consecutive clip frames (default the model's
            `frame_stride`, else 1): the window holds the last `(T - 1) * frame_stride + 1`
            frames' features and the clip head sees every `frame_stride`-th of them.
        decode_floor, nms_iou: decoding (official protocol: 0.001, 0.65).
        parts: `(frame_encoder, clip_head)` to run instead of the model's torch parts (e.g. the
            onnxruntime sessions of `mistd.inference.onnx_backend.OnnxStreamingParts`); both take
            and return torch tensors with the signatures of `streaming_parts`.
        fast_snf: for CHAL, evaluate the SNF from cached per-frame Conv3d taps (exact; default).
        precision: "fp32", or "bf16" (CPU/GPU autocast; faster where supported, outputs differ
            by ~1e-2 relative: opt-in).
        channels_last: run convolutions in channels-last memory format.
        compile: run the torch parts through `torch.compile`
            (`mistd.inference.optimize.compile_for_inference`: 1.2-1.3x faster in bf16 on a
            Xeon with AMX; the first frame of each size compiles, ~30 s); not with `parts`.
        device: torch device of the torch parts.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        input_size: tuple[int, int],
        num_frames: int | None = None,
        frame_stride: int | None = None,
        decode_floor: float = DECODE_FLOOR,
        nms_iou: float = 0.65,
        parts: tuple[FrameEncoder, ClipHead] | None = None,
        fast_snf: bool = True,
        precision: Precision = "fp32",
        channels_last: bool = False,
        compile: bool = False,
        device: str | torch.device = "cpu",
    ):
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.input_size = check_input_size(input_size)
        self.num_frames = int(num_frames if num_frames is not None else model.num_frames)
        self.frame_stride = (
            int(frame_stride) if frame_stride is not None else frame_stride_of(model)
        )
        if self.frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1, got {self.frame_stride}")
        self.decode_floor = float(decode_floor)
        self.nms_iou = float(nms_iou)
        self.precision = precision
        self.channels_last = channels_last
        if channels_last:
            set_channels_last(self.model, True)
        if parts is not None and compile:
            raise ValueError("compile applies to the torch parts, not to given parts")
        if parts is None:
            encoder, head = streaming_parts(self.model, fast_snf=fast_snf)
            parts = (encoder.eval(), head.eval())
            if compile:
                parts = (compile_for_inference(parts[0]), compile_for_inference(parts[1]))
        self.frame_encoder, self.clip_head = parts
        self._window: deque[tuple[torch.Tensor, ...]] = deque(
            maxlen=window_span(self.num_frames, self.frame_stride)
        )
        self.letterbox: LetterboxInfo | None = None  # of the last `push`
        self.pad_only = False  # True: frames smaller than the input are padded, never enlarged
        self._frames_seen = 0

    # ------------------------------------------------------------------------------- state
    def reset(self) -> None:
        """Forget the window (call at the start of a new sequence)."""
        self._window.clear()
        self._frames_seen = 0

    @property
    def frames_seen(self) -> int:
        """Frames pushed since the last `reset`."""
        return self._frames_seen

    # ------------------------------------------------------------------------------- torch
    @property
    def supports_maps(self) -> bool:
        """Whether `push(..., return_maps=True)` works (CHAL with the torch clip head)."""
        return hasattr(self.clip_head, "forward_with_maps")

    @torch.inference_mode()
    def push_torch(self, frame: torch.Tensor, return_maps: bool = False) -> Detections:
        """Push one preprocessed frame; detections of it (the new key frame).

        Args:
            frame: `[3, h, w]` or `[1, 3, h, w]` model input (as `to_model_input` makes it).
            return_maps: fill `Detections.maps` as `CHAL.predict(return_maps=True)` does
                (`background`, `background_residual`, `appearance_anomaly`, `anomaly`, `gate`
                at stride 8); needs `supports_maps`.
        Returns:
            Detections with boxes xyxy in INPUT pixels.
        """
        if not return_maps:
            return self._decode(self.push_torch_raw(frame))
        if not self.supports_maps:
            raise ValueError("maps need CHAL with the torch backend")
        maps: dict[str, torch.Tensor] = {}
        outputs = self.push_torch_raw(frame, maps_out=maps)
        detections = self._decode(outputs)
        detections.maps = key_frame_maps(maps)
        return detections

    @torch.inference_mode()
    def push_torch_raw(
        self, frame: torch.Tensor, maps_out: dict[str, torch.Tensor] | None = None
    ) -> list[torch.Tensor]:
        """`push_torch` without decoding: the raw head maps `[1, 5 + C, h_i, w_i]` (equal to
        `model(clip)` on the window). With `maps_out` (a dict), the clip head's intermediate
        maps are stored into it (CHAL, torch backend)."""
        self._window.append(self._encode(frame))
        self._frames_seen += 1
        # The causal window of the newest frame; the earliest frame repeated at a sequence start
        # (clip convention, docs/design.md §2).
        held = list(self._window)
        window = [held[i] for i in causal_window(len(held) - 1, self.num_frames, self.frame_stride)]
        return self._head(window, maps_out)

    @torch.inference_mode()
    def detect_window_torch(self, frames: torch.Tensor) -> Detections:
        """Detections of the key frame (the last) of one causal window `[T, 3, h, w]` of model
        inputs whose frames are already `frame_stride` apart (as `ClipSampler` gives them;
        fewer than T are padded by repeating the earliest): clip mode computed by the streaming
        parts, at this predictor's precision and compiled where it is. For windows that do not
        come in order (sampled evaluation). Leaves the stream reset.

        Boxes xyxy in INPUT pixels."""
        if frames.dim() != 4 or frames.shape[1] != 3:
            raise ValueError(f"expected a window [T, 3, h, w], got {tuple(frames.shape)}")
        self.reset()
        frames = frames[-self.num_frames :]
        features = [self._encode(frame) for frame in frames]
        features = [features[0]] * (self.num_frames - len(features)) + features
        return self._decode(self._head(features, None))

    def _encode(self, frame: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One model input `[3, h, w]` or `[1, 3, h, w]` -> its features (the frame encoder's
        outputs, fp32, contiguous)."""
        if frame.dim() == 3:
            frame = frame[None]
        if frame.dim() != 4 or frame.shape[:2] != (1, 3):
            raise ValueError(
                f"expected a frame [3, h, w] or [1, 3, h, w], got {tuple(frame.shape)}"
            )
        frame = frame.to(self.device, torch.float32)
        if self.channels_last:
            frame = frame.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.precision):
            # contiguous once per frame: the clip head reads the stacked window as flat rows
            # (a channels-last window cost CHAL's compiled head 25 instead of 19 ms at 640x512)
            return tuple(f.float().contiguous() for f in self.frame_encoder(frame))

    def _head(
        self,
        window: list[tuple[torch.Tensor, ...]],
        maps_out: dict[str, torch.Tensor] | None,
    ) -> list[torch.Tensor]:
        """The clip head on a window of T frames' features -> raw head maps (fp32)."""
        stacked = [torch.stack(level, dim=1) for level in zip(*window, strict=True)]
        with autocast(self.device, self.precision):
            if maps_out is None:
                outputs = self.clip_head(*stacked)
            else:
                outputs, maps = self.clip_head.forward_with_maps(*stacked)  # type: ignore[union-attr]
                maps_out.update({k: v.float() for k, v in maps.items()})
        return [o.float() for o in outputs]

    def _decode(self, outputs: list[torch.Tensor]) -> Detections:
        decoded = decode_outputs(outputs, self.model.strides)
        return postprocess(decoded, decode_floor=self.decode_floor, nms_iou=self.nms_iou)[0]

    # ------------------------------------------------------------------------------- numpy
    def push(
        self, frame: np.ndarray, bit_depth: int | None = None, return_maps: bool = False
    ) -> Detections:
        """Push one raw frame `[H, W]` uint8/uint16; detections of it in ORIGINAL pixels.

        `bit_depth` defaults to 16 for uint16 frames, else 8. `return_maps`: see `push_torch`
        (maps stay at model resolution; `self.letterbox` maps them to the frame).
        """
        frame = np.asarray(frame)
        if frame.ndim != 2:
            raise ValueError(f"expected a single-channel frame [H, W], got shape {frame.shape}")
        tensor = self._model_input(frame[None], bit_depth)
        return self.letterbox.detections_to_original(self.push_torch(tensor[0], return_maps))

    def detect_window(self, frames: np.ndarray, bit_depth: int | None = None) -> Detections:
        """`detect_window_torch` of raw frames `[T, H, W]` (uint8/uint16, letterboxed as `push`
        does); detections of the last in ORIGINAL pixels. Leaves the stream reset."""
        frames = np.asarray(frames)
        if frames.ndim != 3:
            raise ValueError(f"expected a window of frames [T, H, W], got shape {frames.shape}")
        tensor = self._model_input(frames, bit_depth)
        return self.letterbox.detections_to_original(self.detect_window_torch(tensor))

    def _model_input(self, frames: np.ndarray, bit_depth: int | None) -> torch.Tensor:
        """Raw frames `[T, H, W]` -> model input `[T, 3, h, w]`, letterboxed (kept in
        `self.letterbox`); `bit_depth` None: 16 for uint16 frames, else 8."""
        if bit_depth is None:
            bit_depth = 16 if frames.dtype == np.uint16 else 8
        tensor, self.letterbox = to_model_input(frames, bit_depth, self.input_size, self.pad_only)
        return tensor

    def run(
        self, frames: Iterable[np.ndarray], bit_depth: int | None = None
    ) -> Iterator[Detections]:
        """Detections of every frame of one sequence (resets first)."""
        self.reset()
        for frame in frames:
            yield self.push(frame, bit_depth)

    def __repr__(self) -> str:
        return (
            f"VideoPredictor({type(self.model).__name__}, num_frames={self.num_frames}, "
            f"frame_stride={self.frame_stride}, "
            f"input_size={self.input_size}, precision={self.precision}, "
            f"frames_seen={self._frames_seen})"
        )
