"""onnxruntime backend for graphs written by `mistd.inference.export`.

    session = OnnxClipModel("chal.onnx")                 # clip forward
    maps = session(clip)                                 # list of torch tensors, = model(clip)
    encoder, head = OnnxStreamingParts.from_export("chal.onnx")   # chal.frame/.clip.onnx
    predictor = VideoPredictor(model, input_size=(512, 512), parts=(encoder, head))

Both take and return torch tensors (converted through numpy, CPU), so they drop in where the
torch modules run. The CPU execution provider is used unless `providers` says otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mistd.errors import InputError, short


def _session(path: str | Path, providers: list[str] | None, threads: int | None):
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise InputError("ONNX file not found (run `mistd export` first)", path)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(
            str(path), sess_options=options, providers=providers or ["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
        first = (str(exc).strip().splitlines() or [""])[0]
        raise InputError(
            f"not an ONNX graph onnxruntime can load ({short(first, 160)}): export one with "
            "`mistd export`",
            path,
        ) from None


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The `mistd.*` metadata of an exported graph (parsed: ints, lists, bools)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise InputError(
            f"not an ONNX graph ({type(exc).__name__}): export one with `mistd export`", path
        ) from None
    raw = {p.key: p.value for p in proto.metadata_props if p.key.startswith("mistd.")}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.removeprefix("mistd.")
        if name in ("input_size", "min_input_size", "strides"):
            out[name] = json.loads(value)
        elif name in ("num_frames", "frame_stride"):
            out[name] = int(value)
        elif name == "dynamic_size":
            out[name] = value == "True"
        else:
            out[name] = value
    return out


class _OnnxGraph:
    """One onnxruntime session with torch-in / torch-out calls."""

    def __init__(
        self, path: str | Path, providers: list[str] | None = None, threads: int | None = None
    ):
        self.path = Path(path)
        self.session = _session(path, providers, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.metadata = read_metadata(path)

    def run(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        if len(inputs) != len(self.input_names):
            raise ValueError(
                f"{self.path.name} takes {len(self.input_names)} inputs, got {len(inputs)}"
            )
        feed = {
            name: np.ascontiguousarray(x.detach().cpu().float().numpy())
            for name, x in zip(self.input_names, inputs, strict=True)
        }
        return [torch.from_numpy(o) for o in self.session.run(self.output_names, feed)]

    def check_input_size(self, images: torch.Tensor) -> None:
        """Raise InputError unless the graph was exported for images (`[..., H, W]`) of this size:
        the exported size, or with a dynamic size multiples of 32 of at least `min_input_size`
        (below it CHAL's Swin window would shrink, which the graph does not do; see
        `mistd.inference.export`)."""
        h, w = images.shape[-2:]
        if not self.metadata.get("dynamic_size", False):
            expected = self.metadata.get("input_size")
            if expected is not None and [h, w] != list(expected):
                raise InputError(
                    f"graph exported for {expected[0]}x{expected[1]} inputs, got {h}x{w} "
                    f"(export at --size {h}x{w}, or with --dynamic)",
                    self.path,
                )
            return
        min_h, min_w = self.metadata.get("min_input_size", (32, 32))
        if h % 32 or w % 32 or h < min_h or w < min_w:
            raise InputError(
                f"graph exported for inputs that are multiples of 32 of at least "
                f"{min_h}x{min_w}, got {h}x{w}",
                self.path,
            )


class OnnxClipModel(_OnnxGraph):
    """The exported clip forward: `__call__(clip [B, T, 3, H, W]) -> list of raw head maps`.
    Raises InputError for an (H, W) the graph was not exported for."""

    def __call__(self, clip: torch.Tensor) -> list[torch.Tensor]:
        self.check_input_size(clip)
        return self.run(clip)


class OnnxFrameEncoder(_OnnxGraph):
    """`__call__(frames [N, 3, H, W]) -> tuple of per-frame features`. Raises InputError for an
    (H, W) the graph was not exported for (the clip head's inputs come from here)."""

    def __call__(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self.check_input_size(frames)
        return tuple(self.run(frames))


class OnnxClipHead(_OnnxGraph):
    """`__call__(*features [B, T, ...]) -> list of raw head maps`."""

    def __call__(self, *features: torch.Tensor) -> list[torch.Tensor]:
        return self.run(*features)


class OnnxStreamingParts:
    """The two streaming graphs of an export (`<stem>.frame.onnx`, `<stem>.clip.onnx`)."""

    @staticmethod
    def paths(path: str | Path) -> tuple[Path, Path]:
        """Streaming graph paths beside the clip graph `path` (`model.onnx`)."""
        path = Path(path)
        stem = path.name[:-5] if path.name.endswith(".onnx") else path.name
        return path.with_name(f"{stem}.frame.onnx"), path.with_name(f"{stem}.clip.onnx")

    @classmethod
    def from_export(
        cls, path: str | Path, providers: list[str] | None = None, threads: int | None = None
    ) -> tuple[OnnxFrameEncoder, OnnxClipHead]:
        """`(frame_encoder, clip_head)` for `VideoPredictor(parts=...)`."""
        frame_path, clip_path = cls.paths(path)
        return (
            OnnxFrameEncoder(frame_path, providers, threads),
            OnnxClipHead(clip_path, providers, threads),
        )


@torch.no_grad()
def check_deploy_graph(
    model: torch.nn.Module, path: str | Path, input_size: tuple[int, int], top_k: int = 1000
) -> float:
    """Worst relative L2 error between a deployable step graph (`export_deploy_onnx`) run by
    onnxruntime and `DeployStep(model)` in torch, on a batch of 2 random frames and windows:
    over the top scores, the boxes of the 10 best candidates (unless their scores tie) and the
    new frame's features; a dense model's graph (`BlobDeployStep`): its score map (relative) and
    its probability map (absolute: on random frames it is ~1e-7 everywhere, where a relative
    error measures float rounding)."""
    from mistd.inference.export import BlobDeployStep, DeployStep, decodes_blobs

    session = _session(path, None, None)
    generator = torch.Generator().manual_seed(0)
    frame = torch.rand(2, *input_size, generator=generator) * 255
    if decodes_blobs(model):
        prob, score = BlobDeployStep(model).eval()(frame)
        got_prob, got_score = session.run(["prob", "score"], {"frame": frame.numpy()})
        relative = torch.linalg.vector_norm(torch.from_numpy(got_score) - score) / score.norm()
        return max(float(relative), float((torch.from_numpy(got_prob) - prob).abs().max()))
    step = DeployStep(model, top_k=top_k).eval()
    names = [i.name for i in session.get_inputs()]
    past = []
    if step.num_frames > 1:
        earlier = torch.rand(2, 1, *input_size, generator=generator)
        features = step.encoder((earlier - step.mean) / step.std)
        past = [
            f.unsqueeze(1).repeat(1, step.num_frames - 1, *([1] * (f.dim() - 1))) for f in features
        ]
    expected = step(frame, *past)
    feed = {n: x.numpy() for n, x in zip(names, [frame, *past], strict=True)}
    outputs = dict(
        zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True)
    )

    def error(a: np.ndarray, b: torch.Tensor) -> float:
        b = b.float()
        return float(
            torch.linalg.vector_norm(torch.from_numpy(a).float() - b) / b.norm().clamp(min=1e-12)
        )

    worst = error(outputs["scores"], expected[1])
    # boxes of candidates with tied scores may come in another order: compare the boxes in order
    # only where the ten best scores are well apart
    scores = expected[1][:, :11]
    if bool((scores[:, :-1] - scores[:, 1:] > 1e-4 * scores[:, :1]).all()):
        worst = max(worst, error(outputs["boxes"][:, :10], expected[0][:, :10]))
    for i, f in enumerate(expected[len(expected) - len(past) :] if past else []):
        worst = max(worst, error(outputs[f"feature_{i}"], f))
    return worst
