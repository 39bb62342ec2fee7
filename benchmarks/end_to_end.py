"""End to end, as a user deploys: every shipped model through `mistd.Predictor`, raw frame to
the boxes it shows (letterbox or pad, forward, decoding, NMS or blobs, the model's frame check,
the display threshold), at 1 and 2 CPU threads, side by side in one run.

    python benchmarks/end_to_end.py                       # every shipped model, ~10 min quiet
    python benchmarks/end_to_end.py yolox-gen-s --threads 2 --repeats 10
    python benchmarks/end_to_end.py tinyseg-gen-s runs/x/weights/last.pt --sources 4.avi

Modes per model, each at every `--threads` count (`Predictor(..., threads=n)`):

- `torch`: the weights file, streamed (clip mode for tinyseg) by torch in fp32 (the convolutions'
  BatchNorm folded, channels-last on the CPU: as the `Predictor` runs weights it loads);
- `torch bf16`: the same under bf16 autocast (`precision="bf16"`; decoding in fp32);
- `torch bf16 compiled`, and `torch compiled` (fp32, not run unless asked):
  `Predictor(compile=True)`, streaming models only, where a C++ compiler is found (each compiles
  its graphs first, ~30 s);
- `torch plain` / `torch plain bf16` (not run unless asked): the model as trained, BatchNorm
  apart and contiguous layout (a `ClipDetector` from `load_detector` given to the `Predictor`,
  which rewrites only what it loads itself): what the rewrite saves;
- `ort fp32` / `ort int8`: the graphs `mistd export --weights W --dynamic [--precision int8]`
  writes (the int8 one with the weights' own int8 settings, calibrated on `--calibration`
  drone_ir train frames), exported once into `--cache`, run by onnxruntime.

Frames: Anti-UAV `4.avi` (640x512) and a drone_ir val clip (320x256) from ../shared, each model
at the frame's own size (the default). Video decoding is timed apart (it does not depend on the
model) and added into the frames per second printed beside each median. Every runner is called
once per round, round after round (`mistd.inference.bench.interleaved_times`), so ratios hold on a
loaded machine, each call after `--settle` seconds idle (0.02: the threads of the call before
park, as between a camera's frames; back to back, the onnxruntime sessions with 2 threads read
15-40% slower); absolute figures need a quiet one: the load average and CPU pressure are printed
before and after. Which modes keep accuracy (int8 within 0.5 mAP50 of fp32) is
`benchmarks/quantization.py`'s answer, not this one's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from realtime import Cycle, machine_load  # the sibling benchmark's frame pool and load reading

from mistd.inference.bench import interleaved_times
from mistd.inference.detector import load_detector
from mistd.inference.optimize import has_cpp_compiler
from mistd.inference.predictor import Predictor
from mistd.inference.streaming import supports_streaming
from mistd.io import write_text_atomic
from mistd.weights import read_weights, shipped_weights

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real"
SOURCES = {
    "4.avi": REAL / "anti_uav" / "4.avi",
    "drone_ir": REAL / "drone_ir" / "videos" / "IR_DRONE_013.mp4",
}
MODES = ("torch", "torch bf16", "torch bf16 compiled", "ort fp32", "ort int8")
PLAIN_MODES = ("torch plain", "torch plain bf16")  # what the inference rewrite saves
COMPILED_MODES = ("torch compiled", "torch bf16 compiled")  # torch.compile: ~30 s each to start


def frames_of(source: str, count: int, decoded: int = 60) -> tuple[list[np.ndarray], float]:
    """`count` frames of `source`, and its decoding cost in ms/frame over `decoded` frames
    once the video is open (a stream is opened once)."""
    from mistd.data.video import iter_video_frames

    path = SOURCES[source]
    if not path.exists():
        raise SystemExit(f"{path} not found (the benchmark reads ../shared)")
    reader = iter_video_frames(path)
    frames = [next(reader)]
    start = time.perf_counter()
    for _, frame in zip(range(decoded), reader, strict=False):
        if len(frames) < count:
            frames.append(frame)
    return frames, 1000 * (time.perf_counter() - start) / decoded


def exported(weights: str, precision: str, cache: Path, calibration_frames: int) -> Path | None:
    """The graph `mistd export` writes for `weights` (cached); None where it refuses one."""
    folder = cache / Path(weights).stem
    path = folder / f"{precision}.onnx"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    command = ["mistd", "export", "--weights", weights, "--dynamic", "--out", str(path)]
    if precision == "int8":
        calibration = f"{REAL / 'drone_ir'}:train"  # as benchmarks/realtime.py
        command += ["--precision", "int8", "--calibration", calibration]
        command += ["--calibration-frames", str(calibration_frames)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"  {weights} {precision}: not exported ({done.stderr.strip()[-200:]})", flush=True)
        return None
    return path


def threaded_push(predictor: Predictor, threads: int):
    """`predictor.push`, with the process's torch threads set to `threads` first (torch's
    setting is global: runners of several counts take turns)."""

    def push(frame: np.ndarray):
        torch.set_num_threads(threads)
        return predictor.push(frame)

    return push


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="shipped names or weights (default: all)")
    choices = MODES + PLAIN_MODES + COMPILED_MODES
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=choices)
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--sources", nargs="*", default=list(SOURCES), choices=list(SOURCES))
    parser.add_argument("--frames", type=int, default=12, help="frames per pool")
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--settle", type=float, default=0.02, help="seconds idle before each call (untimed)"
    )
    parser.add_argument("--cache", type=Path, default=Path("runs/end_to_end"))
    parser.add_argument("--calibration", type=int, default=100, help="int8 calibration frames")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    models = args.models or sorted(shipped_weights())
    graphs = {}
    for weights in models:
        for mode in args.modes:
            if mode.startswith("ort"):
                precision = mode.split()[1]
                graphs[weights, mode] = exported(weights, precision, args.cache, args.calibration)
    print(f"before: {machine_load()}", flush=True)
    results = []
    for source in args.sources:
        frames, decode_ms = frames_of(source, args.frames)
        h, w = frames[0].shape[:2]
        runners = {}
        for weights in models:
            streams = supports_streaming(read_weights(weights).build_model())
            for mode in args.modes:
                model = weights if mode.startswith("torch") else graphs[weights, mode]
                if model is None:
                    continue
                options = dict(precision="bf16" if "bf16" in mode else "fp32")
                if mode in COMPILED_MODES:
                    if not streams or not has_cpp_compiler():
                        continue  # compile applies to streaming models, with a C++ compiler
                    options["compile"] = True
                if mode.startswith("torch plain"):
                    # a built model runs at its training size unless told: the frame's, as above
                    model, options["input_size"] = load_detector(weights), "native"
                for threads in args.threads:
                    predictor = Predictor(model, threads=threads, keep_frames=False, **options)
                    push = threaded_push(predictor, threads)
                    runners[weights, mode, threads] = Cycle(push, frames)
        report: dict = {}
        times = interleaved_times(runners, args.repeats, args.warmup, report, args.settle)
        print(f"\n{source} ({w}x{h}), decoding {decode_ms:.1f} ms/frame; {report}")
        header = "".join(f"{f'{m} x{t}':>22s}" for m in args.modes for t in args.threads)
        print(f"{'model':24s}{header}")
        columns = len(args.modes) * len(args.threads)
        print(f"{'':24s}" + f"{'median/p90 ms, fps':>22s}" * columns)
        for weights in models:
            cells = []
            for mode in args.modes:
                for threads in args.threads:
                    if (weights, mode, threads) not in times:
                        cells.append(f"{'-':>22s}")
                        continue
                    ms = sorted(1000 * s for s in times[weights, mode, threads][0])
                    median, p90 = statistics.median(ms), ms[int(round(0.9 * (len(ms) - 1)))]
                    fps = 1000 / (median + decode_ms)
                    cells.append(f"{median:6.1f}/{p90:<6.1f} {fps:5.1f}".rjust(22))
                    results.append(
                        dict(
                            model=Path(weights).stem,
                            mode=mode,
                            threads=threads,
                            source=source,
                            size=[h, w],
                            median_ms=median,
                            p90_ms=p90,
                            decode_ms=decode_ms,
                            fps_end_to_end=fps,
                        )
                    )
            print(f"{Path(weights).stem:24s}" + "".join(cells), flush=True)
    print(f"\nafter: {machine_load()}")
    if args.json:
        write_text_atomic(args.json, json.dumps(results, indent=1))
        print(f"json: {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
