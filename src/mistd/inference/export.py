"""ONNX export of zoo detectors: the clip forward, and the two streaming graphs.

Three graphs can be written for a model (opset 17, TorchScript exporter):

- `<stem>.onnx` — the clip forward: input `clip [B, T, 3, H, W]` -> outputs `maps_0 ..`
  (`[B, 5 + C, H/s, W/s]` per head level, the raw maps of `model.forward`);
- `<stem>.frame.onnx` — the per-frame encoder (`mistd.inference.streaming`): input
  `frames [N, 3, H, W]` -> `feature_0 ..` (`[N, ...]`);
- `<stem>.clip.onnx` — the clip head: inputs `feature_0 ..` stacked over the window
  `[B, T, ...]` -> `maps_0 ..`.

The batch axes (B, N) are always dynamic. The spatial size is fixed to `input_size` unless
`dynamic=True`: then H and W are dynamic too, any multiples of 32 of at least the model's
`min_export_size()`. Every size in the graphs is computed from the input with tensor operations;
the one size-dependent decision left is CHAL's Swin window shrink (Video Swin's rule for maps no
larger than the window), which a graph cannot take: exported graphs keep the configured window,
so the export refuses sizes below `min_export_size()` ((64, 64) for CHAL with a shifted Swin
layer at window 4, (32, 32) otherwise) and the ONNX backend checks its inputs against the
metadata. Each file carries metadata (`mistd.*` keys: graph kind, num_frames, input_size,
min_input_size, strides, model class) that `mistd.inference.onnx_backend` reads.

`export_deploy_onnx` writes the graph to ship (`mistd export`'s default): one `step` graph that
takes one letterboxed frame plus the cached features of the window's earlier frames and returns the
frame's top candidates as boxes (decoded in the graph), with the class names, the input size rule
and the preprocessing in its metadata; `mistd.inference.onnx_runtime.OnnxDetector` runs it
without torch. A dense model (`tinyseg`: probability maps, not head maps) exports only this graph:
its outputs are the maps of `blob_maps`, `OnnxDetector` decodes them to boxes (metadata
`mistd.decoder` = `blobs`).

An export emits no warning of its own (`tests/inference/test_onnx.py` exports every zoo model with
warnings as errors): a `torch.jit.TracerWarning` means a Python decision on a traced value that
the graph would keep as a constant, a bug to fix where it arises, never to filter.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from mistd.config import check_input_size
from mistd.decoding import decode_outputs
from mistd.errors import InputError
from mistd.inference.streaming import streaming_parts, supports_streaming
from mistd.io import atomic_path
from mistd.models.detectors.base import ClipDetectorModule

OPSET = 17


class _ClipForward(nn.Module):
    """`model.forward` with a tuple output (what the exporter expects), computed as the
    streaming parts on the folded clip when the model has them.

    Why: the TorchScript tracer records the shape of a `Tensor.unflatten` result as constants,
    so a clip forward that unflattens `[B*T, ...]` to `[B, T, ...]` would bake the batch size
    into the graph; `reshape` with sizes read from the input stays dynamic. The result is
    `model.forward(clip)` (checked by `tests/inference/test_onnx.py`).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.parts = streaming_parts(model) if supports_streaming(model) else None

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.parts is None:
            return tuple(self.model(clip))
        encoder, head = self.parts
        b, t = clip.shape[0], clip.shape[1]
        features = encoder(clip.reshape(b * t, *clip.shape[2:]))
        return tuple(head(*[f.reshape(b, t, *f.shape[1:]) for f in features]))


class _TupleOutput(nn.Module):
    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.module(*inputs))


