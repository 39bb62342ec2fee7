"""`Predictor`: frames in, `Results` out, for every detector mistd runs.

    from mistd import Predictor

    predictor = Predictor("yolox-ir-s")            # shipped name, checkpoint, official .pth,
    results = predictor(frame)                      # .onnx file, or tophat / mpcm / temporal
    for results in predictor("video.mp4"):          # a file, folder, data set, webcam, RTSP URL
        print(results.frame_index, results.boxes, results.scores)

The predictor owns everything between a frame and its detections, in this order:

1. the detector family (`FrameDetector`): a classical detector gets the causal window of its
   last T frames; a trained torch model streams (one backbone pass per frame, its features
   cached over the window: `mistd.inference.video_predictor.VideoPredictor`) or runs in clip mode
   (`stream=False`, the reference); an `.onnx` file runs in onnxruntime without torch;
2. the model input size: by default a trained model runs at the frame's own size, padded to a
   multiple of 32 (the models are fully convolutional and learnt targets in pixels); a fixed
   `input_size=(h, w)` or `"trained"` (the training size) letterboxes, and a warning says so
   whenever frames are resized;
3. post-processing stages, in order (each `reset()` per sequence, `__call__(results) ->
   results`): class merging (`merge_classes`: every box one class "target", class-agnostic
   NMS), track confirmation (`confirm_tracks`: `mistd.tracking.confirm.TrackConfirmation`), and
   any added with `add_stage`;
4. the display threshold: `Results` hold boxes with `score >= display_threshold` (default: the
   model's, `mistd.thresholds`); `keep_all=True` keeps every box above the decoding floor (what
   `mistd eval` scores);
5. callbacks (`add_callback("on_results", fn)` and `"on_sequence_start"`).

A numpy frame passed to `predictor(frame)` continues the current sequence (multi-frame models
see consecutive calls as a video); `predictor.reset()` starts a new one. Any other source yields
one `Results` per frame and resets at each sequence.
"""

from __future__ import annotations

import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mistd.errors import InputError
from mistd.frame_check import FrameCheck, FrameCheckStage, resolve_frame_check
from mistd.frames import to_gray
from mistd.inference.results import Results
from mistd.thresholds import CLASSICAL_DEFAULTS, DECODE_FLOOR, LEARNED_DEFAULTS, Thresholds

if TYPE_CHECKING:
    from mistd.structures import FrameDataset, FrameRecord
    from mistd.tracking.tracker import TrackerConfig

STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://")
# Class merging: the IoU of the class-agnostic NMS (as the official protocol's class-aware one).
MERGE_NMS_IOU = 0.65


# ------------------------------------------------------------------------------- frames
def as_gray_frame(frame: Any) -> tuple[np.ndarray, int]:
    """A user's frame -> `([H, W] uint8 | uint16, bit depth)`.

    Accepts `[H, W]`, `[H, W, 1]` and BGR `[H, W, 3]` (converted to gray as OpenCV does), uint8
    (8-bit) or uint16 (16-bit). ValueError saying what was given for anything else."""
    array = np.asarray(frame)
    if array.dtype not in (np.uint8, np.uint16):
        raise ValueError(
            f"expected a uint8 or uint16 frame, got dtype {array.dtype} (shape {array.shape}); "
            "convert it first, e.g. frame.astype(np.uint8) for 0..255 values"
        )
    array = to_gray(array)
    return array, 16 if array.dtype == np.uint16 else 8


