"""Accuracy (official mAP50 / P / R / F1) and speed of the classical detectors.

Generates small synthetic sets (easy / medium / hard presets; default 4 sequences x 50 frames at
256x256, seed 0) with `mistd.data.synth.generate.generate_sequence`, writes them as PNG frames +
COCO json, scores every detector in `mistd.classical.CLASSICAL` on each with `mistd eval`, then
the real data in ../shared when present (the Anti-UAV video `anti_uav/4.avi`, the DAUB test
sequence `daub_data20`, and `drone_ir` val clips, class-agnostic: `--classes target`; by default 6
of the 57 val clips spread evenly over their sorted names, every frame streamed, so the overlay
suppression sees whole sequences as in use), measures ms/frame at 256x256 and 640x512, and
prints one table. Not run by CI.

    python benchmarks/classical_accuracy.py [--out runs/bench/classical] [--sequences 4]
        [--frames 50] [--real-only | --synthetic-only] [--drone-ir-select val]
        [--drone-ir-clips 6 (0: all)] [--drone-ir-max-frames N] [--models tophat temporal mpcm]
        [--set rule.margin=1 rule.extent_fraction=0.3 ...]    # detector settings
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from mistd.classical import CLASSICAL
from mistd.data.synth.config import preset_config
from mistd.data.synth.generate import generate_sequence, sequence_rngs
from mistd.data.writers import write_coco_json
from mistd.structures import FrameDataset, FrameRecord, Sequence

PRESETS = ("easy", "medium", "hard")
REAL = (Path(__file__).resolve().parents[1] / ".." / "shared/data/real").resolve()


def split_clips(clips_csv: Path, split: str) -> list[str]:
    """Names of the clips of `split` in drone_ir's clips.csv, sorted."""
    with clips_csv.open(newline="") as handle:
        return sorted(row["clip"] for row in csv.DictReader(handle) if row["split"] == split)


def real_sets(
    select: str, drone_ir_max_frames: int | None, drone_ir_clips: int = 0
) -> list[tuple[str, list[str]]]:
    """(row name, extra `mistd eval` arguments) of each real data set found under ../shared;
    `drone_ir_clips` > 0 scores that many clips of the split, spread evenly over its sorted
    names, every frame streamed (0: the whole split)."""
    sets = []
    if (REAL / "anti_uav/4.avi").exists():
        sets.append(("anti-uav 4.avi", ["--data", str(REAL / "anti_uav/4.avi")]))
    daub = REAL / "daub_data20"
    if (daub / "coco_val_DAUB_data20.txt").exists():
        index = daub / "coco_val_DAUB_data20.txt"
        sets.append(("daub data20", ["--data", str(index), "--root", str(daub)]))
    if (REAL / "drone_ir/clips.csv").exists():
        name = f"drone_ir {select}"
        if drone_ir_clips:
            clips = split_clips(REAL / "drone_ir/clips.csv", select)
            if drone_ir_clips < len(clips):
                picks = np.linspace(0, len(clips) - 1, drone_ir_clips).round().astype(int)
                clips = [clips[i] for i in dict.fromkeys(picks.tolist())]
                name += f" ({len(clips)} clips)"
            select = ",".join(clips)
        args = ["--data", str(REAL / "drone_ir"), "--select", select, "--classes", "target"]
        if drone_ir_max_frames:
            args += ["--max-frames", str(drone_ir_max_frames)]
        sets.append((name, args))
    if not sets:
        print(f"skipping the real data: nothing found under {REAL}", file=sys.stderr)
    return sets


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


def run_eval(
    model: str, data: Path | list[str], out: Path, name: str, overrides: tuple[str, ...] = ()
) -> dict:
    """`mistd eval --model MODEL --data DATA --json ... [key=value ...]` (`data`: a path, or the
    data arguments as a list; `overrides`: the detector's settings); returns the metrics dict."""
    metrics_path = out / f"{name}.json"
    data_args = ["--data", str(data)] if isinstance(data, Path) else data
    command = [
        "mistd",
        "eval",
        "--model",
        model,
        *data_args,
        "--json",
        str(metrics_path),
        "--out",
        str(out / "runs"),
        "--name",
        name,
        *overrides,
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
    parser.add_argument("--real-only", action="store_true", help="skip the synthetic presets")
    parser.add_argument("--synthetic-only", action="store_true", help="skip the real data")
    parser.add_argument("--drone-ir-select", default="val")
    parser.add_argument("--drone-ir-max-frames", type=int, default=None)
    parser.add_argument(
        "--drone-ir-clips",
        type=int,
        default=6,
        help="score this many drone_ir clips of the split, spread evenly (0: all 57 val clips)",
    )
    parser.add_argument(
        "--models", nargs="*", default=list(CLASSICAL), help="classical detectors to score"
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="detector settings passed to every `mistd eval` (e.g. rule.margin=0.5)",
    )
    args = parser.parse_args()

    if args.set:
        print("detector settings:", " ".join(args.set))
    rows = []
    for preset in () if args.real_only else PRESETS:
        data = make_synthetic(
            args.out / "data" / preset, preset, args.sequences, args.frames, args.size
        )
        for model in args.models:
            rows.append(
                (
                    f"synth-{preset}",
                    model,
                    run_eval(model, data, args.out, f"{preset}_{model}", tuple(args.set)),
                )
            )
    real = (
        []
        if args.synthetic_only
        else real_sets(args.drone_ir_select, args.drone_ir_max_frames, args.drone_ir_clips)
    )
    for data_name, data_args in real:
        slug = data_name.split()[0].replace("-", "")
        for model in args.models:
            rows.append(
                (
                    data_name,
                    model,
                    run_eval(model, data_args, args.out, f"{slug}_{model}", tuple(args.set)),
                )
            )

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