def _metadata(model: nn.Module, kind: str, input_size: tuple[int, int], dynamic: bool) -> dict:
    return {
        "mistd.graph": kind,
        "mistd.model_class": type(model).__name__,
        "mistd.num_frames": str(int(model.num_frames)),
        "mistd.frame_stride": str(int(getattr(model, "frame_stride", 1))),
        "mistd.input_size": json.dumps(list(input_size)),
        "mistd.min_input_size": json.dumps(list(_min_export_size(model))),
        "mistd.strides": json.dumps(list(getattr(model, "strides", ()))),
        "mistd.dynamic_size": str(bool(dynamic)),
    }


# Why the TorchScript exporter (`dynamo=False`), tried with torch 2.13 on the zoo's tiny models:
# - the dynamo exporter needs `onnxscript`, which the `onnx` extra does not install: a plain
#   `dynamo=True` fails with ModuleNotFoundError;
# - with onnxscript 0.7.2 it writes opset 18 only (onnx's conversion to our opset 17 fails);
# - yolox-s and the mf models come out right at another batch (yolox-s also at another size), but
#   CHAL's graphs do not, even with `dynamic_shapes` (batch Dim, H and W = 32 * Dim): at batch 3 a
#   Concat meets batch 3 and 9, at 96x128 a Reshape gets the field's [3, 64, 32] (the pixels of
#   the 64x64 export) for [3, 1, 12, 16, 32]; with `dynamic_axes` and a batch-1 example the batch
#   stays 1 (a Reshape to [1, ...] fails at batch 2).
# So the TorchScript exporter stays, and with it its two DeprecationWarnings, raised by torch
# itself whatever the model: the legacy exporter's notice, and a deprecated function its
# internals call. Nothing else is filtered.
_TORCHSCRIPT_DEPRECATIONS = (
    "You are using the legacy TorchScript-based ONNX export",
    "The feature will be removed. Please remove usage of this function",
)


def _ignore_torchscript_deprecations() -> None:
    """Filter the TorchScript exporter's two DeprecationWarnings (see above); every other warning
    gets through (and fails `tests/inference/test_onnx.py::test_export_emits_no_warning`)."""
    for message in _TORCHSCRIPT_DEPRECATIONS:
        warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)


def streaming_onnx_paths(path: str | Path) -> tuple[Path, Path]:
    """The frame-encoder and clip-head graphs written beside clip graph `path`
    (`model.onnx` -> `model.frame.onnx`, `model.clip.onnx`)."""
    path = Path(path)
    stem = path.name[:-5] if path.name.endswith(".onnx") else path.name
    return path.with_name(f"{stem}.frame.onnx"), path.with_name(f"{stem}.clip.onnx")


def decodes_blobs(model: nn.Module) -> bool:
    """Whether `model` is a dense model (`tinyseg`) whose detections are blobs of its
    `blob_maps` (probability, score) rather than decoded head maps."""
    return callable(getattr(model, "blob_maps", None))


def check_export_size(model: nn.Module, input_size: tuple[int, int], deploy: bool = False) -> None:
    """Raise InputError unless `input_size` (H, W) can be exported: positive multiples of 32, at
    least `model.min_export_size()` (see module docstring); or unless `model` is of a family
    that exports (the YOLOX-head families, which stream; a dense model, `deploy` graph only)."""
    if decodes_blobs(model) and not deploy:
        raise InputError(
            f"{type(model).__name__} exports as a deployable graph only (its outputs are "
            "probability maps, not head maps to stream): drop --raw"
        )
    if not supports_streaming(model) and not decodes_blobs(model):
        raise InputError(
            f"{type(model).__name__} is not exported to ONNX (the graphs are a YOLOX-head "
            "family's: yolox-s, mf-baseline, mf-residual, chal and their variants, or tinyseg's "
            "deployable graph); run it with torch"
        )
    h, w = check_input_size(input_size, "export size")
    min_h, min_w = _min_export_size(model)
    if h < min_h or w < min_w:
        raise InputError(
            f"{type(model).__name__} exports for inputs of at least {min_h}x{min_w} (below that "
            f"its Swin window shrinks to the map, a decision an exported graph cannot take), got "
            f"{h}x{w}: export at {max(h, min_h)}x{max(w, min_w)} or larger"
        )


