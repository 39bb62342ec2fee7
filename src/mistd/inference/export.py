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
        "mistd.strides": json.dumps(list(model.strides)),
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


def check_export_size(model: nn.Module, input_size: tuple[int, int]) -> None:
    """Raise InputError unless `input_size` (H, W) can be exported: positive multiples of 32, at
    least `model.min_export_size()` (see module docstring)."""
    h, w = input_size
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise InputError(f"export size must be positive multiples of 32, got {h}x{w}")
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
    path = Path(path)
    stem = path.name[:-5] if path.name.endswith(".onnx") else path.name
    frame_path = path.with_name(f"{stem}.frame.onnx")
    clip_path = path.with_name(f"{stem}.clip.onnx")
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
