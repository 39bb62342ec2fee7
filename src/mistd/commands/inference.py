"""CLI commands: `mistd export` (ONNX) and `mistd bench` (clip vs streaming vs onnxruntime)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

EXPORT_HELP = """Export a detector to ONNX: one deployable graph (default), or the raw graphs.

\b
Examples:
  mistd export --weights yolox-ir-s                  # runs/export/yolox-ir-s/model.onnx
  mistd export --weights chal-ir-s --nms --out chal.onnx
  mistd export --weights mf-residual-ir-s --precision int8 --calibration drone_ir/:train
  mistd export --weights chal.pt --size 256x256 --dynamic --raw --out exports/chal.onnx

Writes <out> (default runs/export/<name>/model.onnx), a graph that takes one letterboxed frame
(float32 0..255, [B, H, W]) and, for multi-frame models, the cached features of the window's
earlier frames, and returns the frame's top --top-k candidates (boxes xyxy in input pixels,
scores, labels; with --nms also the NMS selection) and its own features. Class names, clip length,
frame stride, input size rule and preprocessing are in its metadata. Run it with
`mistd detect --weights model.onnx` or, without torch, mistd.inference.onnx_runtime.OnnxDetector.
--precision int8 quantizes it (onnxruntime static QDQ, int8 per-channel weights, uint8
activations; the backbone's stem and dark2 stay fp32) with activation ranges from streaming the
--calibration frames through it: a data set, PATH:SELECT for a split (drone_ir/:train) or, for a
folder of images, a .txt of their names (sirst_v2/images:train.txt); repeatable; a few hundred
frames of the training sources, never the data you score. The calibration set, the method and
the nodes kept in fp32 go into the metadata (mistd.calibration).
--raw writes the raw graphs instead: the clip forward (input `clip` [B, T, 3, H, W] -> raw head
maps), model.frame.onnx and model.clip.onnx (what `--backend onnxruntime` runs).
The batch is dynamic; the spatial size is fixed to --size (default: the model's input size)
unless --dynamic (then any multiple of 32 of at least the model's minimum).
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
    from mistd.config import check_input_size

    return check_input_size((h, w), "--size")


def load_model(
    model_name: str | None,
    weights: str | None,
    size: tuple[int, int] | None,
    num_frames: int | None = None,
):
    """`(nn.Module in eval mode, input_size, name, class names)` from `--model NAME` (random
    weights; classes named class0 ..) or `--weights W` (exactly one)."""
    from mistd.errors import InputError

    if (model_name is None) == (weights is None):
        raise InputError("give exactly one of --model NAME (random weights) or --weights FILE")
    if weights is not None:
        from mistd.inference.detector import load_detector

        if num_frames is not None:
            raise InputError("--frames applies to --model only (weights fix the clip length)")
        detector = load_detector(weights)
        names = (detector.config.get("data") or {}).get("class_names")
        num_classes = int(detector.model.num_classes)
        names = list(names) if names else [f"class{i}" for i in range(num_classes)]
        return detector.model.eval(), size or detector.input_size, Path(weights).stem, names
    from mistd.models.zoo import build_model

    overrides: dict = {}
    if size is not None:
        overrides["input_size"] = list(size)
    if num_frames is not None:
        overrides["num_frames"] = num_frames
    model, cfg = build_model(model_name, overrides)
    names = [f"class{i}" for i in range(int(model.num_classes))]
    return model.eval(), tuple(cfg.input_size), model_name, names


def weights_settings(weights: str | None) -> dict[str, dict]:
    """The run-time settings of `--weights` for the graph's metadata: `thresholds` (display /
    operating / track, `mistd.thresholds`) and `frame_check` (`mistd.frame_check`); empty for a
    `--model` with random weights."""
    if weights is None:
        return {}
    from mistd.weights import read_weights

    read = read_weights(weights)
    return {"thresholds": read.thresholds.to_dict(), "frame_check": read.frame_check.to_dict()}


def register(app: typer.Typer) -> None:
    """Add `export` and `bench` to `app`."""

    @app.command("export", help=EXPORT_HELP)
    def export(
        weights: str | None = typer.Option(None, "--weights", help="Trained weights file."),
        model: str | None = typer.Option(None, "--model", help="Zoo model (random weights)."),
        format: str = typer.Option("onnx", "--format", help="Export format (onnx)."),
        size: str | None = typer.Option(None, "--size", help="Input size H or HxW."),
        dynamic: bool = typer.Option(False, "--dynamic", help="Dynamic H and W (batch always)."),
        raw: bool = typer.Option(False, "--raw", help="Raw head-map graphs (clip + streaming)."),
        streaming: bool = typer.Option(
            True, "--streaming/--no-streaming", help="--raw: also the two streaming graphs."
        ),
        nms: bool = typer.Option(False, "--nms/--no-nms", help="NMS inside the graph."),
        nms_iou: float = typer.Option(0.65, "--nms-iou", help="IoU of the in-graph NMS."),
        top_k: int = typer.Option(1000, "--top-k", help="Candidates the graph returns."),
        precision: str = typer.Option("fp32", "--precision", help="fp32 or int8 (not bf16)."),
        calibration: list[str] = typer.Option(
            None, "--calibration", help="int8: calibration data (repeatable; see help)."
        ),
        calibration_frames: int = typer.Option(
            300, "--calibration-frames", help="int8: frames to calibrate on."
        ),
        keep_fp32: list[str] = typer.Option(
            None,
            "--keep-fp32",
            help="int8: node-name substrings left in fp32 (repeatable; default the weights' own "
            "settings, else the backbone's stem and dark2; 'none' quantizes every layer).",
        ),
        out: Path | None = typer.Option(None, "--out", help="Graph path (.onnx)."),
        check: bool = typer.Option(
            True, "--check/--no-check", help="Run the export with onnxruntime and compare."
        ),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="Replace existing files at --out (--raw: its .frame/.clip)."
        ),
    ) -> None:
        import torch

        from mistd.errors import InputError
        from mistd.inference.export import (
            export_clip_onnx,
            export_deploy_onnx,
            export_streaming_onnx,
            streaming_onnx_paths,
        )
        from mistd.inference.streaming import supports_streaming
        from mistd.io import check_overwrite, increment_path

        if format != "onnx":
            raise InputError(f"--format: only 'onnx' is supported, got '{format}'")
        if precision == "bf16":
            raise InputError(
                "--precision bf16: onnxruntime's CPU execution provider has no bf16 kernels "
                "(ONNX Conv takes no bf16 at opset 17, MatMul has no bf16 CPU kernel): export "
                "int8, or run bf16 on the torch path (`mistd detect --precision bf16`)"
            )
        if precision not in ("fp32", "int8"):
            raise InputError(
                f"--precision: expected fp32, int8 (or bf16: see help), got '{precision}'"
            )
        if top_k < 1:
            raise InputError(f"--top-k must be >= 1, got {top_k}")
        if raw and (precision != "fp32" or nms):
            raise InputError("--raw graphs are fp32 without NMS (drop --precision / --nms)")
        if out is not None:
            if out.suffix != ".onnx":
                raise InputError("--out must end with .onnx", out)
            for written in (out, *(streaming_onnx_paths(out) if raw else ())):
                check_overwrite(written, overwrite)
        net, input_size, name, class_names = load_model(model, weights, parse_size(size))
        if out is None:
            out = increment_path(Path("runs/export"), name) / "model.onnx"
        if not raw:
            path = export_deploy_onnx(
                net,
                out,
                input_size,
                class_names=class_names,
                dynamic=dynamic,
                top_k=top_k,
                nms_iou=nms_iou if nms else None,
                **weights_settings(weights),
            )
            if check:
                from mistd.inference.onnx_backend import check_deploy_graph

                error = check_deploy_graph(net, path, input_size, top_k=top_k)
                typer.echo(
                    f"onnxruntime vs torch (batch 2, top scores): relative error {error:.2e}"
                )
                if error > 1e-4:
                    raise InputError(
                        f"exported graph differs from torch (relative error {error:.2e})", path
                    )
            if precision == "int8":
                from mistd.inference.quantize import calibration_frames as read_calibration
                from mistd.inference.quantize import int8_settings, quantize_int8

                frames, description = read_calibration(calibration or None, calibration_frames)
                # the weights' own settings (mistd.inference.quantize.MODEL_INT8_SETTINGS)
                # unless --keep-fp32 chooses
                settings_of, settings = int8_settings(weights)
                keep = settings.keep_fp32
                if keep_fp32:
                    keep, settings_of = [k for k in keep_fp32 if k != "none"], None
                quantize_int8(
                    path,
                    path,
                    frames,
                    description,
                    keep_fp32=keep,
                    method=settings.method,
                    settings_of=settings_of,
                )
            typer.echo(f"graph: {path} ({precision}{', NMS inside' if nms else ''})")
            mode = "dynamic H, W" if dynamic else f"fixed {input_size[0]}x{input_size[1]}"
            typer.echo(
                f"dynamic batch, {mode}, T={net.num_frames}, classes: {', '.join(class_names)}"
            )
            return
        path = export_clip_onnx(net, out, input_size, dynamic=dynamic)
        typer.echo(f"clip graph:    {path}")
        if streaming and supports_streaming(net):
            frame_path, clip_path = export_streaming_onnx(net, out, input_size, dynamic=dynamic)
            typer.echo(f"frame graph:   {frame_path}")
            typer.echo(f"clip head:     {clip_path}")
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
        net, input_size, name, _ = load_model(model, weights, parse_size(size), frames)
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