def _min_export_size(model: nn.Module) -> tuple[int, int]:
    if isinstance(model, ClipDetectorModule):
        return model.min_export_size()
    return 32, 32


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    metadata: dict[str, str],
) -> Path:
    import onnx

    path = Path(path)
    # The exporter restores the wrapper's mode afterwards: a wrapper left in train mode (the
    # nn.Module default) would switch the model to train mode for its later users.
    module.eval()
    with atomic_path(path) as tmp, warnings.catch_warnings():
        _ignore_torchscript_deprecations()
        torch.onnx.export(
            module,
            args,
            str(tmp),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
        proto = onnx.load(str(tmp))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))
    return path


def _spatial_axes(dynamic: bool, first: int) -> dict[int, str]:
    return {first: "height", first + 1: "width"} if dynamic else {}


@torch.no_grad()
def export_clip_onnx(
    model: nn.Module, path: str | Path, input_size: tuple[int, int], dynamic: bool = False
) -> Path:
    """Export `model.forward(clip [B, T, 3, H, W])` to `path` (see module docstring).

    Raises InputError for an `input_size` that cannot be exported (`check_export_size`).
    """
    check_export_size(model, input_size)
    model = model.eval()
    h, w = input_size
    clip = torch.randn(1, model.num_frames, 3, h, w)
    num_outputs = len(model(clip))
    outputs = [f"maps_{i}" for i in range(num_outputs)]
    axes = {"clip": {0: "batch", **_spatial_axes(dynamic, 3)}}
    axes.update({name: {0: "batch"} for name in outputs})
    return _export(
        _ClipForward(model),
        (clip,),
        Path(path),
        ["clip"],
        outputs,
        axes,
        _metadata(model, "clip", input_size, dynamic),
    )


@torch.no_grad()
def export_streaming_onnx(
    model: nn.Module,
    path: str | Path,
    input_size: tuple[int, int],
    dynamic: bool = False,
    fast_snf: bool = True,
) -> tuple[Path, Path]:
    """Export the per-frame encoder and the clip head of `model` as two graphs.

    `path` is the clip graph's name (`model.onnx`); writes `model.frame.onnx` and
    `model.clip.onnx` beside it and returns their paths. Raises InputError for an `input_size`
    that cannot be exported (`check_export_size`).
    """
    check_export_size(model, input_size)
    model = model.eval()
    frame_path, clip_path = streaming_onnx_paths(path)
    encoder, head = streaming_parts(model, fast_snf=fast_snf)
    h, w = input_size
    t = model.num_frames
    frames = torch.randn(t, 3, h, w)
    features = encoder(frames)
    feature_names = [f"feature_{i}" for i in range(len(features))]
    axes = {"frames": {0: "frames", **_spatial_axes(dynamic, 2)}}
    axes.update({name: {0: "frames"} for name in feature_names})
    _export(
        _TupleOutput(encoder),
        (frames,),
        frame_path,
        ["frames"],
        feature_names,
        axes,
        _metadata(model, "frame", input_size, dynamic),
    )
    stacked = tuple(f[None] for f in features)  # [1, T, ...]
    num_outputs = len(head(*stacked))
    outputs = [f"maps_{i}" for i in range(num_outputs)]
    axes = {name: {0: "batch", **_spatial_axes(dynamic, 3)} for name in feature_names}
    axes.update({name: {0: "batch"} for name in outputs})
    _export(
        _TupleOutput(head),
        stacked,
        clip_path,
        feature_names,
        outputs,
        axes,
        _metadata(model, "clip_head", input_size, dynamic),
    )
    return frame_path, clip_path


# ------------------------------------------------------------------------------ deployable step
DEPLOY_FORMAT = "mistd-step-1"
DEFAULT_TOP_K = 1000  # candidates the graph returns (`mistd.models.ops.postprocess`'s cap)


