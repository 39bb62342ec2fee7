"""Accuracy of the reduced-precision paths: mAP50 of torch fp32 / bf16 and onnxruntime fp32 / int8
on the real data, with the deltas to fp32.

    python benchmarks/quantization.py                          # every shipped model that streams
    python benchmarks/quantization.py yolox-ir-s runs/x/weights/last.pt --quick
    python benchmarks/quantization.py chal-ir-s --keep-fp32 /head/field/ --json quant.json
    python benchmarks/quantization.py yolox-gen-s --quick --sets "daub data20" --frame-check off
    python benchmarks/quantization.py chal-ir-s --precisions torch-bf16 torch-bf16-compiled \
        --sets "anti_uav 4.avi"      # torch.compile'd (the val sample too, window by window)

Models are given by name (shipped weights) or checkpoint path, so the script reruns unchanged when
the shipped weights change. Every precision runs as `mistd eval` runs the model by default: at each
frame's own size (padded to a multiple of 32, never letterboxed to the training size) and with the
weights' own frame check (`--frame-check off`: the network alone). For each model the script
exports the deployable fp32 graph with a dynamic size and the weights' thresholds and frame check
in its metadata (as `mistd export --weights NAME --dynamic`) and an int8 graph quantized by
`mistd.inference.quantize` (calibrated at the frames' own size on `--calibration-frames` frames
of the training sources: drone_ir train clips and SIRST-V2 train frames, or `--calibration`;
never the scored data), then scores every precision on the same data with the official protocol,
class-agnostic:

- `drone_ir val`: the val sample, 570 key frames spread evenly over the 57 val clips, each with
  its own causal window (`evaluate_sampled`, as `benchmarks/cross_camera.py`); `--quick`: 114;
- `anti_uav 4.avi` (501 frames, streamed; `--quick`: the first 200), `daub data20` (100 frames,
  streamed) and `sirst_v2 val` (157 single frames; the tiny-target model's own set).

Exports and int8 graphs are cached under `--cache`, one int8 graph per setting (delete the folder
to re-export). Data from ../shared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

from mistd.data.readers import read_dataset
from mistd.evaluation.runner import data_classes_for, evaluate_sampled, evaluate_with_breakdown
from mistd.inference.detector import load_detector
from mistd.inference.export import export_deploy_onnx
from mistd.inference.predictor import OnnxDetector, Predictor
from mistd.inference.quantize import calibration_frames, int8_settings, quantize_int8
from mistd.inference.streaming import streamed_shipped_weights
from mistd.io import write_text_atomic
from mistd.weights import read_weights

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real"
PRECISIONS = ("torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8")
COMPILED = ("torch-fp32-compiled", "torch-bf16-compiled")  # Predictor(compile=True), streamed


def calibration_sources() -> list[str]:
    """The training sources to calibrate on (train splits only)."""
    return [f"{REAL / 'drone_ir'}:train", f"{REAL / 'sirst_v2' / 'images'}:train.txt"]


def data_sets(quick: bool) -> list[tuple[str, dict]]:
    """(name, how to read and score it) of each scored data set found under ../shared."""
    sets = []
    if (REAL / "drone_ir/clips.csv").exists():
        sets.append(("drone_ir val", {"path": REAL / "drone_ir", "select": "val", "sample": 570}))
        if quick:
            sets[-1][1]["sample"] = 114
    if (REAL / "anti_uav/4.avi").exists():
        sets.append(
            (
                "anti_uav 4.avi",
                {"path": REAL / "anti_uav/4.avi", "max_frames": 200 if quick else None},
            )
        )
    index = REAL / "daub_data20" / "coco_val_DAUB_data20.txt"
    if index.exists():
        sets.append(("daub data20", {"path": index, "root": REAL / "daub_data20"}))
    if (REAL / "sirst_v2" / "splits" / "val.txt").exists():
        sets.append(("sirst_v2 val", {"path": REAL / "sirst_v2", "select": "val"}))
    if not sets:
        sys.exit(f"no data found under {REAL}")
    return sets


def score(detector, how: dict) -> float:
    """Class-agnostic mAP50 of `detector` on one data set (see module docstring)."""
    if "sample" in how:
        # the model's classes, so that the breakdown has its class-agnostic row
        data = read_dataset(how["path"], select=how["select"], classes=data_classes_for(detector))
        metrics = evaluate_sampled(detector, data, how["sample"])
        return metrics.get("breakdown", {}).get("class_agnostic", metrics)["mAP50"]
    data = read_dataset(
        how["path"], root=how.get("root"), select=how.get("select"), classes="target"
    )
    metrics, _ = evaluate_with_breakdown(
        detector, data, progress=False, max_frames=how.get("max_frames")
    )
    return metrics["mAP50"]


def make_predictor(precision: str, name: str, paths: dict[str, Path], frame_check: str):
    """The `Predictor` of one precision as `mistd eval` runs it by default: streaming (clip mode
    for the sampled val frames), at each frame's own size (padded to a multiple of 32; the onnx
    graphs are exported with a dynamic size), with the weights' own frame check unless
    `frame_check` says otherwise."""
    if precision.startswith("onnx"):
        predictor = Predictor(str(paths[precision]), keep_all=True, frame_check=frame_check)
        # onnxruntime's own default is a thread per core: the benchmark's count instead
        predictor.detector = OnnxDetector(paths[precision], threads=torch.get_num_threads())
        return predictor
    return Predictor(
        name,
        precision=precision.split("-")[1],
        keep_all=True,
        frame_check=frame_check,
        compile=precision.endswith("compiled"),
    )


def int8_key(keep_fp32, method: str, args) -> str:
    """A short name for the int8 settings (the cache keeps one graph per setting)."""
    text = json.dumps([sorted(keep_fp32), method, args.calibration_frames, args.calibration])
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def export(name: str, cache: Path, args) -> dict[str, Path]:
    """The fp32 and int8 deployable graphs of `name`, dynamic size, with the weights' thresholds
    and frame check in their metadata (as `mistd export --weights NAME --dynamic`; cached)."""
    folder = cache / Path(name).stem
    # the model's own int8 settings (`MODEL_INT8_SETTINGS`) unless --keep-fp32 / --method choose
    settings_of, settings = int8_settings(name)
    keep_fp32 = settings.keep_fp32 if args.keep_fp32 is None else args.keep_fp32
    method = args.method or settings.method
    if args.keep_fp32 is not None or args.method:
        settings_of = None
    key = int8_key(keep_fp32, method, args)
    fp32, int8 = folder / "fp32.onnx", folder / f"int8-{key}.onnx"
    if not fp32.exists():
        detector = load_detector(name)
        names = (detector.config.get("data") or {}).get("class_names")
        weights = read_weights(name)
        export_deploy_onnx(
            detector.model,
            fp32,
            detector.input_size,
            class_names=names,
            dynamic=True,
            thresholds=weights.thresholds.to_dict(),
            frame_check=weights.frame_check.to_dict(),
        )
    if not int8.exists():
        start = time.perf_counter()
        sources = args.calibration or calibration_sources()
        runs, description = calibration_frames(sources, args.calibration_frames)
        quantize_int8(
            fp32,
            int8,
            runs,
            description,
            keep_fp32=keep_fp32,
            method=method,
            settings_of=settings_of,
        )
        print(f"  {name}: int8 calibrated in {time.perf_counter() - start:.0f} s", flush=True)
    return {"onnx-fp32": fp32, "onnx-int8": int8}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "models", nargs="*", help="shipped names or checkpoints (default: those that stream)"
    )
    parser.add_argument(
        "--precisions", nargs="*", default=list(PRECISIONS), choices=PRECISIONS + COMPILED
    )
    parser.add_argument("--calibration-frames", type=int, default=300)
    parser.add_argument(
        "--method", default=None, help="int8 activation ranges (default: the model's setting)"
    )
    parser.add_argument(
        "--keep-fp32", nargs="*", default=None, help="node-name substrings (default: the model's)"
    )
    parser.add_argument(
        "--calibration", nargs="*", default=None, help="PATH[:SELECT] (default: training sources)"
    )
    parser.add_argument("--frame-check", default="auto", help="auto (the model's), off, on")
    parser.add_argument("--sets", nargs="*", default=None, help="only these data sets")
    parser.add_argument("--quick", action="store_true", help="smaller samples (minutes)")
    parser.add_argument("--cache", type=Path, default=Path("runs/bench/quantization-native"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = args.models or streamed_shipped_weights()
    sets = [(n, how) for n, how in data_sets(args.quick) if not args.sets or n in args.sets]
    results: dict = {}
    print(f"{'model':18s} {'precision':11s} " + " ".join(f"{n:>16s}" for n, _ in sets))
    for name in models:
        onnx = any(p.startswith("onnx") for p in args.precisions)
        paths = export(name, args.cache, args) if onnx else {}  # torch only: nothing to export
        rows = results.setdefault(name, {})
        for precision in args.precisions:
            detector = make_predictor(precision, name, paths, args.frame_check)
            rows[precision] = {n: score(detector, how) for n, how in sets}
            base = rows.get("onnx-fp32" if precision.startswith("onnx") else "torch-fp32")
            cells = []
            for n, _ in sets:
                value = 100 * rows[precision][n]
                delta = (
                    ""
                    if base is None or base is rows[precision]
                    else (f" ({value - 100 * base[n]:+.1f})")
                )
                cells.append(f"{value:5.1f}{delta:>8s}".rjust(16))
            print(f"{Path(name).stem:18s} {precision:11s} " + " ".join(cells), flush=True)
            if args.json:
                write_text_atomic(args.json, json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
