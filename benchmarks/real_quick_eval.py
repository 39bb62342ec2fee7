"""Score real-data runs (and the classical detectors) on the training's own validation sample.

    python benchmarks/real_quick_eval.py runs/real/yolox-s-seed0 runs/real/mf-baseline-seed0-300 \
        --classical tophat temporal [--frames 570] [--json runs/real/quick.json]
    python benchmarks/real_quick_eval.py --weights yolox-ir-s mf-residual-ir-s   # shipped models

The sample is the one `mistd train` evaluates with `data.val_max_frames=570`: 570 key frames
spread evenly over the 57 val clips (10 per clip, each with its own causal window), scored with
the official protocol (`mistd.evaluation.runner.evaluate_sampled`), class-agnostic (the papers'
number) plus per class and per distance bin. Streaming over whole clips (`mistd eval`) scores
every frame and costs ~30x more on this CPU; docs/results.md says which rows used which.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mistd.data.readers import read_dataset
from mistd.evaluation.runner import data_classes_for, evaluate_sampled
from mistd.inference.detector import load_detector
from mistd.io import write_text_atomic


def _row(metrics: dict) -> dict:
    breakdown = metrics.get("breakdown", {})
    agnostic = breakdown.get("class_agnostic", metrics)
    per_class = {k: v["mAP50"] for k, v in breakdown.get("per_class", {}).items()}
    if not per_class:  # a one-class detector: rows by the clip's class
        per_class = {
            k: v["mAP50"] for k, v in breakdown.get("by_attribute", {}).get("class", {}).items()
        }
    bins = {
        k: v["mAP50"] for k, v in breakdown.get("by_attribute", {}).get("distance_bin", {}).items()
    }
    return {
        "mAP50": agnostic["mAP50"],
        "f1": agnostic["f1"],
        "op_f1": agnostic.get("op_f1", 0.0),
        "class_aware_mAP50": metrics["mAP50"],
        "per_class": per_class,
        "distance_bin": bins,
        "confusion": breakdown.get("confusion"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--weights", nargs="*", default=[], help="shipped names or .pt files")
    parser.add_argument("--classical", nargs="*", default=[])
    parser.add_argument("--data", default="../shared/data/real/drone_ir")
    parser.add_argument("--select", default="val")
    parser.add_argument("--frames", type=int, default=570)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = json.loads(args.json.read_text()) if args.json and args.json.exists() else {}
    detectors = [
        (run.name, lambda run=run: load_detector(run / "weights" / "last.pt")) for run in args.runs
    ]
    for weights in args.weights:
        detectors.append((Path(weights).stem, lambda weights=weights: load_detector(weights)))
    for name in args.classical:
        from mistd.classical import CLASSICAL

        detectors.append((name, CLASSICAL[name]))
    for name, make in detectors:
        detector = make()
        data = read_dataset(args.data, select=args.select, classes=data_classes_for(detector))
        results[name] = _row(evaluate_sampled(detector, data, args.frames))
        r = results[name]
        print(
            f"{name:32s} mAP50 {100 * r['mAP50']:5.1f}  F1 {100 * r['f1']:5.1f}  "
            + " ".join(f"{k} {100 * v:.1f}" for k, v in r["per_class"].items())
            + " | "
            + " ".join(f"{k} {100 * v:.1f}" for k, v in r["distance_bin"].items()),
            flush=True,
        )
        if args.json:
            write_text_atomic(args.json, json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
