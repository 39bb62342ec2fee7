"""One table: every shipped model and the classical detectors on every kind of real footage.

    python benchmarks/cross_camera.py [--models yolox-gen-s tophat ...] [--workers 2]
        [--json runs/cross_camera.json]

Rows: the shipped weights (`mistd.list_models()["shipped"]`) and the classical detectors
(tophat, mpcm, temporal). Columns, each scored as `mistd eval` scores it with its defaults
(trained models at the frames' own size, the model's own operating threshold for F1@op):

- drone_ir val sample: 570 key frames spread over the 57 val clips of the thermal drone data set,
  each with its causal window (the sample training evaluates; streaming all 17,871 frames with
  `mistd eval --weights W --data drone_ir --select val` costs ~30x more);
- anti_uav 4.avi: 501 frames, 640x512, another camera with burned-in text
  (`mistd eval --weights W --data anti_uav/4.avi`);
- daub data20: 100 frames of a DAUB test sequence, 2-5 px targets (8x8 boxes) over ground
  clutter (`mistd eval --weights W --data daub_data20/coco_val_DAUB_data20.txt --root
  daub_data20`);
- sirst_v2 val: 157 single frames of many sensors, 132 with 2-14 px targets, 25 without
  (`mistd eval --weights W --data sirst_v2 --select val`).

Each cell: mAP50 / F1 (the protocol's F1: best over score thresholds), and for SIRST-V2 the mask
Pd / Fa at the model's operating threshold. Cells are cached in `--json` (a rerun computes only
the missing ones; `--fresh` recomputes). Real data comes from `../shared/data/real` (`--real`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

CLASSICAL = ("tophat", "mpcm", "temporal")
SETS = {
    "drone_ir val sample": {"data": "drone_ir", "select": "val", "sample": 570},
    "anti_uav 4.avi": {"data": "anti_uav/4.avi"},
    "daub data20": {"data": "daub_data20/coco_val_DAUB_data20.txt", "root": "daub_data20"},
    "sirst_v2 val": {"data": "sirst_v2", "select": "val"},
}


def score(model: str, column: str, real: str) -> dict:
    """One cell: the metrics of `model` on the data set of `column` (default settings)."""
    import torch

    torch.set_num_threads(1)
    from mistd.data.readers import read_dataset
    from mistd.evaluation.runner import data_classes_for, evaluate_sampled, evaluate_with_breakdown
    from mistd.inference.predictor import Predictor

    spec = SETS[column]
    predictor = Predictor(model, keep_all=True)
    root = f"{real}/{spec['root']}" if "root" in spec else None
    data = read_dataset(
        f"{real}/{spec['data']}",
        root=root,
        select=spec.get("select"),
        classes=data_classes_for(predictor),
    )
    start = time.perf_counter()
    if "sample" in spec:
        metrics = evaluate_sampled(predictor, data, spec["sample"])
    else:
        metrics, _ = evaluate_with_breakdown(predictor, data, progress=False)
    agnostic = metrics.get("breakdown", {}).get("class_agnostic", metrics)
    cell = {
        "mAP50": agnostic["mAP50"],
        "f1": agnostic["f1"],
        "op_f1": agnostic.get("op_f1"),
        "operating": predictor.thresholds.operating,
        "seconds": round(time.perf_counter() - start, 1),
    }
    for key in ("pd", "fa", "best_f1_threshold"):
        if key in metrics:
            cell[key] = metrics[key]
    return cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="default: shipped + classical")
    parser.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    parser.add_argument("--real", default="../shared/data/real")
    parser.add_argument("--json", type=Path, default=Path("runs/cross_camera.json"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    import mistd

    models = args.models or [*mistd.list_models()["shipped"], *CLASSICAL]
    results = {} if args.fresh or not args.json.exists() else json.loads(args.json.read_text())
    todo = [(m, c) for m in models for c in args.sets if c not in results.get(m, {})]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        futures = {(m, c): pool.submit(score, m, c, args.real) for m, c in todo}
        for (model, column), future in futures.items():
            results.setdefault(model, {})[column] = future.result()
            args.json.parent.mkdir(parents=True, exist_ok=True)
            tmp = args.json.with_suffix(".tmp")
            tmp.write_text(json.dumps(results, indent=1))
            tmp.replace(args.json)
            cell = results[model][column]
            mean = f"mAP50 {100 * cell['mAP50']:5.1f}  F1 {100 * cell['f1']:5.1f}"
            print(f"{model:20s} {column:22s} {mean}")
    print()
    print("| model | " + " | ".join(f"{c} mAP50 / F1" for c in args.sets) + " |")
    print("|---|" + "---|" * len(args.sets))
    for model in models:
        cells = []
        for column in args.sets:
            cell = results.get(model, {}).get(column)
            if cell is None:
                cells.append("-")
                continue
            text = f"{100 * cell['mAP50']:.1f} / {100 * cell['f1']:.1f}"
            if "pd" in cell:
                text += f" (Pd {100 * cell['pd']:.1f}, Fa {cell['fa']:.1e})"
            cells.append(text)
        print(f"| {model} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
