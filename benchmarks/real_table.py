"""Print the real-data table from the `mistd eval` results that `real_recipe.sh eval` wrote.

    python benchmarks/real_table.py [--runs runs/real/eval]

One row per evaluated run (`<run>-val`, `<run>-val-subset`, `<run>-antiuav`, `<run>-daub20`):
class-agnostic mAP50 / F1 (the papers' protocol), per-class AP50 and per-distance-bin mAP50 from
the breakdown, and the same for the classical detectors evaluated with `mistd eval --model NAME`
into the same folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _agnostic(metrics: dict) -> dict:
    return metrics.get("breakdown", {}).get("class_agnostic", metrics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/real/eval"))
    args = parser.parse_args()
    rows = []
    for path in sorted(args.runs.glob("*/metrics.json")):
        metrics = json.loads(path.read_text())
        agnostic = _agnostic(metrics)
        breakdown = metrics.get("breakdown", {})
        per_class = {k: v["mAP50"] for k, v in breakdown.get("per_class", {}).items()}
        if not per_class:
            per_class = {
                k.split("=")[-1]: v["mAP50"]
                for k, v in breakdown.get("by_attribute", {}).get("class", {}).items()
            }
        bins = {
            k: v["mAP50"]
            for k, v in breakdown.get("by_attribute", {}).get("distance_bin", {}).items()
        }
        rows.append((path.parent.name, agnostic, per_class, bins, metrics.get("ms_per_frame", 0)))
    print("| run | frames | mAP50 | F1 | F1@0.5 | per class AP50 | per distance bin mAP50 | ms |")
    print("|" + "---|" * 8)
    for name, m, per_class, bins, ms in rows:
        classes = ", ".join(f"{k} {100 * v:.1f}" for k, v in per_class.items()) or "-"
        distance = ", ".join(f"{k} {100 * v:.1f}" for k, v in bins.items()) or "-"
        frames = m.get("frames", m.get("n_images", 0))
        print(
            f"| {name} | {frames} | {100 * m['mAP50']:.1f} | {100 * m['f1']:.1f} | "
            f"{100 * m.get('op_f1', 0):.1f} | {classes} | {distance} | {ms:.1f} |"
        )


if __name__ == "__main__":
    main()
