"""Run an exported detector with onnxruntime and numpy only (no torch import).

    detector = OnnxDetector("model.onnx")                # written by `mistd export`
    for frame in frames:                                 # [H, W] uint8/uint16 (or BGR), in order
        boxes, scores, labels = detector.push(frame)     # xyxy in original pixels
    detector.reset()                                     # before the next sequence

The file is the deployable step graph of `mistd.inference.export.export_deploy_onnx`: one
letterboxed frame plus the cached features of the window's earlier frames in, the frame's top
candidates (decoded boxes, scores, labels) and its own features out. This class keeps the window
(a multi-frame model streams: one backbone pass per frame), letterboxes frames as the metadata says
(the official preprocessing: Pillow bicubic, gray 128 padding; 16-bit frames x 255/65535), drops
candidates below `decode_floor` and runs class-aware NMS (in the graph when it was exported with
NMS, else here in numpy), and maps boxes back to the frame. A dense model's graph (`tinyseg`,
metadata `decoder` = `blobs`) returns probability maps instead: their blobs are its boxes
(`mistd.boxes.blob_detections`, as the torch model decodes them). Everything it needs is in the
file's `mistd.*` metadata: class names, clip length and frame stride, input size rule,
preprocessing.

Outputs equal the torch streaming path's (`mistd.inference.video_predictor.VideoPredictor`) up to
float rounding; `tests/inference/test_onnx_runtime.py` checks it, and that importing and running
this module never imports torch.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mistd.boxes import batched_nms, blob_detections, clip_to_frame
from mistd.errors import InputError
from mistd.frames import to_gray
from mistd.thresholds import DECODE_FLOOR

Boxes = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes [N, 4] xyxy, scores [N], labels [N]


def read_onnx_metadata(path: str | Path) -> dict[str, Any]:
    """The `mistd.*` metadata of an ONNX file, JSON values parsed (numbers, lists, dicts)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _parse_metadata(session.get_modelmeta().custom_metadata_map)


