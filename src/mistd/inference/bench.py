"""Latency of one model in clip mode, streaming mode and onnxruntime streaming, side by side.

`benchmark(model, input_size)` times, in one process and on the same frames:
- `clip`: `model(clip [1, T, 3, H, W])` per frame (what a clip detector does for every frame);
- `stream`: `VideoPredictor.push_torch_raw(frame)` (one per-frame encoder pass + the clip head);
- `onnx_stream`: the same with the two exported graphs run by onnxruntime (CPU EP);
- optionally bf16 autocast and channels-last variants of `stream`.
Each is warmed up, then the median of `repeats` calls is reported in milliseconds (the CPU may be
shared: compare the ratios of one run, not numbers across runs). Every variant's raw head maps on
the last window are compared with clip mode's (relative L2 error), so a speed-up never hides a
change of outputs.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mistd.inference.streaming import streaming_parts
from mistd.inference.video_predictor import VideoPredictor, set_channels_last
from mistd.models.complexity import count_macs, count_parameters


def median_ms(run: Callable[[], Any], repeats: int, warmup: int) -> float:
    """Median wall time of `run()` in ms over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def relative_error(outputs: list[torch.Tensor], expected: list[torch.Tensor]) -> float:
    """Largest relative L2 error over the head levels."""
    return max(
        float((o.float() - e).norm() / e.norm().clamp(min=1e-12))
        for o, e in zip(outputs, expected, strict=True)
    )


def _time_stream(
    predictor: VideoPredictor, frames: torch.Tensor, repeats: int, warmup: int
) -> tuple[float, list[torch.Tensor]]:
    """Fill the window, then time single pushes; returns (median ms, last outputs)."""
    predictor.reset()
    t = predictor.num_frames
    for frame in frames[: t + warmup]:
        predictor.push_torch_raw(frame)
    timed = frames[t + warmup :]
    times, outputs = [], []
    for frame in timed:
        start = time.perf_counter()
        outputs = predictor.push_torch_raw(frame)
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times), outputs


@torch.inference_mode()
def stream_macs(model: nn.Module, input_size: tuple[int, int]) -> int:
    """Multiply-accumulates per streamed frame: one encoder pass + one clip head."""
    encoder, head = streaming_parts(model)
    frame = torch.randn(1, 3, *input_size)
    features = encoder(frame)
    stacked = tuple(torch.stack([f] * model.num_frames, dim=1) for f in features)
    return count_macs(encoder, frame) + count_macs(head, stacked)


def benchmark(
    model: nn.Module,
    input_size: tuple[int, int],
    *,
    repeats: int = 10,
    warmup: int = 2,
    onnx: bool = True,
    precisions: tuple[str, ...] = (),
    channels_last: bool = False,
    threads: int | None = None,
    macs: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Measure `model` (see module docstring). Returns a dict with `params`, `gmacs` (clip
    forward), `stream_gmacs` (per frame), `clip_ms`, `stream_ms`, `onnx_stream_ms` (None without
    onnx), `stream_speedup`, `onnx_speedup`, `*_rel_error` and the settings."""
    if threads is not None:
        torch.set_num_threads(threads)
    model = model.eval()
    t = model.num_frames
    h, w = input_size
    generator = torch.Generator().manual_seed(0)
    frames = torch.randn(t + warmup + repeats, 3, h, w, generator=generator)
    last_clip = frames[-t:][None]
    result: dict[str, Any] = {
        "model": type(model).__name__,
        "input_size": [h, w],
        "num_frames": t,
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "params": count_parameters(model),
    }
    with torch.inference_mode():
        if macs:
            log("counting MACs")
            result["gmacs"] = count_macs(model, last_clip) / 1e9
            result["stream_gmacs"] = stream_macs(model, input_size) / 1e9
        log("clip mode")
        result["clip_ms"] = median_ms(lambda: model(last_clip), repeats, warmup)
        expected = [o.float() for o in model(last_clip)]

    log("streaming (torch)")
    predictor = VideoPredictor(model, input_size=input_size)
    result["stream_ms"], outputs = _time_stream(predictor, frames, repeats, warmup)
    result["stream_rel_error"] = relative_error(outputs, expected)

    for precision in precisions:
        if precision == "fp32":
            continue
        log(f"streaming (torch, {precision})")
        predictor = VideoPredictor(model, input_size=input_size, precision=precision)
        ms, outputs = _time_stream(predictor, frames, repeats, warmup)
        result[f"stream_{precision}_ms"] = ms
        result[f"stream_{precision}_rel_error"] = relative_error(outputs, expected)

    if channels_last:
        log("streaming (torch, channels_last)")
        predictor = VideoPredictor(model, input_size=input_size, channels_last=True)
        ms, outputs = _time_stream(predictor, frames, repeats, warmup)
        set_channels_last(model, False)
        result["stream_channels_last_ms"] = ms
        result["stream_channels_last_rel_error"] = relative_error(outputs, expected)

    result["onnx_stream_ms"] = None
    if onnx:
        from mistd.inference.export import export_streaming_onnx
        from mistd.inference.onnx_backend import OnnxStreamingParts

        with tempfile.TemporaryDirectory() as tmp:
            log("exporting ONNX (frame + clip graphs)")
            start = time.perf_counter()
            export_streaming_onnx(model, Path(tmp) / "model.onnx", input_size)
            result["onnx_export_s"] = time.perf_counter() - start
            parts = OnnxStreamingParts.from_export(
                Path(tmp) / "model.onnx", threads=torch.get_num_threads()
            )
            log("streaming (onnxruntime)")
            predictor = VideoPredictor(model, input_size=input_size, parts=parts)
            result["onnx_stream_ms"], outputs = _time_stream(predictor, frames, repeats, warmup)
            result["onnx_stream_rel_error"] = relative_error(outputs, expected)

    result["stream_speedup"] = result["clip_ms"] / result["stream_ms"]
    if result["onnx_stream_ms"] is not None:
        result["onnx_speedup"] = result["clip_ms"] / result["onnx_stream_ms"]
    return result


def format_table(result: dict[str, Any]) -> str:
    """A one-screen table of a `benchmark` result."""
    h, w = result["input_size"]
    lines = [
        f"{result['model']} {h}x{w}, T={result['num_frames']}, {result['threads']} threads, "
        f"median of {result['repeats']}",
        f"parameters: {result['params']:,}",
    ]
    if "gmacs" in result:
        lines.append(
            f"GMAC: clip forward {result['gmacs']:.1f}, streaming per frame "
            f"{result['stream_gmacs']:.1f}"
        )
    lines.append(f"{'mode':<28} {'ms/frame':>10} {'vs clip':>8} {'rel. error':>11}")
    rows = [("clip (torch)", result["clip_ms"], None)]
    rows.append(("streaming (torch)", result["stream_ms"], result["stream_rel_error"]))
    for key in sorted(result):
        if key.startswith("stream_") and key.endswith("_ms") and key != "stream_ms":
            variant = key[len("stream_") : -len("_ms")]
            rows.append(
                (f"streaming (torch, {variant})", result[key], result[f"stream_{variant}_rel_error"])
            )
    if result.get("onnx_stream_ms") is not None:
        rows.append(
            ("streaming (onnxruntime)", result["onnx_stream_ms"], result["onnx_stream_rel_error"])
        )
    for name, ms, error in rows:
        ratio = result["clip_ms"] / ms
        err = "-" if error is None else f"{error:.1e}"
        lines.append(f"{name:<28} {ms:>10.1f} {ratio:>7.2f}x {err:>11}")
    return "\n".join(lines)
