"""Per-frame latency, end to end from a raw frame to boxes, of every shipped model and of CHAL's
config, in every execution mode, side by side in one run.

    python benchmarks/realtime.py --quick                       # < 5 min on a quiet machine
    python benchmarks/realtime.py --official /path/to/CHAL      # + the official clip forward
    python benchmarks/realtime.py yolox-ir-s --sizes 256x320 --chal-sizes --profile
    python benchmarks/realtime.py mf-residual-ir-s --sizes 256x320 --chal-sizes --modes \
        --threads-sweep 1 2 4 --throughput        # thread counts; frames/s per core

Rows: each model (shipped names or checkpoints; default: the shipped models that stream) at
256x320 and 512x640, and CHAL's config (zoo `chal`, T=5, the shared fixture weights when
present) at 256x256 and 512x512. Columns: ms/frame median and p90 of

- `torch clip`: `ClipDetector.detect` on the T-frame window (letterbox T frames, clip forward,
  decoding, NMS), what clip mode costs per frame;
- `torch stream` / `torch bf16`: `VideoPredictor.push` (one backbone pass per frame) in fp32 and
  with bf16 autocast (the torch modes run the model as the `Predictor` runs weights it loads:
  BatchNorm folded into the convolutions, channels-last);
- `ort fp32` / `ort int8`: `OnnxDetector.push` on the deployable graph and on its int8
  quantization (calibrated on `--calibration-frames` drone_ir train frames, with the model's own
  int8 settings, `mistd.inference.quantize.int8_settings`; accuracy: `benchmarks/quantization.py`);
- `official`: the official CHAL clip forward on the same window (`--official`, CHAL rows only;
  network forward only, no decoding), and each mode's speed-up over it.

GMAC per frame (clip forward, and one streamed frame), the threads and the machine's load (load
average, CPU pressure before and after, calls redone because other work took the CPU) are printed
with the table. Every mode runs once per round, round after round (`interleaved_times`), so the
ratios of one run are comparable even on a loaded machine; absolute figures need a quiet one.
Frames: a drone_ir val clip (320x256) and Anti-UAV `4.avi` (640x512) from ../shared, letterboxed
to each size; random frames when absent. `--profile` adds a per-stage table of the streaming
paths (video decoding, letterbox, forward, decoding, candidate filtering, NMS, box mapping);
`--threads-sweep` times the streaming modes of the first row at several intra-op thread counts;
`--throughput` runs a folder of videos (drone_ir val clips) one at a time and `--streams` at a
time through one batched forward, frames/s per core with decoding.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from official_chal import FIXTURE_WEIGHTS, chal_model, fixture_state_dict, official_chal

from mistd.data.transforms import to_model_input
from mistd.decoding import decode_outputs
from mistd.inference.allocator import retain_freed_memory
from mistd.inference.bench import interleaved_times
from mistd.inference.detector import ClipDetector, load_detector
from mistd.inference.export import export_deploy_onnx
from mistd.inference.onnx_runtime import OnnxDetector
from mistd.inference.optimize import fold_batch_norms, set_channels_last
from mistd.inference.streaming import streamed_shipped_weights
from mistd.inference.video_predictor import VideoPredictor
from mistd.io import write_text_atomic
from mistd.models.complexity import count_macs
from mistd.models.ops import postprocess

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real"
MODES = ("torch clip", "torch stream", "torch bf16", "ort fp32", "ort int8")


def cpu_model() -> str:
    """The CPU's model name and its vector / matrix extensions that the kernels use (machines
    of the same name differ: timings are comparable only on the same CPU)."""
    name, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and name == "unknown CPU":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    return f"{name} ({' '.join(f for f in wanted if f in flags) or 'no AVX2'})"


def machine_load() -> dict:
    """CPU model, load average (1, 5, 15 min) and CPU pressure (PSI some avg10 / avg60, %)."""
    load = {"cpu": cpu_model(), "loadavg": [round(v, 2) for v in os.getloadavg()]}
    load["cpus"] = os.cpu_count()
    try:
        with open("/proc/pressure/cpu") as f:
            fields = dict(item.split("=") for item in f.readline().split()[1:])
        load["psi_some_avg10"] = float(fields["avg10"])
        load["psi_some_avg60"] = float(fields["avg60"])
    except (OSError, KeyError, ValueError):
        pass
    return load


def source_frames(size: tuple[int, int], count: int) -> tuple[list[np.ndarray], str]:
    """`count` consecutive real frames near `size` (H, W) from ../shared, or random ones."""
    from mistd.data.video import iter_video_frames

    video = REAL / "anti_uav/4.avi" if size[0] > 300 else REAL / "drone_ir/videos/IR_DRONE_013.mp4"
    if video.exists():
        frames = [f for _, f in zip(range(count), iter_video_frames(video), strict=False)]
        return frames, video.name
    rng = np.random.default_rng(0)
    h, w = (512, 640) if size[0] > 300 else (256, 320)
    return [rng.integers(0, 255, (h, w), dtype=np.uint8) for _ in range(count)], "random"


def decode_ms(size: tuple[int, int], count: int = 60) -> float | None:
    """Video decoding, ms/frame, of the source `source_frames` reads."""
    from mistd.data.video import iter_video_frames

    video = REAL / "anti_uav/4.avi" if size[0] > 300 else REAL / "drone_ir/videos/IR_DRONE_013.mp4"
    if not video.exists():
        return None
    start = time.perf_counter()
    n = sum(1 for _ in zip(range(count), iter_video_frames(video), strict=False))
    return 1000 * (time.perf_counter() - start) / n


class Cycle:
    """Calls `push(frame)` with the next frame of a pool on each call (the stream rolls on)."""

    def __init__(self, push, frames: list[np.ndarray]):
        self.push, self.frames, self.next = push, frames, 0

    def __call__(self):
        frame = self.frames[self.next % len(self.frames)]
        self.next += 1
        return self.push(frame)


class ClipCycle:
    """Clip mode: detections of the key frame of the next T-frame window of the pool."""

    def __init__(self, detector: ClipDetector, frames: list[np.ndarray]):
        self.detector, self.frames, self.next = detector, frames, 0

    def __call__(self):
        t = self.detector.num_frames
        k = self.next % (len(self.frames) - t + 1)
        self.next += 1
        return self.detector.detect(np.stack(self.frames[k : k + t]), 8)


def onnx_graphs(model, size, names, cache: Path, key: str, calibration: int) -> dict[str, Path]:
    """Deployable fp32 graph of `model` at `size` and its int8 quantization (cached)."""
    from mistd.inference.quantize import calibration_frames, int8_settings, quantize_int8

    folder = cache / f"{key}-{size[0]}x{size[1]}"
    fp32, int8 = folder / "fp32.onnx", folder / "int8.onnx"
    if not fp32.exists():
        export_deploy_onnx(model, fp32, size, class_names=names)
    if not int8.exists():
        if (REAL / "drone_ir/clips.csv").exists():
            runs, description = calibration_frames([f"{REAL / 'drone_ir'}:train"], calibration)
        else:
            rng = np.random.default_rng(0)
            runs = [[(rng.integers(0, 255, (256, 320), dtype=np.uint8), 8)] for _ in range(8)]
            description = {"sources": "random frames (no real data found)", "frames": 8}
        settings_of, settings = int8_settings(key)  # the model's own (by shipped name)
        quantize_int8(
            fp32,
            int8,
            runs,
            description,
            keep_fp32=settings.keep_fp32,
            method=settings.method,
            settings_of=settings_of,
        )
    return {"ort fp32": fp32, "ort int8": int8}


def torch_profile(model, size, frames, stages: dict[str, list[float]]) -> None:
    """`VideoPredictor.push` stage by stage over `frames` (seconds appended per stage)."""
    predictor = VideoPredictor(model, input_size=size)
    for frame in frames:
        t0 = time.perf_counter()
        tensor, info = to_model_input(frame[None], 8, size)
        t1 = time.perf_counter()
        outputs = predictor.push_torch_raw(tensor[0])
        t2 = time.perf_counter()
        decoded = decode_outputs(outputs, model.strides)
        t3 = time.perf_counter()
        detections = postprocess(decoded, decode_floor=0.001, nms_iou=0.65)[0]
        t4 = time.perf_counter()
        predictor._to_original(detections, info)
        t5 = time.perf_counter()
        for name, seconds in (
            ("letterbox", t1 - t0),
            ("forward", t2 - t1),
            ("decode", t3 - t2),
            ("filter + NMS", t4 - t3),
            ("to original", t5 - t4),
        ):
            stages.setdefault(name, []).append(seconds)


def summarise(seconds: list[float]) -> tuple[float, float]:
    ms = sorted(1000 * s for s in seconds)
    return statistics.median(ms), ms[min(int(round(0.9 * (len(ms) - 1))), len(ms) - 1)]


def measure_row(row: dict, args, official) -> dict:
    """Time every mode of one row (interleaved); returns the row's results."""
    model, size, names = row["model"], row["size"], row["names"]
    t = model.num_frames
    frames, source = source_frames(size, max(16, t + 8))
    result: dict = {"name": row["name"], "size": list(size), "frames": source, "T": t}
    with torch.inference_mode():
        clip = torch.zeros(1, t, 3, *size)
        result["gmac_clip"] = count_macs(model, clip) / 1e9
        from mistd.inference.bench import stream_macs

        result["gmac_stream"] = stream_macs(model, size) / 1e9
    runners = {}
    modes = [m for m in MODES if m in args.modes]
    # the torch modes run the model as the `Predictor` deploys weights: BatchNorm folded,
    # convolutions channels-last (the exported graphs start from the model as trained)
    deployed = set_channels_last(fold_batch_norms(copy.deepcopy(model).eval()))
    if "torch clip" in modes:
        detector = ClipDetector(deployed, num_frames=t, input_size=size)
        runners["torch clip"] = ClipCycle(detector, frames)
    if "torch stream" in modes:
        runners["torch stream"] = Cycle(VideoPredictor(deployed, input_size=size).push, frames)
    if "torch bf16" in modes:
        predictor = VideoPredictor(deployed, input_size=size, precision="bf16")
        runners["torch bf16"] = Cycle(predictor.push, frames)
    if any(m.startswith("ort") for m in modes):
        graphs = onnx_graphs(model, size, names, args.cache, row["key"], args.calibration_frames)
        for mode in ("ort fp32", "ort int8"):
            if mode in modes:
                detector = OnnxDetector(graphs[mode], threads=args.threads)
                runners[mode] = Cycle(detector.push, frames)
                result.setdefault("onnx", {})[mode] = detector
    if official is not None and row.get("official"):
        window = to_model_input(np.stack(frames[:t]), 8, size)[0]
        official_clip = window[None].permute(0, 2, 1, 3, 4)  # official layout [B, C, T, H, W]
        runners["official"] = lambda: official(official_clip)
    report: dict = {}
    times = interleaved_times(runners, args.repeats, args.warmup, report)
    result["load"] = report
    result["ms"] = {name: summarise(wall) for name, (wall, _) in times.items()}
    if args.profile:
        stages: dict[str, list[float]] = {}
        torch_profile(model, size, frames, stages)
        result["profile"] = {"torch stream": {k: summarise(v)[0] for k, v in stages.items()}}
        for mode, detector in result.get("onnx", {}).items():
            detector.profile = {}
            detector.reset()
            for frame in frames:
                detector.push(frame)
            result["profile"][mode] = {k: summarise(v)[0] for k, v in detector.profile.items()}
        result["decode_ms"] = decode_ms(size)
    result.pop("onnx", None)
    return result