def _parse_metadata(raw: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if not key.startswith("mistd."):
            continue
        if value in ("True", "False"):  # Python booleans as `str(bool)` wrote them
            out[key.removeprefix("mistd.")] = value == "True"
            continue
        try:
            out[key.removeprefix("mistd.")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.removeprefix("mistd.")] = value
    return out


# ----------------------------------------------------------------------------- preprocessing
def letterbox_params(
    original_size: tuple[int, int], input_size: tuple[int, int], pad_only: bool = False
) -> tuple[float, float, int, int, int, int]:
    """`(sx, sy, pad_x, pad_y, nw, nh)` of the letterbox of an `(H, W)` frame into `(h, w)`:
    scale = min(w/W, h/H), resized size `(int(W*scale), int(H*scale))`, centred (official CHAL
    `resize_image`; as `mistd.data.transforms.LetterboxInfo`); `pad_only`: the scale at most 1
    (a frame smaller than the input is padded, never enlarged)."""
    ih, iw = original_size
    h, w = input_size
    scale = min(w / iw, h / ih)
    if pad_only:
        scale = min(scale, 1.0)
    nw, nh = int(iw * scale), int(ih * scale)
    return nw / iw, nh / ih, (w - nw) // 2, (h - nh) // 2, nw, nh


def letterbox(
    frame: np.ndarray,
    input_size: tuple[int, int],
    bit_depth: int,
    pad_value: float = 128.0,
    pad_only: bool = False,
) -> tuple[np.ndarray, tuple[float, float, int, int, int, int]]:
    """Raw `[H, W]` frame -> letterboxed `[h, w]` float32 in 0..255 and its `letterbox_params`.

    8-bit frames are resized in Pillow's mode L, 16-bit ones scaled by 255/65535 and resized in
    mode F, clipped to 0..255 (`mistd.data.transforms.to_model_input`, bit for bit)."""
    from PIL import Image

    if bit_depth == 16:
        if frame.dtype != np.uint16:
            frame = frame.astype(np.uint16)
    elif bit_depth == 8:
        if frame.dtype != np.uint8:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    params = letterbox_params(frame.shape, input_size, pad_only)
    _, _, pad_x, pad_y, nw, nh = params
    if bit_depth == 16:
        image = Image.fromarray(frame.astype(np.float32) * np.float32(255.0 / 65535.0))
    else:
        image = Image.fromarray(np.ascontiguousarray(frame))
    if image.size != (nw, nh):
        image = image.resize((nw, nh), Image.Resampling.BICUBIC)
    resized = np.asarray(image, dtype=np.float32)
    if bit_depth == 16:
        resized = np.clip(resized, 0.0, 255.0)
    out = np.full(input_size, pad_value, dtype=np.float32)
    out[pad_y : pad_y + nh, pad_x : pad_x + nw] = resized
    return out, params


def boxes_to_original(
    boxes: np.ndarray, params: tuple[float, float, int, int, int, int]
) -> np.ndarray:
    """xyxy boxes in input pixels -> original pixels (the exact inverse of the letterbox)."""
    sx, sy, pad_x, pad_y, _, _ = params
    mul = np.asarray([1 / sx, 1 / sy, 1 / sx, 1 / sy], np.float32)
    add = np.asarray([-pad_x / sx, -pad_y / sy, -pad_x / sx, -pad_y / sy], np.float32)
    return (boxes.astype(np.float32) * mul + add).astype(np.float32)


# -------------------------------------------------------------------------------- detector
class OnnxDetector:
    """A deployable mistd ONNX file as a streaming detector of raw frames (numpy in and out).

    Args:
        path: the `.onnx` written by `mistd export` (a deployable step graph).
        decode_floor: candidates below it are dropped before NMS (default 0.001, the
            scoring floor of the official protocol; raise it for display).
        nms_iou: class-aware NMS IoU (default: the one the graph was exported with, else 0.65).
        threads: onnxruntime intra-op threads (default: onnxruntime's choice, one per core).
        providers: onnxruntime execution providers (default CPU).
        input_size: `(h, w)` for a graph exported with a dynamic size (multiples of 32 of at
            least `min_input_size`); default the export size.
        max_candidates: keep at most this many of the graph's candidates (it returns them by
            descending score) before NMS (default: all it returns, its `top_k`, 1000 unless
            exported otherwise, as torch's `postprocess`). At the 0.001 scoring floor a shipped
            model has 400-1000 candidates per 640x512 frame and NMS (`mistd.boxes.nms`)
            costs ~1 ms on a 2-core Xeon; 100 (the COCO protocol's detections per image) cuts
            it further.

    Attributes:
        names: class names (index = label).
        num_frames, frame_stride: the model's clip length and the frames between clip frames.
        input_size: `(h, w)` the frames are letterboxed to.
        metadata: the file's parsed `mistd.*` metadata.
    """

    track_threshold = 0.3  # as `mistd.inference.detector.ClipDetector` (learned models)

    def __init__(
        self,
        path: str | Path,
        *,
        decode_floor: float = DECODE_FLOOR,
        nms_iou: float | None = None,
        threads: int | None = None,
        providers: list[str] | None = None,
        input_size: tuple[int, int] | None = None,
        max_candidates: int | None = None,
    ):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError("ONNX file not found (write one with `mistd export`)", self.path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(
                str(self.path),
                sess_options=options,
                providers=providers or ["CPUExecutionProvider"],
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise InputError(f"not a readable ONNX file ({exc})", self.path) from None
        meta = _parse_metadata(self.session.get_modelmeta().custom_metadata_map)
        if meta.get("graph") != "step":
            raise InputError(
                "not a deployable mistd graph (metadata mistd.graph is "
                f"{meta.get('graph')!r}, expected 'step'): export it with `mistd export` "
                "(without --raw)",
                self.path,
            )
        self.metadata = meta
        self.names: list[str] = list(meta["names"])
        self.num_frames = int(meta["num_frames"])
        self.frame_stride = int(meta.get("frame_stride", 1))
        self.min_input_size = tuple(meta.get("min_input_size", (32, 32)))
        self.input_size = self._check_size(input_size)
        preprocess = meta.get("preprocess", {})
        self.pad_value = float(preprocess.get("pad_value", 128.0))
        # True: frames smaller than the input are padded, never enlarged (the `Predictor` runs a
        # dynamic-size graph at each frame's own size rounded up to a multiple of 32)
        self.pad_only = False
        self.precision = str(meta.get("precision", "fp32"))
        self.decode_floor = float(decode_floor)
        if max_candidates is not None and max_candidates < 1:
            raise ValueError(f"max_candidates must be >= 1, got {max_candidates}")
        self.max_candidates = max_candidates
        exported_iou = meta.get("nms_iou")
        self.nms_in_graph = isinstance(exported_iou, int | float)
        self.nms_iou = float(nms_iou if nms_iou is not None else exported_iou or 0.65)
        if self.nms_in_graph and nms_iou is not None and nms_iou != exported_iou:
            raise InputError(
                f"graph runs NMS at IoU {exported_iou} (exported so); nms_iou={nms_iou} needs a "
                "graph exported without NMS",
                self.path,
            )
        self.decoder = str(meta.get("decoder", "yolox"))  # "blobs": the graph returns maps
        self.blobs = dict(meta.get("blobs", {}))
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.feature_names = [n for n in self.output_names if n.startswith("feature_")]
        self.past_names = [i.name for i in self.session.get_inputs() if i.name.startswith("past_")]
        self._span = (self.num_frames - 1) * self.frame_stride + 1
        # per stream (`push` is stream 0): the held frames' features and the frames seen
        self._windows: list[deque[tuple[np.ndarray, ...]]] = []
        self._seen: list[int] = []
        self._past_buffers: dict[int, list[np.ndarray]] = {}  # reused [S, T-1, ...] inputs
        self.profile: dict[str, list[float]] | None = None  # per-stage seconds when a dict
        # the graph's feeds of the frames' detections when a list (int8 calibration)
        self.record: list[dict[str, np.ndarray]] | None = None

    def _check_size(self, input_size: tuple[int, int] | None) -> tuple[int, int]:
        exported = tuple(int(v) for v in self.metadata["input_size"])
        if input_size is None:
            return exported  # type: ignore[return-value]
        h, w = int(input_size[0]), int(input_size[1])
        if not self.metadata.get("dynamic_size", False):
            if (h, w) != exported:
                raise InputError(
                    f"graph exported for {exported[0]}x{exported[1]} inputs, asked for {h}x{w} "
                    "(export with --dynamic for other sizes)",
                    self.path,
                )
            return h, w
        multiple = int(self.metadata.get("size_multiple", 32))
        min_h, min_w = self.min_input_size
        if h % multiple or w % multiple or h < min_h or w < min_w:
            raise InputError(
                f"input size must be multiples of {multiple} of at least {min_h}x{min_w}, got "
                f"{h}x{w}",
                self.path,
            )
        return h, w

    # ----------------------------------------------------------------------------- state
    def reset(self, stream: int | None = None) -> None:
        """Forget the window (call before each new sequence): of every stream, or of `stream`
        only (`push_streams`: a stream whose video ended starts the next one)."""
        for i in range(len(self._windows)) if stream is None else [stream]:
            if i < len(self._windows):
                self._windows[i].clear()
                self._seen[i] = 0

    @property
    def frames_seen(self) -> int:
        """Frames pushed (to stream 0) since the last `reset`."""
        return self._seen[0] if self._seen else 0

    # -------------------------------------------------------------------------------- run
    def _timed(self, stage: str, start: float) -> float:
        import time

        now = time.perf_counter()
        if self.profile is not None:
            self.profile.setdefault(stage, []).append(now - start)
        return now

    def _run(
        self, images: np.ndarray, past: list[np.ndarray], record: bool = True
    ) -> list[np.ndarray]:
        feed = {"frame": images}
        feed.update(zip(self.past_names, past, strict=True))
        if record and self.record is not None:  # copies: the window buffers are reused
            self.record.append({name: value.copy() for name, value in feed.items()})
        return self.session.run(self.output_names, feed)

    def _past(self, streams: int, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
        """Per level `[S, T-1, ...]`: each stream's held features at its window positions
        (`mistd.data.clips.causal_window` of its newest frame, key frame excluded), written into
        buffers reused from call to call."""
        buffers = self._past_buffers.get(streams)
        if buffers is None or [b.shape[2:] for b in buffers] != shapes:
            buffers = [np.empty((streams, self.num_frames - 1, *s), np.float32) for s in shapes]
            self._past_buffers[streams] = buffers
        for i in range(streams):
            k, held = self._seen[i], self._windows[i]
            first = max(k - 1, 0) - len(held) + 1  # frame number of held[0]
            for t in range(self.num_frames - 1):
                position = max(k - (self.num_frames - 1 - t) * self.frame_stride, 0)
                for level, feature in enumerate(held[position - first]):
                    buffers[level][i, t] = feature
        return buffers

    def preprocess(
        self, frame: np.ndarray, bit_depth: int | None = None
    ) -> tuple[np.ndarray, tuple]:
        """Raw frame -> `([1, h, w]` float32 letterboxed 0..255, letterbox params)`. `bit_depth`
        defaults to 16 for uint16 frames, else 8."""
        frame = to_gray(frame)
        if bit_depth is None:
            bit_depth = 16 if frame.dtype == np.uint16 else 8
        image, params = letterbox(frame, self.input_size, bit_depth, self.pad_value, self.pad_only)
        return image[None], params

    def push(self, frame: np.ndarray, bit_depth: int | None = None) -> Boxes:
        """Detections of the next frame of the current sequence: `(boxes [N, 4] float32 xyxy in
        original pixels, scores [N] float32, labels [N] int64)`, by descending score.

        The window is the causal one of `mistd.data.clips.causal_window` (the first frame of a
        sequence repeated in front); at a sequence start the frame passes the graph twice (once
        for its features, once with them as the window)."""
        return self.push_streams([frame], bit_depth)[0]

    def push_streams(
        self, frames: Sequence[np.ndarray], bit_depth: int | None = None
    ) -> list[Boxes]:
        """The next frame of each of several independent streams (stream i = position i in
        every call; `push` is stream 0) through ONE batched forward: throughput for archives or
        several cameras. Each stream keeps its own window; `reset(i)` restarts stream i."""
        import time

        start = time.perf_counter()
        prepared = [self.preprocess(frame, bit_depth) for frame in frames]
        images = prepared[0][0] if len(prepared) == 1 else np.concatenate([p[0] for p in prepared])
        start = self._timed("letterbox", start)
        streams = len(frames)
        while len(self._windows) < streams:
            self._windows.append(deque(maxlen=self._span))
            self._seen.append(0)
        if self.num_frames == 1:
            outputs = self._run(images, [])
        else:
            n = len(self.feature_names)
            shapes = self._feature_shapes(images)
            starting = [i for i in range(streams) if self._seen[i] == 0]
            if starting:  # a sequence starts: its frame's features first (window unused)
                zeros = [np.zeros((streams, self.num_frames - 1, *s), np.float32) for s in shapes]
                features = self._run(images, zeros, record=False)[-n:]
                for i in starting:
                    self._windows[i].append(tuple(f[i] for f in features))
            outputs = self._run(images, self._past(streams, shapes))
            for i in range(streams):
                if self._seen[i] > 0:
                    self._windows[i].append(tuple(f[i] for f in outputs[-n:]))
        for i in range(streams):
            self._seen[i] += 1
        self._timed("forward", start)
        return [self._postprocess(outputs, prepared[i][1], i) for i in range(streams)]

    def _feature_shapes(self, image: np.ndarray) -> list[tuple[int, ...]]:
        """Per-level feature shapes `(C, h, w)` for this input size: channels from the graph's
        inputs, sizes from the levels' strides in the metadata."""
        h, w = image.shape[-2:]
        strides = self.metadata["feature_strides"]
        return [
            (int(i.shape[2]), h // int(s), w // int(s))
            for i, s in zip(self.session.get_inputs()[1:], strides, strict=True)
        ]

    def _postprocess(self, outputs: list[np.ndarray], params: tuple, batch: int = 0) -> Boxes:
        import time

        start = time.perf_counter()
        if self.decoder == "blobs":
            boxes, scores, labels = blob_detections(
                outputs[0][batch],
                outputs[1][batch],
                self.decode_floor,
                float(self.blobs.get("mask_level", 0.5)),
                int(self.max_candidates or self.blobs.get("max_detections", 100)),
            )
            start = self._timed("blobs", start)
        else:
            boxes, scores, labels = outputs[0][batch], outputs[1][batch], outputs[2][batch]
            index = self._selected(outputs, boxes, scores, labels, batch, start)
            boxes, scores, labels = boxes[index], scores[index], labels[index]
            start = time.perf_counter()
        sx, sy, _, _, nw, nh = params
        original, inside = clip_to_frame(
            boxes_to_original(boxes, params), round(nh / sy), round(nw / sx)
        )
        result = (
            original[inside],
            scores[inside].astype(np.float32),
            labels[inside].astype(np.int64),
        )
        self._timed("to original", start)
        return result

    def _selected(
        self,
        outputs: list[np.ndarray],
        boxes: np.ndarray,
        scores: np.ndarray,
        labels: np.ndarray,
        batch: int,
        start: float,
    ) -> np.ndarray:
        """Indices of the candidates kept (above `decode_floor`, after NMS), best first."""
        if self.max_candidates is not None and not self.nms_in_graph:
            top = self.max_candidates
            boxes, scores, labels = boxes[:top], scores[:top], labels[:top]
        if self.nms_in_graph:
            selected = outputs[3]
            index = selected[selected[:, 0] == batch, 2]
            index = index[scores[index] >= self.decode_floor]
            self._timed("filter + NMS (graph's selection)", start)
            return index[np.argsort(-scores[index], kind="stable")]
        keep = np.flatnonzero(scores >= self.decode_floor)
        start = self._timed("filter", start)
        index = keep[batched_nms(boxes[keep], scores[keep], labels[keep], self.nms_iou)]
        self._timed("NMS", start)
        return index

    def predict_frames(
        self, frames: Iterable[np.ndarray], bit_depth: int | None = None
    ) -> list[Boxes]:
        """`push` for each of consecutive frames of the current sequence (state carries over;
        call `reset` between sequences)."""
        return [self.push(frame, bit_depth) for frame in frames]

    def run(self, frames: Iterable[np.ndarray], bit_depth: int | None = None) -> Iterator[Boxes]:
        """Detections of every frame of one sequence (resets first)."""
        self.reset()
        for frame in frames:
            yield self.push(frame, bit_depth)

    def predict_clip(self, frames: np.ndarray, bit_depth: int | None = None) -> Boxes:
        """Detections of the key frame (last) of one clip `[T, H, W]` whose frames are already
        `frame_stride` apart (as `mistd.data.clips.ClipSampler` gives them); fewer than T frames
        are padded by repeating the earliest. Leaves the streaming state reset."""
        frames = np.asarray(frames)
        if frames.ndim == 2:
            frames = frames[None]
        frames = frames[-self.num_frames :]
        if len(frames) < self.num_frames:
            frames = np.concatenate([frames[:1]] * (self.num_frames - len(frames)) + [frames])
        self.reset()
        if self.num_frames == 1:
            return self.push(frames[-1], bit_depth)
        images = [self.preprocess(f, bit_depth) for f in frames]
        shapes = self._feature_shapes(images[0][0])
        zeros = [np.zeros((1, self.num_frames - 1, *s), np.float32) for s in shapes]
        n = len(self.feature_names)
        held = [self._run(image, zeros)[-n:] for image, _ in images[:-1]]
        past = [np.concatenate([h[level] for h in held])[None] for level in range(n)]
        outputs = self._run(images[-1][0], past)
        return self._postprocess(outputs, images[-1][1])

    def __repr__(self) -> str:
        return (
            f"OnnxDetector({self.path.name}, names={self.names}, num_frames={self.num_frames}, "
            f"frame_stride={self.frame_stride}, input_size={self.input_size}, "
            f"precision={self.precision})"
        )