class _NMS(torch.autograd.Function):
    """Class-aware NMS that exports as ONNX `NonMaxSuppression` (no torchvision needed).

    In the graph: `(boxes [B, K, 4] xyxy, scores [B, C, K], iou) -> selected [S, 3]` (batch,
    class, candidate) as ONNX defines it (per batch and class, by descending score; candidates
    with score 0 are ignored).
    """

    @staticmethod
    def forward(ctx, boxes, scores, iou_threshold):  # noqa: ARG004
        # Export only: the tracer records this op and the exported graph runs ONNX
        # NonMaxSuppression; the eager value is an empty selection (torch inference runs
        # `mistd.models.ops.batched_nms` instead).
        return torch.zeros((0, 3), dtype=torch.int64, device=boxes.device)

    @staticmethod
    def symbolic(g, boxes, scores, iou_threshold):
        max_out = g.op("Constant", value_t=torch.tensor([1 << 30], dtype=torch.int64))
        iou = g.op("Constant", value_t=torch.tensor([float(iou_threshold)], dtype=torch.float32))
        floor = g.op("Constant", value_t=torch.tensor([0.0], dtype=torch.float32))
        return g.op("NonMaxSuppression", boxes, scores, max_out, iou, floor, center_point_box_i=0)


class DeployStep(nn.Module):
    """One streaming step of a zoo detector, with preprocessing and box decoding inside.

    `forward(frame [B, H, W], *past) -> (boxes [B, K, 4], scores [B, K], labels [B, K], *features)`:

    - `frame`: letterboxed gray pixels 0..255 (float32; the letterbox stays outside the graph:
      Pillow's antialiased bicubic resize has no ONNX equivalent); the graph repeats it to 3
      channels and applies /255 and the ImageNet mean/std, as `mistd.data.transforms.normalize`;
    - `past` (models with T > 1 only): per feature level, the features of the window's T - 1
      earlier frames `[B, T-1, ...]`, oldest first, as earlier steps returned them;
    - `boxes` xyxy in input pixels, `scores` = objectness x best class probability, `labels` the
      best class, for the K = `top_k` highest-scored anchors by descending score (fewer anchors
      than K are padded with score 0);
    - `features` (T > 1 only): the new frame's features `[B, ...]`, to pass as `past` later.

    With `nms_iou`, one more output `selected [S, 3]` (batch, class, candidate index) from ONNX
    `NonMaxSuppression` over the K candidates, class-aware.
    """

    def __init__(self, model: nn.Module, top_k: int = DEFAULT_TOP_K, nms_iou: float | None = None):
        super().__init__()
        from mistd.data.transforms import IMAGENET_MEAN, IMAGENET_STD

        self.encoder, self.head = streaming_parts(model)
        self.num_frames = int(model.num_frames)
        self.strides = list(model.strides)
        self.num_classes = int(model.head.num_classes)
        self.top_k = int(top_k)
        self.nms_iou = nms_iou
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    def forward(self, frame: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = (frame.unsqueeze(1) / 255.0 - self.mean) / self.std
        features = tuple(self.encoder(x))
        if self.num_frames == 1:
            windows = [f.unsqueeze(1) for f in features]
        else:
            windows = [
                torch.cat([p, f.unsqueeze(1)], dim=1) for p, f in zip(past, features, strict=True)
            ]
        decoded = decode_outputs(list(self.head(*windows)), self.strides)  # [B, A, 5 + C]
        class_prob, labels = decoded[..., 5:].max(dim=-1)
        scores = decoded[..., 4] * class_prob
        xy, wh = decoded[..., :2], decoded[..., 2:4]
        boxes = torch.cat([xy - wh / 2, xy + wh / 2], dim=-1)
        # pad with K zero-score anchors so that top-k never asks for more than there are
        # (the anchor count follows the input size; a dynamic-size graph cannot take min(K, A))
        b, k = scores.shape[0], self.top_k
        scores = torch.cat([scores, scores.new_zeros(b, k)], dim=1)
        boxes = torch.cat([boxes, boxes.new_zeros(b, k, 4)], dim=1)
        labels = torch.cat([labels, labels.new_zeros(b, k)], dim=1)
        scores, top = scores.topk(k, dim=1)
        boxes = boxes.gather(1, top.unsqueeze(-1).expand(b, k, 4))
        labels = labels.gather(1, top)
        outputs: tuple[torch.Tensor, ...] = (boxes, scores, labels)
        if self.nms_iou is not None:
            classes = torch.arange(self.num_classes, device=labels.device).view(1, -1, 1)
            per_class = torch.where(labels.unsqueeze(1) == classes, scores.unsqueeze(1), 0.0)
            outputs += (_NMS.apply(boxes, per_class, self.nms_iou),)
        if self.num_frames > 1:
            outputs += features
        return outputs


class BlobDeployStep(nn.Module):
    """The deployable graph of a dense model (`decodes_blobs`): `forward(frame [B, H, W]) ->
    (prob [B, C, H, W], score [B, C, H, W])`, its `blob_maps` of the letterboxed gray frame
    (normalised in the graph as `DeployStep` does: its first channel, the one the model reads);
    `mistd.boxes.blob_detections` turns them into boxes outside the graph (connected components
    have no ONNX operator)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        from mistd.data.transforms import IMAGENET_MEAN, IMAGENET_STD

        self.model = model
        self.num_frames = 1
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    def forward(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gray = (frame.unsqueeze(1) / 255.0 - self.mean[:, :1]) / self.std[:, :1]  # [B, 1, H, W]
        return self.model.blob_maps(self.model.logits(gray))


def deploy_metadata(
    model: nn.Module,
    input_size: tuple[int, int],
    dynamic: bool,
    class_names: list[str] | None,
    top_k: int,
    nms_iou: float | None,
) -> dict[str, str]:
    """The `mistd.*` metadata of a deployable step graph (what `OnnxDetector` needs)."""
    from mistd.data.transforms import IMAGENET_MEAN, IMAGENET_STD, PAD_VALUE

    num_classes = int(model.num_classes)
    names = list(class_names) if class_names else [f"class{i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise InputError(f"{len(names)} class names for a model of {num_classes} classes")
    preprocess = {
        "channels": "gray repeated to 3 (inside the graph)",
        "bit_depth": "uint8 as is; uint16 x 255/65535 (fixed factor, not per frame), then float",
        "resize": "letterbox: scale = min(w/W, h/H), size (int(W*scale), int(H*scale)), "
        "Pillow bicubic (8-bit frames in mode L, 16-bit in mode F clipped to 0..255), pasted at "
        "((w-nw)//2, (h-nh)//2)",
        "pad_value": PAD_VALUE,
        "scale": "1/255 (inside the graph)",
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "normalised_in_graph": True,
    }
    meta = _metadata(model, "step", input_size, dynamic)
    meta.update(
        {
            "mistd.format": DEPLOY_FORMAT,
            "mistd.names": json.dumps(names),
            "mistd.size_multiple": "32",
            "mistd.preprocess": json.dumps(preprocess),
            "mistd.top_k": str(int(top_k)),
            "mistd.nms_iou": "" if nms_iou is None else str(float(nms_iou)),
            "mistd.precision": "fp32",
        }
    )
    if decodes_blobs(model):
        meta["mistd.decoder"] = "blobs"
        meta["mistd.blobs"] = json.dumps(
            {"mask_level": float(model.mask_level), "max_detections": int(model.max_detections)}
        )
    return meta


@torch.no_grad()
def export_deploy_onnx(
    model: nn.Module,
    path: str | Path,
    input_size: tuple[int, int],
    *,
    class_names: list[str] | None = None,
    dynamic: bool = False,
    top_k: int = DEFAULT_TOP_K,
    nms_iou: float | None = None,
    thresholds: dict[str, float] | None = None,
    frame_check: dict | None = None,
) -> Path:
    """Export `DeployStep(model)` (see its docstring) to `path`, with the metadata
    `mistd.inference.onnx_runtime.OnnxDetector` reads: names, num_frames, frame_stride,
    input_size, min_input_size, size_multiple, strides, preprocess (JSON), top_k, nms_iou, and
    `thresholds` (the weights' display / operating / track scores, `mistd.thresholds`) and
    `frame_check` (`mistd.frame_check`) when given.

    A dense model (`decodes_blobs`) gets `BlobDeployStep`'s graph instead: outputs `prob` and
    `score` maps, metadata `decoder` = `blobs` (`top_k`, `nms_iou` unused).

    Raises InputError for an `input_size` that cannot be exported (`check_export_size`), a model
    without streaming parts, or class names that do not match the model.
    """
    check_export_size(model, input_size, deploy=True)
    model = model.eval()
    if decodes_blobs(model):
        meta = deploy_metadata(model, input_size, dynamic, class_names, top_k, None)
        meta["mistd.feature_strides"] = "[]"
        _add_settings(meta, thresholds, frame_check)
        axes = {"frame": {0: "batch", **_spatial_axes(dynamic, 1)}}
        axes.update({n: {0: "batch", **_spatial_axes(dynamic, 2)} for n in ("prob", "score")})
        frame = torch.rand(1, *input_size) * 255
        step = BlobDeployStep(model).eval()
        return _export(step, (frame,), Path(path), ["frame"], ["prob", "score"], axes, meta)
    step = DeployStep(model, top_k=top_k, nms_iou=nms_iou).eval()
    h, w = input_size
    frame = torch.rand(1, h, w) * 255
    t = step.num_frames
    past: tuple[torch.Tensor, ...] = ()
    feature_names: list[str] = []
    feature_strides: list[int] = []
    if t > 1:
        features = step.encoder((frame.unsqueeze(1) / 255.0 - step.mean) / step.std)
        past = tuple(f.unsqueeze(1).repeat(1, t - 1, *([1] * (f.dim() - 1))) for f in features)
        feature_names = [f"feature_{i}" for i in range(len(features))]
        feature_strides = [h // int(f.shape[-2]) for f in features]
    past_names = [f"past_{i}" for i in range(len(past))]
    outputs = ["boxes", "scores", "labels"]
    if nms_iou is not None:
        outputs.append("selected")
    outputs += feature_names
    axes = {"frame": {0: "batch", **_spatial_axes(dynamic, 1)}}
    # feature maps are smaller than the frame: their sizes get names of their own
    level_axes = [{2: f"height_{i}", 3: f"width_{i}"} if dynamic else {} for i in range(len(past))]
    for name, level in zip(past_names, level_axes, strict=True):
        axes[name] = {0: "batch", **{k + 1: v for k, v in level.items()}}
    axes.update({name: {0: "batch"} for name in ("boxes", "scores", "labels")})
    if nms_iou is not None:
        axes["selected"] = {0: "selected"}
    for name, level in zip(feature_names, level_axes, strict=True):
        axes[name] = {0: "batch", **level}
    meta = deploy_metadata(model, input_size, dynamic, class_names, top_k, nms_iou)
    meta["mistd.feature_strides"] = json.dumps(feature_strides)
    _add_settings(meta, thresholds, frame_check)
    return _export(step, (frame, *past), Path(path), ["frame", *past_names], outputs, axes, meta)


def _add_settings(meta: dict[str, str], thresholds: dict | None, frame_check: dict | None) -> None:
    """The weights' run-time settings into a deployable graph's metadata, where given."""
    if thresholds is not None:
        meta["mistd.thresholds"] = json.dumps({k: float(v) for k, v in thresholds.items()})
    if frame_check is not None:
        meta["mistd.frame_check"] = json.dumps(frame_check)