def native_input_size(height: int, width: int) -> tuple[int, int]:
    """The frame's own size rounded up to a multiple of 32 (frames are padded to it)."""
    return 32 * -(-int(height) // 32), 32 * -(-int(width) // 32)


def parse_input_size(size: Any) -> tuple[int, int] | str | None:
    """`input_size` as given to `Predictor` / `--input-size`: None or "native" (the frame's size),
    "trained" (the size the model was trained at), `(h, w)`, an int, or "HxW" / "H,W".
    InputError for anything else or sizes that are not positive multiples of 32."""
    if size is None or (isinstance(size, str) and size.lower() == "native"):
        return "native"
    if isinstance(size, str) and size.lower() == "trained":
        return "trained"
    try:
        if isinstance(size, str):
            parts = size.lower().replace(",", "x").split("x")
            height, width = (int(v) for v in parts) if len(parts) == 2 else (int(parts[0]),) * 2
        elif isinstance(size, int | np.integer):
            height = width = int(size)
        else:
            height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InputError(f"input size: expected HxW, native or trained, got '{size}'") from None
    if height <= 0 or width <= 0 or height % 32 or width % 32:
        raise InputError(f"input size: H and W must be positive multiples of 32, got {size}")
    return height, width


# ------------------------------------------------------------------------------- families
class FrameDetector(Protocol):
    """What a detector family gives the `Predictor` (one per family, in this module).

    Attributes: `name`, `names` (class names), `num_frames` (T), `frame_stride`, `thresholds`,
    `frame_check` (the model's `mistd.frame_check` settings), `learned`, `maps` (whether results
    carry intermediate maps). `reset()` starts a sequence;
    `push(frame [H, W], bit_depth)` detects on the next frame of the current sequence and
    returns `Results` (boxes in original pixels, every score above the decoding floor; no frame
    attached). Adding a detector family is adding one such class and its branch in
    `open_detector`."""

    name: str
    names: list[str]
    num_frames: int
    frame_stride: int
    thresholds: Thresholds
    frame_check: FrameCheck
    learned: bool
    maps: bool

    def reset(self) -> None: ...

    def push(self, frame: np.ndarray, bit_depth: int) -> Results: ...


def _results_of(detections, names: list[str]) -> Results:
    """A torch `Detections` -> `Results` (maps kept as they are)."""
    return Results(
        detections.boxes.detach().float().cpu().numpy(),
        detections.scores.detach().float().cpu().numpy(),
        detections.labels.detach().cpu().numpy(),
        names,
        maps=detections.maps,
    )


class WindowDetector:
    """A clip detector (`num_frames`, `detect(frames [T, H, W], bit_depth) -> Detections`: the
    classical ones, or a trained model in clip mode) fed the causal window of each frame: the
    last T frames `frame_stride` apart, the first frame repeated at a sequence start."""

    maps = False
    frame_check = FrameCheck()

    def __init__(
        self,
        detector,
        name: str,
        names: list[str],
        thresholds: Thresholds,
        learned: bool = False,
    ):
        from mistd.data.clips import frame_stride_of, window_span

        self.detector = detector
        self.name = name
        self.names = names
        self.thresholds = thresholds
        self.learned = learned
        self.num_frames = int(detector.num_frames)
        self.frame_stride = frame_stride_of(detector)
        self._window: deque[np.ndarray] = deque(
            maxlen=window_span(self.num_frames, self.frame_stride)
        )

    def reset(self) -> None:
        self._window.clear()

    def window(self, frame: np.ndarray) -> np.ndarray:
        """Append `frame`; the `[T, H, W]` causal window ending at it."""
        from mistd.data.clips import causal_window

        if self._window and self._window[-1].shape != frame.shape:
            self._window.clear()  # another frame size: a new sequence
        self._window.append(frame)
        held = list(self._window)
        return np.stack(
            [held[k] for k in causal_window(len(held) - 1, self.num_frames, self.frame_stride)]
        )

    def push(self, frame: np.ndarray, bit_depth: int) -> Results:
        return _results_of(self.detector.detect(self.window(frame), bit_depth), self.names)


class TorchDetector:
    """A trained torch model (a `ClipDetector`) at an input size chosen per frame.

    Streams with a `VideoPredictor` (default), or runs in clip mode (`stream=False`: the
    `ClipDetector` on each causal window, T backbone passes per frame; the reference).
    `from_weights` builds one from any weights.
    """

    learned = True

    def __init__(
        self,
        clip_detector,
        *,
        name: str = "",
        names: list[str] | None = None,
        thresholds: Thresholds = LEARNED_DEFAULTS,
        frame_check: FrameCheck | None = None,
        input_size: Any = None,
        stream: bool = True,
        backend: str = "torch",
        precision: str = "fp32",
        maps: bool = False,
        compile: bool = False,
    ):
        import torch

        if compile and (backend != "torch" or not stream):
            raise InputError("compile applies to the torch backend, streaming")
        if backend not in ("torch", "onnxruntime"):
            raise InputError(f"backend: expected torch or onnxruntime, got '{backend}'")
        if precision not in ("fp32", "bf16"):
            raise InputError(f"precision: expected fp32 or bf16, got '{precision}'")
        if backend != "torch" and not stream:
            raise InputError(f"backend {backend} needs streaming")
        if backend == "onnxruntime" and precision != "fp32":
            raise InputError("precision bf16 applies to the torch backend only")
        self.clip_detector = clip_detector
        if clip_detector.device.type == "cpu":
            from mistd.inference.allocator import retain_freed_memory

            retain_freed_memory()  # no page faults on every frame's fresh tensors
        # clip mode (and the sampled evaluation's windows, `detect_clips`) at the same precision
        clip_detector.precision = precision
        self.name = name or clip_detector.name or type(clip_detector.model).__name__
        config_names = (clip_detector.config.get("data") or {}).get("class_names")
        self.names = list(names or config_names or ["target"])
        self.thresholds = thresholds
        self.frame_check = frame_check or FrameCheck()
        self.trained_input_size = tuple(int(v) for v in clip_detector.input_size)
        self.input_size = parse_input_size(input_size)
        self.stream = stream
        self.compiled = compile
        self.maps = maps
        self.model = clip_detector.model
        self.device = clip_detector.device
        self.num_frames = clip_detector.num_frames
        self.frame_stride = clip_detector.frame_stride
        self.predictor = None
        self._window = None
        self._warned: set[tuple] = set()
        if stream:
            from mistd.inference.streaming import supports_streaming
            from mistd.inference.video_predictor import VideoPredictor

            if not supports_streaming(self.model):
                if compile:
                    raise InputError(
                        f"compile needs a model that streams; {self.name} runs in clip mode"
                    )
                if backend != "torch":
                    raise InputError(
                        f"backend {backend} needs a streaming model (yolox-s, mf-baseline, "
                        "mf-residual, chal and their variants)"
                    )
                self.stream = False
            else:
                parts = None
                if backend == "onnxruntime":
                    parts = self._onnx_parts(self.model, torch.get_num_threads())
                self.predictor = VideoPredictor(
                    self.model,
                    input_size=self.trained_input_size,
                    num_frames=self.num_frames,
                    frame_stride=self.frame_stride,
                    decode_floor=clip_detector.decode_floor,
                    nms_iou=clip_detector.nms_iou,
                    parts=parts,
                    precision=precision,
                    compile=compile,
                    device=self.device,
                )
                if maps and not self.predictor.supports_maps:
                    raise InputError(f"maps need a CHAL model with the torch backend ({self.name})")
        if not self.stream:
            if maps:
                raise InputError("maps need streaming (CHAL, torch backend)")
            self._window = WindowDetector(clip_detector, self.name, self.names, thresholds)

    @classmethod
    def from_weights(cls, weights, *, device: str = "cpu", **kwargs) -> TorchDetector:
        """From a `mistd.weights.Weights` (its model built, weights loaded, on `device`)."""
        from mistd.config import to_dict
        from mistd.device import resolve_device
        from mistd.inference.detector import ClipDetector
        from mistd.inference.optimize import fold_batch_norms, set_channels_last
        from mistd.run_config import run_config_to_dict

        cfg = weights.run_config
        config = to_dict(cfg.model) if weights.kind == "official" else run_config_to_dict(cfg)
        device = resolve_device(str(device), option="device")
        # the model built here is only ever run: BatchNorm folded into the convolutions, and on
        # the CPU the convolutions in channels-last layout (faster with oneDNN, equal outputs)
        model = fold_batch_norms(weights.build_model().eval())
        if device.type == "cpu":
            set_channels_last(model)
        clip_detector = ClipDetector(
            model,
            num_frames=cfg.model.num_frames,
            input_size=tuple(cfg.model.input_size),
            device=device,
            decode_floor=DECODE_FLOOR,
            config=config,
            name=weights.name,
        )
        # the name the user knows: the shipped name or the file's stem (official: its file name)
        name = weights.name if weights.kind != "mistd" else Path(str(weights.source)).stem
        return cls(
            clip_detector,
            name=name,
            thresholds=weights.thresholds,
            frame_check=weights.frame_check,
            **kwargs,
        )

    def _onnx_parts(self, model, threads: int):
        import tempfile

        from mistd.inference.export import export_streaming_onnx
        from mistd.inference.onnx_backend import OnnxStreamingParts

        if not isinstance(self.input_size, tuple):
            raise InputError("backend onnxruntime needs a fixed input size (--input-size HxW)")
        with tempfile.TemporaryDirectory() as tmp:
            export_streaming_onnx(model, Path(tmp) / "model.onnx", self.input_size)
            # sessions hold the graphs in memory: the files may go
            return OnnxStreamingParts.from_export(Path(tmp) / "model.onnx", threads=threads)

    @property
    def supports_maps(self) -> bool:
        return self.predictor is not None and self.predictor.supports_maps

    def input_size_for(self, height: int, width: int) -> tuple[int, int]:
        """The model input for a `height x width` frame (see `Predictor`)."""
        if self.input_size == "native":
            return native_input_size(height, width)
        if self.input_size == "trained":
            return self.trained_input_size
        return self.input_size

    def _set_size(self, height: int, width: int, target=None) -> None:
        """Fit `target` (default: the streaming predictor, else the clip detector) to
        `height x width` frames."""
        size = self.input_size_for(height, width)
        scale = min(size[0] / height, size[1] / width)
        if self.input_size != "native" and abs(scale - 1.0) > 1e-6:
            key = (height, width, size)
            if key not in self._warned:
                self._warned.add(key)
                warnings.warn(
                    f"{self.name}: {width}x{height} frames are resized x{scale:.2f} to the model "
                    f"input {size[1]}x{size[0]}: small targets shrink (or grow) with them; "
                    "--input-size native (the default) runs at the frame's own size",
                    stacklevel=4,
                )
        pad_only = self.input_size == "native"
        if target is None:
            target = self.predictor if self.predictor is not None else self.clip_detector
        if target.input_size != size or target.pad_only != pad_only:
            if target is self.predictor:
                self.predictor.reset()  # features at another size cannot share a window
            target.input_size = size
            target.pad_only = pad_only

    def reset(self) -> None:
        if self.predictor is not None:
            self.predictor.reset()
        if self._window is not None:
            self._window.reset()

    def push(self, frame: np.ndarray, bit_depth: int) -> Results:
        self._set_size(*frame.shape)
        if self.predictor is not None:
            detections = self.predictor.push(frame, bit_depth, return_maps=self.maps)
            results = _results_of(detections, self.names)
            results.letterbox = self.predictor.letterbox
            return results
        return self._window.push(frame, bit_depth)

    def detect_clips(self, clips: list[np.ndarray], bit_depths: list[int]) -> list[Results]:
        """Clip mode on several `[T, H, W]` clips (for sampled evaluation, whose key frames do
        not come in order): one forward pass per frame size, each at the input size `push`
        would use for it (the clip detector's, also when this detector streams). A compiled
        detector runs each clip through its compiled streaming parts instead
        (`VideoPredictor.detect_window`: the model as it runs here is the one scored); the
        stream is reset."""
        if self.compiled:
            found = []
            for clip, bit_depth in zip(clips, bit_depths, strict=True):
                clip = np.asarray(clip)
                self._set_size(*clip.shape[-2:])
                found.append(_results_of(self.predictor.detect_window(clip, bit_depth), self.names))
            return found
        groups: dict[tuple[int, int], list[int]] = {}
        for i, clip in enumerate(clips):
            groups.setdefault(tuple(np.asarray(clip).shape[-2:]), []).append(i)
        out: list[Results | None] = [None] * len(clips)
        for (height, width), members in groups.items():
            self._set_size(height, width, self.clip_detector)
            detections = self.clip_detector.detect_batch(
                [clips[i] for i in members], [bit_depths[i] for i in members]
            )
            for i, found in zip(members, detections, strict=True):
                out[i] = _results_of(found, self.names)
        return out


class OnnxDetector:
    """A deployable `.onnx` (`mistd export`) run by onnxruntime, without torch: the one dispatch
    point for `.onnx` files. The work is `mistd.inference.onnx_runtime.OnnxDetector`'s (names,
    clip length and frame stride, preprocessing and input size rule from the file's metadata;
    `reset()`, `push(frame, bit_depth) -> (boxes [N, 4] xyxy original pixels, scores, labels)`).

    Input size: a graph exported with a fixed size runs at it (frames letterboxed, a warning when
    they are resized); a graph exported with `--dynamic` runs at the frame's own size rounded up
    to a multiple of 32 unless `input_size` fixes one. Thresholds: the file's `thresholds`
    metadata where it has one (`mistd.thresholds`), else those of trained models."""

    learned = True
    maps = False

    def __init__(self, path: Path, *, input_size: Any = None, threads: int | None = None):
        from mistd.inference.onnx_runtime import OnnxDetector as Runtime

        size = parse_input_size(input_size)
        if size == "trained":
            size = None
        self.runtime = Runtime(
            path, input_size=size if isinstance(size, tuple) else None, threads=threads
        )
        meta = self.runtime.metadata
        self.native = size == "native" and bool(meta.get("dynamic_size", False))
        self.runtime.pad_only = self.native
        self.name = Path(path).stem
        self.names = list(self.runtime.names)
        self.num_frames = int(self.runtime.num_frames)
        self.frame_stride = int(self.runtime.frame_stride)
        self.thresholds = Thresholds.from_dict(meta.get("thresholds"), LEARNED_DEFAULTS, path)
        self.frame_check = FrameCheck.from_dict(meta.get("frame_check"), path)
        self._warned: set[tuple] = set()

    def reset(self) -> None:
        self.runtime.reset()

    def input_size_for(self, height: int, width: int) -> tuple[int, int]:
        """The graph's input size for `height x width` frames (see the class docstring)."""
        if not self.native:
            return tuple(self.runtime.input_size)
        low_h, low_w = self.runtime.min_input_size
        want = native_input_size(height, width)
        return max(want[0], int(low_h)), max(want[1], int(low_w))

    def _fit(self, height: int, width: int) -> None:
        """Set the graph's input size for `height x width` frames (see the class docstring)."""
        if self.native:
            want = self.input_size_for(height, width)
            if want != tuple(self.runtime.input_size):
                self.runtime.reset()  # features at another size cannot share a window
                self.runtime.input_size = want
        else:
            size = tuple(self.runtime.input_size)
            scale = min(size[0] / height, size[1] / width)
            if abs(scale - 1.0) > 1e-6 and (height, width) not in self._warned:
                self._warned.add((height, width))
                warnings.warn(
                    f"{self.name}: {width}x{height} frames are resized x{scale:.2f} to the graph's "
                    f"input {size[1]}x{size[0]}: small targets shrink (or grow) with them; export "
                    "with --dynamic to run at the frame's own size",
                    stacklevel=5,
                )

    def push(self, frame: np.ndarray, bit_depth: int) -> Results:
        self._fit(*frame.shape)
        boxes, scores, labels = self.runtime.push(frame, bit_depth)
        return Results(boxes, scores, labels, self.names)

    def detect_clips(self, clips: list[np.ndarray], bit_depths: list[int]) -> list[Results]:
        """Clip mode on several `[T, H, W]` clips (frames `frame_stride` apart), one after the
        other (for sampled evaluation); leaves the stream reset."""
        out = []
        for clip, bit_depth in zip(clips, bit_depths, strict=True):
            self._fit(*np.asarray(clip).shape[-2:])
            boxes, scores, labels = self.runtime.predict_clip(clip, bit_depth)
            out.append(Results(boxes, scores, labels, self.names))
        return out


def open_detector(
    model: Any,
    *,
    settings: list[str] | dict | None = None,
    device: str = "cpu",
    input_size: Any = None,
    stream: bool = True,
    backend: str = "torch",
    precision: str = "fp32",
    maps: bool = False,
    threads: int | None = None,
    compile: bool = False,
) -> FrameDetector:
    """The `FrameDetector` for `model`: a classical detector name (`tophat`, `mpcm`, `temporal`,
    with `settings`: its config keys), a `.onnx` file, the name of shipped weights, a mistd
    checkpoint or an official CHAL `.pth` file, a `mistd.weights.Weights`, or a clip detector
    object (`num_frames` + `detect`). `threads`, `compile`: see `Predictor`."""
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise InputError(f"threads must be a whole number >= 1, got {threads!r}")
    if isinstance(model, str | Path):
        text = str(model)
        if text.endswith(".onnx"):
            if not Path(text).is_file():
                raise InputError("ONNX file not found", text)
            what = "an .onnx graph (it runs at the precision it was exported with)"
            _refuse_torch_options(what, compile, precision, text)
            return OnnxDetector(Path(text), input_size=input_size, threads=threads)
        from mistd.classical import CLASSICAL

        if text in CLASSICAL and not Path(text).is_file():
            _refuse_torch_options(text, compile, precision)
            return _classical(text, settings, input_size)
    if settings:
        raise InputError(
            f"key=value settings ({settings}) apply to classical detectors; trained weights keep "
            "the config they were trained with"
        )
    if threads is not None:  # torch's intra-op threads are the process's
        import torch

        torch.set_num_threads(threads)
    options = dict(
        input_size=input_size,
        stream=stream,
        backend=backend,
        precision=precision,
        maps=maps,
        compile=compile,
    )
    from mistd.inference.detector import ClipDetector

    if isinstance(model, ClipDetector):  # a trained model already built: its own input size
        if input_size is None:
            options["input_size"] = "trained"
        return TorchDetector(model, **options)
    if hasattr(model, "detect") and hasattr(model, "num_frames"):  # any clip detector object
        if compile:
            raise InputError("compile applies to trained torch models that stream")
        # its class names, when it says (a `config` dict as trained models keep: data.class_names)
        config = getattr(model, "config", None)
        names = (config.get("data") or {}).get("class_names") if isinstance(config, dict) else None
        name = getattr(model, "name", "") or type(model).__name__
        return WindowDetector(model, name, list(names or ["target"]), CLASSICAL_DEFAULTS)
    from mistd.weights import Weights, read_weights

    weights = model if isinstance(model, Weights) else read_weights(model)
    return TorchDetector.from_weights(weights, device=device, **options)


def _refuse_torch_options(what: str, compile: bool, precision: str, source: Any = None) -> None:
    """InputError when `compile` or a torch precision other than fp32 is asked of `what`, which is
    not a trained torch model (an .onnx graph, a classical detector)."""
    if compile:
        raise InputError(f"compile applies to trained torch models, not to {what}", source)
    if precision != "fp32":
        raise InputError(
            f"precision {precision} applies to trained torch models, not to {what}", source
        )


def _classical(name: str, settings, input_size) -> WindowDetector:
    from mistd.classical import build_classical, classical_settings

    if input_size is not None and input_size != "native":
        raise InputError(
            "input size applies to trained models (the classical ones run at any size)"
        )
    try:
        overrides = settings if isinstance(settings, dict) else classical_settings(settings)
        detector = build_classical(name, overrides)
    except ValueError as exc:  # a constructor's range check (e.g. an even kernel size)
        raise InputError(f"{name} settings: {exc}") from None
    return WindowDetector(detector, name, ["target"], CLASSICAL_DEFAULTS)


# ------------------------------------------------------------------------------- stages
class MergeClasses:
    """Post-processing stage: every detection one class ("target") after class-agnostic NMS
    (a multi-class model scored or tracked against one-class ground truth)."""

    def __init__(self, iou: float = MERGE_NMS_IOU):
        self.iou = iou

    def reset(self) -> None:
        pass

    def __call__(self, results: Results) -> Results:
        from mistd.boxes import nms

        keep = nms(results.boxes, results.scores, self.iou)
        merged = results[keep]
        merged.labels = np.zeros_like(merged.labels)
        merged.names = ["target"]
        return merged


Stage = Callable[[Results], Results]


# ------------------------------------------------------------------------------- predictor
class Predictor:
    """Frames in, `Results` out (see module docstring).

    Args:
        model: a classical detector name (`tophat`, `mpcm`, `temporal`), shipped weights
            (`mistd.list_models()["shipped"]`), a mistd checkpoint, an official CHAL `.pth`, an
            exported `.onnx`, a `mistd.weights.Weights`, or a clip detector object.
        settings: a classical detector's config keys (`["rule.k=5"]` or a dict).
        device: `cpu`, `cuda`, `cuda:N` or `auto` (trained torch models).
        input_size: trained models: None / "native" (the frame's size padded to a multiple of
            32; default), "trained" (the size in the checkpoint), or `(h, w)` / "HxW".
        stream: trained models: stream (default) or clip mode.
        merge_classes: every box one class "target" (class-agnostic NMS).
        frame_check: re-measure boxes and scores in the frame (`mistd.frame_check`): None or
            "auto" (the model's own settings; default), False / "off", True / "on" (regrow
            only, where the model sets nothing), "key=value,..." (e.g. "margin=0"), or a
            `FrameCheck` (`mistd.frame_check.resolve_frame_check`).
        confirm_tracks: re-score detections by an online tracker (`TrackConfirmation`); with
            `tracker` (a `TrackerConfig`, default: the model's track threshold) and
            `unconfirmed_weight`.
        display_threshold: boxes below it are left out of `Results` (default: the model's,
            `thresholds.display`), unless `keep_all`.
        keep_all: keep every box above the decoding floor (for scoring).
        keep_frames: attach each frame to its `Results` (for `plot`/`save`).
        maps: attach CHAL's intermediate maps (`Results.maps`; streaming, torch backend).
        backend, precision: trained models' streaming backend (`torch` / `onnxruntime`) and
            torch precision (`fp32`, or `bf16`: autocast, decoding in fp32; opt-in, it pays on
            CPUs with native bf16). Weights loaded here run with BatchNorm folded into the
            convolutions and, on the CPU, channels-last (`mistd.inference.optimize`).
        threads: CPU threads of a trained model's forward (None: the runtime's default, one per
            core): an `.onnx` file's onnxruntime session; for torch models the process's
            `torch.set_num_threads` (it holds for every torch model of the process). One thread
            per process when several cameras or jobs share the cores (docs/results.md,
            "Threads").
        compile: run a streaming torch model through `torch.compile` (weights frozen into the
            graph, activations fused into the convolutions; needs a C++ compiler): 1.2-1.3x
            faster per frame than eager in bf16 on a Xeon with AMX (chal-ir-s 640x512: 15 ->
            20 frames/s); the first frame of each size compiles (~30 s on 2 cores). Torch
            backend, streaming only.

    Attributes:
        detector: the `FrameDetector`; `thresholds`: display / operating / track scores;
        names: class names of the results; stages: the post-processing stages, in order.
    """

    def __init__(
        self,
        model: Any,
        *,
        settings: list[str] | dict | None = None,
        device: str = "cpu",
        input_size: Any = None,
        stream: bool = True,
        merge_classes: bool = False,
        frame_check: bool | str | FrameCheck | None = None,
        confirm_tracks: bool = False,
        tracker: TrackerConfig | None = None,
        unconfirmed_weight: float = 0.1,
        display_threshold: float | None = None,
        keep_all: bool = False,
        keep_frames: bool = True,
        maps: bool = False,
        backend: str = "torch",
        precision: str = "fp32",
        threads: int | None = None,
        compile: bool = False,
    ):
        self.detector = open_detector(
            model,
            settings=settings,
            device=device,
            input_size=input_size,
            stream=stream,
            backend=backend,
            precision=precision,
            maps=maps,
            threads=threads,
            compile=compile,
        )
        thresholds = self.detector.thresholds
        if display_threshold is not None:
            if not 0.0 <= display_threshold <= 1.0:
                raise InputError(f"display threshold must be in [0, 1], got {display_threshold}")
            thresholds = replace(thresholds, display=float(display_threshold))
        self.thresholds = thresholds
        self.keep_all = keep_all
        self.keep_frames = keep_frames
        self.stages: list[Stage] = []
        self.callbacks: dict[str, list[Callable]] = {"on_sequence_start": [], "on_results": []}
        self.merge_classes = False
        if merge_classes:
            self.set_merge_classes(True)
        check = resolve_frame_check(frame_check, self.detector.frame_check)
        self.frame_check = FrameCheckStage(check) if check.enabled else None
        if self.frame_check is not None:
            self.add_stage(self.frame_check)
        self.track_confirmation = None
        if confirm_tracks:
            from mistd.tracking.confirm import TrackConfirmation

            self.track_confirmation = TrackConfirmation(
                tracker or self.tracker_config(), unconfirmed_weight
            )
            self.add_stage(self.track_confirmation)
        self._frame_index = 0

    # ------------------------------------------------------------------------- properties
    @property
    def name(self) -> str:
        return self.detector.name

    @property
    def names(self) -> list[str]:
        return ["target"] if self.merge_classes else list(self.detector.names)

    @property
    def num_frames(self) -> int:
        return self.detector.num_frames

    @property
    def frame_stride(self) -> int:
        return self.detector.frame_stride

    @property
    def learned(self) -> bool:
        return self.detector.learned

    def set_merge_classes(self, enabled: bool) -> None:
        """Switch class merging on or off (it runs before every other stage)."""
        self.stages = [s for s in self.stages if not isinstance(s, MergeClasses)]
        if enabled:
            self.stages.insert(0, MergeClasses())
        self.merge_classes = enabled

    def merges_for(self, class_names: list[str]) -> bool:
        """Whether data with these classes scores this detector class-agnostically: a
        multi-class model on one-class ground truth (every box is a target)."""
        return len(self.detector.names) > 1 and len(class_names) == 1

    def tracker_config(self, overrides: list[str] | dict | None = None) -> TrackerConfig:
        """A `TrackerConfig` whose high and birth thresholds are the model's track threshold,
        with `overrides` (`key=value` strings or a dict) applied."""
        from mistd.tracking.tracker import tracker_config

        return tracker_config(overrides, self.thresholds.track)

    def add_stage(self, stage: Stage) -> None:
        """Append a post-processing stage (`stage(results) -> results`, optional `reset()`)."""
        self.stages.append(stage)

    def add_callback(self, event: str, callback: Callable) -> None:
        """`on_sequence_start(predictor, sequence)` or `on_results(predictor, results)`."""
        if event not in self.callbacks:
            raise ValueError(f"unknown event '{event}' (choose from {sorted(self.callbacks)})")
        self.callbacks[event].append(callback)

    # ------------------------------------------------------------------------- running
    def reset(self, sequence: str = "") -> None:
        """Start a new sequence: the detector's window, every stage's state."""
        self.detector.reset()
        for stage in self.stages:
            reset = getattr(stage, "reset", None)
            if reset is not None:
                reset()
        self._frame_index = 0
        for callback in self.callbacks["on_sequence_start"]:
            callback(self, sequence)

    def push(
        self,
        frame: np.ndarray,
        bit_depth: int | None = None,
        *,
        frame_index: int | None = None,
        sequence: str = "",
        record: FrameRecord | None = None,
    ) -> Results:
        """Detections of the next frame of the current sequence (`[H, W]` or BGR, uint8/uint16;
        `bit_depth` inferred from the dtype when None)."""
        gray, depth = as_gray_frame(frame)
        if bit_depth is None:
            bit_depth = depth
        start = time.perf_counter()
        results = self.detector.push(gray, bit_depth)
        results.names = list(self.detector.names)
        results.frame = frame
        if self.frame_check is not None:  # only shown boxes matter: check only those
            shown_only = not self.keep_all and self.track_confirmation is None
            self.frame_check.min_score = self.thresholds.display if shown_only else 0.0
        for stage in self.stages:
            results = stage(results)
        seconds = time.perf_counter() - start
        if not self.keep_all:
            results = results[results.scores >= self.thresholds.display]
        results.display_threshold = self.thresholds.display
        results.frame = frame if self.keep_frames else None
        results.frame_index = self._frame_index if frame_index is None else frame_index
        results.sequence = sequence
        results.extra["seconds"] = seconds
        if record is not None:
            results.record = record
            results.path = str(record.path or record.video or "") or None
        self._frame_index = results.frame_index + 1
        for callback in self.callbacks["on_results"]:
            callback(self, results)
        return results

    def __call__(self, source: Any, **kwargs) -> Results | Iterator[Results]:
        """A numpy frame -> its `Results` (continuing the current sequence); anything else
        (see `frames_of`) -> an iterator of `Results`, one per frame."""
        if isinstance(source, np.ndarray):
            return self.push(source, **kwargs)
        return self.predict(source, **kwargs)

    def predict(
        self, source: Any, *, max_frames: int | None = None, root: str | None = None
    ) -> Iterator[Results]:
        """`Results` of every frame of `source` (`frames_of`), sequence by sequence."""
        done = 0
        for sequence, frames in frames_of(source, root=root):
            if max_frames is not None and done >= max_frames:
                return
            self.reset(sequence)
            for index, frame, bit_depth, record in frames:
                if max_frames is not None and done >= max_frames:
                    return
                yield self.push(
                    frame, bit_depth, frame_index=index, sequence=sequence, record=record
                )
                done += 1

    def predict_clips(self, clips: list, batch: int = 8) -> list[Results]:
        """Clip mode on `mistd.structures.Clip`s in any order (each with its own causal window;
        for the sampled evaluation of training): one forward pass per `batch` clips, trained
        torch models and `.onnx` files only. Of the stages only class merging and the frame check
        run (on each clip's key frame); the others need frames in order."""
        if not isinstance(self.detector, TorchDetector | OnnxDetector):
            raise TypeError("predict_clips runs trained torch models and .onnx files")
        out: list[Results] = []
        for lo in range(0, len(clips), batch):
            items = clips[lo : lo + batch]
            found = self.detector.detect_clips(
                [c.frames for c in items], [c.bit_depth for c in items]
            )
            for clip, results in zip(items, found, strict=True):
                if self.merge_classes:
                    results = self.stages[0](results)
                results.frame = clip.frames[-1]
                if self.frame_check is not None:
                    results = self.frame_check(results)
                if not self.keep_frames:
                    results.frame = None
                results.record = clip.key
                results.display_threshold = self.thresholds.display
                out.append(results)
        return out

    def __repr__(self) -> str:
        stages = ", ".join(type(s).__name__ for s in self.stages)
        return (
            f"Predictor({self.name}, num_frames={self.num_frames}, thresholds={self.thresholds}"
            f"{', stages: ' + stages if stages else ''})"
        )


# ------------------------------------------------------------------------------- sources
def frames_of(
    source: Any, root: str | None = None
) -> Iterator[tuple[str, Iterable[tuple[int, np.ndarray, int, FrameRecord | None]]]]:
    """`(sequence name, frames)` for every sequence of `source`; frames are
    `(0-based index, [H, W] frame, bit depth, record or None)`.

    Sources: a numpy frame or a list of them (one sequence), a `FrameDataset`, an image file, a
    webcam index (int), a stream URL (rtsp://, http(s)://), or any path `read_dataset` reads (a
    video, an image folder, an annotated data set: its records carry the ground truth)."""
    if isinstance(source, np.ndarray) or (
        isinstance(source, list) and source and isinstance(source[0], np.ndarray)
    ):
        frames = [source] if isinstance(source, np.ndarray) else source
        yield "frames", ((i, *as_gray_frame(f), None) for i, f in enumerate(frames))
        return
    if isinstance(source, int | np.integer) and not isinstance(source, bool):
        yield f"camera{int(source)}", _capture_frames(int(source))
        return
    text = str(source) if isinstance(source, str | Path) else None
    if text is not None and text.lower().startswith(STREAM_PREFIXES):
        yield text.rsplit("/", 1)[-1] or "stream", _capture_frames(text)
        return
    if text is not None and text.isdigit() and not Path(text).exists():
        yield f"camera{text}", _capture_frames(int(text))
        return
    from mistd.data.readers.frames import IMAGE_SUFFIXES

    if text is not None and Path(text).is_file() and Path(text).suffix.lower() in IMAGE_SUFFIXES:
        from mistd.data.readers.frames import read_image

        image, depth = read_image(Path(text))
        yield Path(text).stem, [(0, image, depth, None)]
        return
    dataset = source if hasattr(source, "sequences") else _read(text, root)
    for sequence in dataset.sequences:
        yield sequence.name, _records(sequence)


def _read(source: str | None, root: str | None) -> FrameDataset:
    from mistd.data.readers import read_dataset

    if source is None:
        raise InputError(
            "expected a frame (numpy array), a path, a webcam index, a stream URL or a data set"
        )
    return read_dataset(source, root=root)


def _records(sequence) -> Iterator[tuple[int, np.ndarray, int, FrameRecord]]:
    from mistd.data.readers.frames import load_frame

    for record in sequence.frames:
        frame, bit_depth = load_frame(record)
        if record.width is None or record.height is None:
            # size known only once the frame is read (videos, image folders)
            record.width, record.height = int(frame.shape[1]), int(frame.shape[0])
        yield record.index, frame, bit_depth, record


def _capture_frames(device: int | str) -> Iterator[tuple[int, np.ndarray, int, None]]:
    """Frames of a webcam or a network stream (OpenCV), until it ends."""
    import cv2

    capture = cv2.VideoCapture(device)
    if not capture.isOpened():
        raise InputError(f"cannot open the camera or stream '{device}'")
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            gray, depth = as_gray_frame(frame)
            yield index, gray, depth, None
            index += 1
    finally:
        capture.release()


def open_predictor(
    model: str | None = None,
    weights: str | None = None,
    settings: list[str] | None = None,
    **kwargs,
) -> tuple[Predictor, str]:
    """`(Predictor, run name)` for the commands' `--model NAME` (a classical detector, with its
    `settings`) or `--weights W` (shipped name, checkpoint, official .pth, .onnx): exactly one.
    `kwargs` go to `Predictor`. InputError with a suggestion for an unknown `--model`."""
    import difflib

    if (model is None) == (weights is None):
        raise InputError("give exactly one of --model NAME or --weights FILE")
    if model is not None:
        from mistd.classical import CLASSICAL

        if model not in CLASSICAL:
            close = difflib.get_close_matches(model, list(CLASSICAL), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise InputError(
                f"unknown model '{model}' (choose from {', '.join(sorted(CLASSICAL))}{hint}); "
                "for trained weights use --weights"
            )
        return Predictor(model, settings=settings, **kwargs), model
    if settings:
        raise InputError(
            f"key=value settings ({' '.join(settings)}) apply to classical --model detectors; "
            "trained --weights keep the config they were trained with"
        )
    return Predictor(weights, **kwargs), Path(str(weights)).stem
