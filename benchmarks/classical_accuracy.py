"""Accuracy (official mAP50 / P / R / F1) and speed of the classical detectors.

Generates small synthetic sets (easy / medium / hard presets; default 4 sequences x 50 frames at
256x256, seed 0) with `mistd.data.synth.generate_sequence`, writes them as PNG frames + COCO json,
scores every detector in `mistd.classical.CLASSICAL` on each with `mistd eval`, adds the Anti-UAV
sample video when it is present, measures ms/frame at 256x256 and 640x512, and prints the tables.
Not run by CI.

    python benchmarks/classical_accuracy.py [--out runs/bench/classical] [--sequences 4]
        [--frames 50] [--anti-uav ../shared/data/real/anti_uav/4.avi]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from mistd.classical import CLASSICAL
from mistd.data.synth import generate_sequence, preset_config, sequence_rngs
from mistd.data.writers import write_coco_json
from mistd.structures import FrameDataset, FrameRecord, Sequence

PRESETS = ("easy", "medium", "hard")
ANTI_UAV = Path(__file__).resolve().parents[1] / ".." / "shared/data/real/anti_uav/4.avi"


def make_synthetic(folder: Path, preset: str, sequences: int, frames: int, size: int) -> Path:
    """Write `sequences` x `frames` synthetic frames + COCO json under `folder`; return the json."""
    annotation = folder / "instances.json"
    if annotation.exists():
        return annotation
    cfg = preset_config(preset, num_frames=frames, height=size, width=size)
    seqs = []
    for s, rng in enumerate(sequence_rngs(0, sequences)):
        images, truths = generate_sequence(cfg, rng)
        name = f"seq{s}"
        (folder / "images" / name).mkdir(parents=True, exist_ok=True)
        records = []
        for k, (image, truth) in enumerate(zip(images, truths, strict=True)):
            path = folder / "images" / name / f"{k}.png"
            cv2.imwrite(str(path), image)
            records.append(
                FrameRecord(
                    name,
                    k,
                    path=path,
                    boxes=truth.boxes,
                    labels=truth.labels,
                    width=size,
                    height=size,
                )
            )
        seqs.append(Sequence(name, records))
    write_coco_json(FrameDataset(seqs, source=str(folder), format="synthetic"), annotation, folder)
    return annotation


def run_eval(model: str, data: Path, out: Path, name: str) -> dict:
    """`mistd eval --model MODEL --data DATA --json ...`; returns the metrics dict."""
    metrics_path = out / f"{name}.json"
    command = [
        "mistd",
        "eval",
        "--model",
        model,
        "--data",
        str(data),
        "--json",
        str(metrics_path),
        "--project",
        str(out / "runs"),
        "--name",
        name,
    ]
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"mistd eval failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(metrics_path.read_text())


def speed(height: int, width: int, repeats: int = 20) -> dict[str, float]:
    """ms/frame of each detector on a medium synthetic clip of `height x width`."""
    cfg = preset_config("medium", num_frames=5, height=height, width=width)
    frames, _ = generate_sequence(cfg, sequence_rngs(1, 1)[0])
    result = {}
    for name, make in CLASSICAL.items():
        detector = make()
        clip = frames[-detector.num_frames :]
        detector.detect(clip, 8)
        start = time.perf_counter()
        for _ in range(repeats):
            detector.detect(clip, 8)
        result[name] = 1000 * (time.perf_counter() - start) / repeats
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench/classical"))
    parser.add_argument("--sequences", type=int, default=4)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--anti-uav", type=Path, default=ANTI_UAV.resolve())
    args = parser.parse_args()

    rows = []
    for preset in PRESETS:
        data = make_synthetic(
            args.out / "data" / preset, preset, args.sequences, args.frames, args.size
        )
        for model in CLASSICAL:
            rows.append(
                (f"synth-{preset}", model, run_eval(model, data, args.out, f"{preset}_{model}"))
            )
    if args.anti_uav.exists():
        for model in CLASSICAL:
            rows.append(
                (
                    "anti-uav 4.avi",
                    model,
                    run_eval(model, args.anti_uav, args.out, f"antiuav_{model}"),
                )
            )
    else:
        print(f"skipping Anti-UAV: {args.anti_uav} not found", file=sys.stderr)

    print("\n| data | detector | frames | targets | mAP50 | P | R | F1 | F1@0.5 | ms/frame |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for data_name, model, m in rows:
        print(
            f"| {data_name} | {model} | {m['n_images']} | {m['n_gt']} | {100 * m['mAP50']:.2f} | "
            f"{100 * m['precision']:.2f} | {100 * m['recall']:.2f} | {100 * m['f1']:.2f} | "
            f"{100 * m['op_f1']:.2f} | {m['ms_per_frame']:.1f} |"
        )
    print("\n| detector | ms/frame 256x256 | ms/frame 640x512 |")
    print("|---|---|---|")
    small, large = speed(256, 256), speed(512, 640)
    for model in CLASSICAL:
        print(f"| {model} | {small[model]:.2f} | {large[model]:.2f} |")
    print(f"\n(OpenCV threads: {cv2.getNumThreads()}; numpy {np.__version__})")


if __name__ == "__main__":
    main()
