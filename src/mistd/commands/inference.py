"""CLI commands: `mistd export` (ONNX) and `mistd bench` (clip vs streaming vs onnxruntime)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

EXPORT_HELP = """Export a detector to ONNX: the clip graph and the two streaming graphs.

\b
Examples:
  mistd export --weights runs/train/exp/weights/best.pt --format onnx
  mistd export --weights chal.pt --size 256x256 --dynamic --out exports/chal.onnx
  mistd export --model chal --size 512          # zoo model with random weights

Writes <out> (default runs/export/<name>/model.onnx): the clip forward (input `clip`
[B, T, 3, H, W] -> raw head maps `maps_i`), and beside it model.frame.onnx (per-frame encoder,
input `frames` [N, 3, H, W]) and model.clip.onnx (clip head on the cached window), which
`mistd detect --backend onnxruntime` and `mistd.inference.onnx_backend` run. The batch is
dynamic; the spatial size is fixed to --size (default: the model's input size) unless --dynamic
(then any multiple of 32 of at least 64 works).
"""

BENCH_HELP = """Parameters, GMACs and per-frame latency: clip, streaming, onnxruntime streaming.

\b
Examples:
  mistd bench --model chal --size 512
  mistd bench --model chal --size 256 --precision bf16 --channels-last --json bench.json
  mistd bench --weights runs/train/exp/weights/best.pt --repeats 20

All modes run in one process on the same frames (warm-up, then the median of --repeats); each
streaming variant's outputs are compared with clip mode's (relative L2 error). On a shared CPU
compare the ratios of one run. --json writes params, gmacs, clip_ms, stream_ms, onnx_stream_ms
and more.
"""


def parse_size(text: str | None) -> tuple[int, int] | None:
    """`512` or `512x640` (HxW) -> (h, w); InputError unless positive multiples of 32."""
    from mistd.errors import InputError

    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", text)
    if not match:
        raise InputError(f"--size: expected H or HxW (e.g. 512 or 384x640), got '{text}'")
    h = int(match.group(1))
    w = int(match.group(2) or h)
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise InputError(f"--size: H and W must be positive multiples of 32, got {h}x{w}")
    return h, w


def load_model(
    model_name: str | None,
    weights: str | None,
    size: tuple[int, int] | None,
    num_frames: int | None = None,
):
    """`(nn.Module in eval mode, input_size, name)` from `--model NAME` (random weights) or
    `--weights W` (exactly one)."""
    from mistd.errors import InputError

    if (model_name is None) == (weights is None):
        raise InputError("give exactly one of --model NAME (random weights) or --weights FILE")
    if weights is not None:
        from mistd.inference.detector import load_detector

        if num_frames is not None:
            raise InputError("--frames applies to --model only (weights fix the clip length)")
        detector = load_detector(weights)
        return detector.model.eval(), size or detector.input_size, Path(weights).stem
    from mistd.models.zoo import build_model

    overrides: dict = {}
    if size is not None:
        overrides["input_size"] = list(size)
    if num_frames is not None:
        overrides["num_frames"] = num_frames
    model, cfg = build_model(model_name, overrides)
    return model.eval(), tuple(cfg.input_size), model_name


def register(app: typer.Typer) -> None:
    """Add `export` and `bench` to `app`."""

    @app.command("export", help=EXPORT_HELP)
    def export(
        weights: str | None = typer.Option(None, "--weights", help="Trained weights file."),
        model: str | None = typer.Option(None, "--model", help="Zoo model (random weights)."),
        format: str = typer.Option("onnx", "--format", help="Export format (onnx)."),
        size: str | None = typer.Option(None, "--size", help="Input size H or HxW."),
        dynamic: bool = typer.Option(False, "--dynamic", help="Dynamic H and W (batch always)."),
        streaming: bool = typer.Option(
            True, "--streaming/--no-streaming", help="Also write the two streaming graphs."
        ),
        out: Path | None = typer.Option(None, "--out", help="Clip graph path (.onnx)."),
        check: bool = typer.Option(
            True, "--check/--no-check", help="Run the export with onnxruntime and compare."
        ),
    ) -> None:
        import torch

        from mistd.errors import InputError
        from mistd.inference.export import export_clip_onnx, export_streaming_onnx
        from mistd.inference.streaming import supports_streaming
        from mistd.io import increment_path

        if format != "onnx":
            raise InputError(f"--format: only 'onnx' is supported, got '{format}'")
        net, input_size, name = load_model(model, weights, parse_size(size))
        if out is None:
            out = increment_path(Path("runs/export"), name) / "model.onnx"
        elif out.suffix != ".onnx":
            raise InputError("--out must end with .onnx", out)
        path = export_clip_onnx(net, out, input_size, dynamic=dynamic)
        typer.echo(f"clip graph:    {path}")
        paths = [path]
        if streaming and supports_streaming(net):
            frame_path, clip_path = export_streaming_onnx(net, out, input_size, dynamic=dynamic)
            typer.echo(f"frame graph:   {frame_path}")
            typer.echo(f"clip head:     {clip_path}")
            paths += [frame_path, clip_path]
        if check:
            from mistd.inference.bench import relative_error
            from mistd.inference.onnx_backend import OnnxClipModel

            clip = torch.randn(2, net.num_frames, 3, *input_size)
            with torch.inference_mode():
                expected = net(clip)
            error = relative_error(OnnxClipModel(path)(clip), expected)
            typer.echo(f"onnxruntime vs torch (batch 2): relative error {error:.2e}")
            if error > 1e-4:
                raise InputError(f"exported graph differs from torch (relative error {error:.2e})")
        mode = "dynamic H, W" if dynamic else f"fixed {input_size[0]}x{input_size[1]}"
        typer.echo(f"dynamic batch, {mode}, T={net.num_frames}")

    @app.command("bench", help=BENCH_HELP)
    def bench(
        model: str | None = typer.Option(None, "--model", help="Zoo model (random weights)."),
        weights: str | None = typer.Option(None, "--weights", help="Trained weights file."),
        size: str = typer.Option("512", "--size", help="Input size H or HxW."),
        frames: int | None = typer.Option(None, "--frames", help="Clip length T (--model)."),
        repeats: int = typer.Option(10, "--repeats", help="Timed calls per mode (median)."),
        warmup: int = typer.Option(2, "--warmup", help="Untimed calls first."),
        threads: int | None = typer.Option(None, "--threads", help="CPU threads (torch, ORT)."),
        onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Also onnxruntime streaming."),
        precision: str = typer.Option(
            "fp32", "--precision", help="fp32, or bf16 to also time bf16 autocast (opt-in)."
        ),
        channels_last: bool = typer.Option(
            False, "--channels-last", help="Also time channels-last streaming."
        ),
        macs: bool = typer.Option(True, "--macs/--no-macs", help="Count GMACs."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the results here."),
    ) -> None:
        from mistd.errors import InputError
        from mistd.inference.bench import benchmark, format_table
        from mistd.io import write_json_atomic

        if precision not in ("fp32", "bf16"):
            raise InputError(f"--precision: expected fp32 or bf16, got '{precision}'")
        if repeats < 1 or warmup < 0:
            raise InputError("--repeats must be >= 1 and --warmup >= 0")
        net, input_size, name = load_model(model, weights, parse_size(size), frames)
        result = benchmark(
            net,
            input_size,
            repeats=repeats,
            warmup=warmup,
            onnx=onnx,
            precisions=(precision,),
            channels_last=channels_last,
            threads=threads,
            macs=macs,
            log=lambda msg: typer.echo(f"... {msg}", err=True),
        )
        result["name"] = name
        typer.echo(format_table(result))
        if json_out is not None:
            write_json_atomic(json_out, result)
            typer.echo(f"json: {json_out}")
