"""Streaming decomposition of clip detectors: a per-frame encoder and a clip head.

A clip model `forward(clip [B, T, 3, H, W]) -> head maps` is split into two modules:

- `frame_encoder(frames [N, 3, H, W]) -> tuple of per-frame features` (each `[N, ...]`): the
  part that depends on one frame only, computed ONCE per frame and cached while the frame stays
  in the rolling window;
- `clip_head(*features)` with each feature stacked over the window `[B, T, ...]` (oldest first,
  key frame last) `-> head maps`, equal to `model.forward(clip)`.

Both are plain `nn.Module`s with tensor-only signatures, so the same two parts run in torch
(`VideoPredictor`) and export to two ONNX graphs (`mistd.inference.export`).

Each detector family provides its own parts (`ClipDetectorModule.streaming_parts`, defined next
to the model: `mistd.models.detectors.yolox`, `mf_baseline`, `mf_residual`, and
`chal_streaming` for CHAL's streaming SNF); adding a streaming model touches its own module only.
"""

from __future__ import annotations

from torch import nn

from mistd.models.detectors.base import ClipDetectorModule


def streaming_parts(model: nn.Module, fast_snf: bool = True) -> tuple[nn.Module, nn.Module]:
    """`(frame_encoder, clip_head)` of a zoo detector (see module docstring); eval mode only.

    `fast_snf=False` keeps CHAL's SNF as the clip computes it (only backbone + fusion cached).
    Raises TypeError for a model without a streaming decomposition.
    """
    if not supports_streaming(model):
        raise TypeError(f"no streaming decomposition for {type(model).__name__}")
    return model.streaming_parts(fast_snf)  # type: ignore[union-attr]


def supports_streaming(model: nn.Module) -> bool:
    """Whether `model`'s family defines its streaming parts."""
    return (
        isinstance(model, ClipDetectorModule)
        and type(model).streaming_parts is not ClipDetectorModule.streaming_parts
    )


def streamed_shipped_weights() -> list[str]:
    """The shipped weights whose family streams (and so exports to ONNX and quantizes): the
    speed and reduced-precision benchmarks' default models (`tinyseg-gen-s` runs in clip mode)."""
    from mistd.weights import read_weights, shipped_weights

    return [n for n in shipped_weights() if supports_streaming(read_weights(n).build_model())]