def rows(args) -> list[dict]:
    """Models x sizes to measure (built lazily, one at a time)."""
    out = []
    for name in args.models or streamed_shipped_weights():
        for size in args.sizes:
            out.append({"name": Path(name).stem, "source": name, "size": size, "kind": "shipped"})
    if args.chal_sizes:
        for side in args.chal_sizes:
            out.append({"name": "chal (config)", "size": (side, side), "kind": "chal"})
    return out


def build(row: dict) -> dict:
    if row["kind"] == "chal":
        model = chal_model(row["size"][0])
        names = [f"class{i}" for i in range(int(model.head.num_classes))]
        weights = "fixture" if FIXTURE_WEIGHTS.is_file() else "random"
        return {**row, "model": model, "names": names, "key": f"chal-{weights}", "official": True}
    detector = load_detector(row["source"])
    model = detector.model.eval()
    names = (detector.config.get("data") or {}).get("class_names")
    return {**row, "model": model, "names": names, "key": row["name"]}


def parse_size(text: str) -> tuple[int, int]:
    h, _, w = text.partition("x")
    return int(h), int(w or h)


def print_row(result: dict) -> None:
    h, w = result["size"]
    ms = result["ms"]
    official = ms.get("official", (None,))[0]
    cells = []
    for mode in (*MODES, "official"):
        if mode not in ms:
            cells.append(f"{'-':>15s}")
            continue
        median, p90 = ms[mode]
        ratio = f" {official / median:4.1f}x" if official and mode != "official" else ""
        cells.append(f"{median:6.1f}/{p90:<6.1f}{ratio}".rjust(15))
    gmac = f"{result['gmac_clip']:6.1f} {result['gmac_stream']:6.1f}"
    print(f"{result['name']:18s} {h:>4d}x{w:<4d} {gmac} " + " ".join(cells), flush=True)


