"""Score and tabulate the CHAL tiny-target ablation (benchmarks/chal_tiny_ablation.sh).

    python benchmarks/chal_tiny_table.py score RUNS/chal-seed0 [--frames 285]   # -> RUNS/eval/
    python benchmarks/chal_tiny_table.py table RUNS [--markdown]

`score` measures one run on the thermal drone val clips (never trained on) shrunk 2x and 4x: the
model runs on each key frame's causal clip letterboxed into 128x160 (320x256 frames halved, 8-32
px targets -> 4-16 px) and into 64x96 (frames quartered to 80x64 and padded; targets 2-8 px), the
same shrinking the training sources apply (`scale: [2, 4]`, area interpolation). `--frames` key
frames spread evenly over the 57 val clips (5 per clip by default; `evaluate_sampled`), official
protocol, class-agnostic. It writes `RUNS/eval/<run>-drone-val-shrunk.json`.

`table` reads those files and `RUNS/eval/<run>-daub20/metrics.json` (`mistd eval` on DAUB data20,
real 2-5 px targets over ground clutter, at the frames' own size: a measurement only) for every
run named `<variant>-seed<N>` and prints mAP50 / F1 per seed and their mean, per variant.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import torch

VARIANTS = ("chal", "chal-no-snf", "chal-no-hal", "chal-no-crg", "mf-baseline", "chal-p2")
SHRINK = {"drone_val_x2": (128, 160), "drone_val_x4": (64, 96)}
COLUMNS = ("daub20", *SHRINK)


def score(run: Path, frames: int, data: str) -> Path:
    from mistd.data.readers import read_dataset
    from mistd.evaluation.runner import evaluate_sampled
    from mistd.inference.predictor import Predictor
    from mistd.io import write_text_atomic

    weights = run / "weights" / "last.pt"
    dataset = read_dataset(data, select="val", classes="target")
    rows = {}
    for name, size in SHRINK.items():
        # clip mode: a streaming Predictor's clip batches run at the trained size, whatever
        # input_size says (its size goes to the stream only)
        predictor = Predictor(str(weights), input_size=size, keep_all=True, stream=False)
        m = evaluate_sampled(predictor, dataset, frames, batch=8)
        rows[name] = {"mAP50": float(m["mAP50"]), "f1": float(m["f1"]), "input_size": size}
        print(f"{run.name} {name} mAP50 {100 * m['mAP50']:.1f} F1 {100 * m['f1']:.1f}", flush=True)
    out = run.parent / "eval" / f"{run.name}-drone-val-shrunk.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, json.dumps({"frames": frames, **rows}, indent=1))
    return out


def _read(runs: Path, run: str) -> dict[str, tuple[float, float]]:
    found = {}
    daub = runs / "eval" / f"{run}-daub20" / "metrics.json"
    if daub.exists():
        m = json.loads(daub.read_text())
        found["daub20"] = (m["mAP50"], m["f1"])
    shrunk = runs / "eval" / f"{run}-drone-val-shrunk.json"
    if shrunk.exists():
        m = json.loads(shrunk.read_text())
        found.update({k: (m[k]["mAP50"], m[k]["f1"]) for k in SHRINK if k in m})
    return found


def table(runs: Path, markdown: bool) -> None:
    seeds = sorted(
        {
            int(m.group(1))
            for p in runs.iterdir()
            if (m := re.fullmatch(r".+-seed(\d+)", p.name)) and (p / "weights" / "last.pt").exists()
        }
    )
    listed = ", ".join(map(str, seeds))
    head = ["variant"] + [f"{c} mAP50 / F1 (seeds {listed}; mean)" for c in COLUMNS]
    lines = []
    for variant in VARIANTS:
        per_seed = {s: _read(runs, f"{variant}-seed{s}") for s in seeds}
        cells = [f"`{variant}`"]
        for column in COLUMNS:
            got = [per_seed[s][column] for s in seeds if column in per_seed[s]]
            if not got:
                cells.append("-")
                continue
            each = ", ".join(f"{100 * a:.1f} / {100 * f:.1f}" for a, f in got)
            mean = np.mean(got, axis=0) * 100
            cells.append(f"{each}; **{mean[0]:.1f} / {mean[1]:.1f}**" if len(got) > 1 else each)
        lines.append(cells)
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for cells in lines:
            print("| " + " | ".join(cells) + " |")
    else:
        for cells in [head, *lines]:
            print("  ".join(f"{c:28s}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score")
    s.add_argument("run", type=Path)
    s.add_argument("--frames", type=int, default=285)
    s.add_argument("--data", default="../shared/data/real/drone_ir")
    t = sub.add_parser("table")
    t.add_argument("runs", type=Path)
    t.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.command == "score":
        score(args.run, args.frames, args.data)
    else:
        table(args.runs, args.markdown)


if __name__ == "__main__":
    main()