def thread_sweep(row: dict, args) -> None:
    """ms/frame of the streaming modes at each of `args.threads_sweep` intra-op thread counts."""
    model, size = row["model"], row["size"]
    frames, _ = source_frames(size, 16)
    graphs = onnx_graphs(model, size, row["names"], args.cache, row["key"], args.calibration_frames)
    h, w = size
    print(f"\nthreads: {row['name']} {h}x{w}, ms/frame median/p90 (interleaved per count)")
    for count in args.threads_sweep:
        torch.set_num_threads(count)
        runners = {"torch stream": Cycle(VideoPredictor(model, input_size=size).push, frames)}
        for mode in ("ort fp32", "ort int8"):
            runners[mode] = Cycle(OnnxDetector(graphs[mode], threads=count).push, frames)
        times = interleaved_times(runners, args.repeats, args.warmup)
        cells = "  ".join(
            f"{m} {summarise(wall)[0]:.1f}/{summarise(wall)[1]:.1f}"
            for m, (wall, _) in times.items()
        )
        print(f"  {count} thread(s): {cells}", flush=True)
    torch.set_num_threads(args.threads)


def throughput(row: dict, args) -> None:
    """Frames/s per core over a folder of videos (drone_ir val clips), decoding included: one
    stream at a time vs `args.streams` videos through one batched forward (onnxruntime int8
    and fp32), and torch streaming one video at a time."""
    import csv

    from mistd.data.video import iter_video_frames

    clips_csv = REAL / "drone_ir/clips.csv"
    if not clips_csv.exists():
        print("throughput: no drone_ir videos found", file=sys.stderr)
        return
    with clips_csv.open(newline="") as handle:
        names = [r["clip"] for r in csv.DictReader(handle) if r["split"] == "val"]
    videos = [REAL / "drone_ir/videos" / f"{n}.mp4" for n in names[: args.streams]]
    model, size = row["model"], row["size"]
    graphs = onnx_graphs(model, size, row["names"], args.cache, row["key"], args.calibration_frames)
    frames_per_video = args.throughput_frames

    def sequential(push, reset) -> float:
        start, total = time.perf_counter(), 0
        for video in videos:
            reset()
            for _, frame in zip(range(frames_per_video), iter_video_frames(video), strict=False):
                push(frame)
                total += 1
        return total / (time.perf_counter() - start)

    def batched(detector: OnnxDetector) -> float:
        detector.reset()
        readers = [iter_video_frames(v) for v in videos]
        start, total = time.perf_counter(), 0
        for _ in range(frames_per_video):
            detector.push_streams([next(r) for r in readers])
            total += len(readers)
        return total / (time.perf_counter() - start)

    h, w = size
    cores = args.threads
    print(
        f"\nthroughput: {row['name']} {h}x{w}, {len(videos)} videos x {frames_per_video} frames, "
        f"{cores} thread(s), frames/s per core (decoding included)"
    )
    predictor = VideoPredictor(model, input_size=size)
    results = {"torch stream, 1 video at a time": sequential(predictor.push, predictor.reset)}
    for mode in ("ort fp32", "ort int8"):
        detector = OnnxDetector(graphs[mode], threads=cores)
        results[f"{mode}, 1 video at a time"] = sequential(detector.push, detector.reset)
        results[f"{mode}, {len(videos)} videos per forward"] = batched(detector)
    for name, fps in results.items():
        print(f"  {name:34s} {fps / cores:7.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "models", nargs="*", help="shipped names or checkpoints (default: those that stream)"
    )
    parser.add_argument("--sizes", nargs="*", default=["256x320", "512x640"])
    parser.add_argument("--chal-sizes", type=int, nargs="*", default=[256, 512])
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=MODES)
    parser.add_argument("--official", type=Path, default=None, help="official CHAL checkout")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--calibration-frames", type=int, default=40)
    parser.add_argument("--cache", type=Path, default=Path("runs/bench/realtime"))
    parser.add_argument("--profile", action="store_true", help="per-stage table too")
    parser.add_argument("--quick", action="store_true", help="5 rounds, 20 calibration frames")
    parser.add_argument("--threads-sweep", type=int, nargs="*", default=[], help="e.g. 1 2 4")
    parser.add_argument("--throughput", action="store_true", help="frames/s per core, videos")
    parser.add_argument("--streams", type=int, default=4, help="videos per batched forward")
    parser.add_argument("--throughput-frames", type=int, default=60)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.sizes = [parse_size(s) for s in args.sizes]
    if args.quick:
        args.repeats, args.warmup, args.calibration_frames = 5, 1, 20
    torch.set_num_threads(args.threads)
    # the allocator setting the Predictor makes for torch on the CPU (process-wide: the official
    # forward runs under it too)
    retain_freed_memory()
    official = None
    if args.official is not None:
        official = official_chal(args.official, fixture_state_dict())
    before = machine_load()
    print(f"load before: {before}; torch and onnxruntime threads: {args.threads}", flush=True)
    print(
        f"{'model':18s} {'size':9s} {'GMAC clip/stream':>13s} "
        + " ".join(f"{m:>15s}" for m in (*MODES, "official"))
    )
    print(f"{'':43s}" + " ".join(f"{'median/p90 ms':>15s}" for _ in (*MODES, "official")))
    results = []
    for row in rows(args) if args.modes else []:  # `--modes` alone: the sweeps only
        result = measure_row(build(row), args, official)
        print_row(result)
        results.append(result)
        if args.json:
            write_text_atomic(args.json, json.dumps(results, indent=1))
    after = machine_load()
    redone = sum(r["load"].get("redone", 0) for r in results if "load" in r)
    print(f"load after: {after}; calls redone (CPU taken by other work): {redone}")
    if args.profile:
        print("\nper-stage ms/frame (median) of the streaming paths")
        for r in results:
            h, w = r["size"]
            print(f"{r['name']} {h}x{w}: video decode {r.get('decode_ms') or float('nan'):.2f}")
            for mode, stages in r.get("profile", {}).items():
                print(f"  {mode:12s} " + "  ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    first = rows(args)[0]
    if args.threads_sweep:
        thread_sweep(build(first), args)
    if args.throughput:
        throughput(build(first), args)
    if args.json:
        write_text_atomic(args.json, json.dumps(results, indent=1))
        print(f"json: {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
