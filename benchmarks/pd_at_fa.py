"""Pd at equal Fa on a mask data set (SIRST-V2 val by default): learned and classical detectors
compared at the same false-alarm rate, not each at its own threshold.

    python benchmarks/pd_at_fa.py yolox-gen-s tophat mpcm [--data ../shared/data/real/sirst_v2
        --select val] [--fa 1e-5 5e-5 1e-4 2e-4 5e-4] [--frame-check auto|on|off]

Each detector runs once over the data (`mistd eval`'s defaults: trained models at the frame's own
size, their own frame check); its boxes are filled into masks at every score threshold where the
result changes (`mistd.evaluation.pdfa`, the box variant: a target is detected when a blob's
centroid lies within 3 px of its centroid; Fa = unmatched blob pixels / all pixels; thresholds:
every 0.01 and `--levels` quantiles of the model's scores), and the
table gives, per Fa level, the highest Pd any threshold reaches with Fa at or below it (the
Pd-Fa curve read at that Fa), plus the threshold.
"""

from __future__ import annotations

import argparse
import os

import cv2
import numpy as np


def pd_fa_curve(found, thresholds: np.ndarray) -> list[tuple[float, float, float]]:
    """`[(threshold, pd, fa)]` of `found` (Results with `.record.mask`) at each threshold."""
    from mistd.evaluation.pdfa import PdFaMetric

    masks = [cv2.imread(str(r.record.mask), cv2.IMREAD_GRAYSCALE) for r in found]
    curve = []
    for threshold in thresholds:
        metric = PdFaMetric()
        for results, mask in zip(found, masks, strict=True):
            metric.update_boxes(results.boxes, results.scores, mask, float(threshold))
        out = metric.compute()
        curve.append((float(threshold), out["pd"], out["fa"]))
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="shipped names, checkpoints or classical names")
    parser.add_argument("--data", default="../shared/data/real/sirst_v2")
    parser.add_argument("--select", default="val")
    parser.add_argument("--fa", type=float, nargs="*", default=[1e-5, 5e-5, 1e-4, 2e-4, 5e-4])
    parser.add_argument("--frame-check", default="auto", help="trained models: auto, on or off")
    parser.add_argument("--levels", type=int, default=60, help="score quantiles per model")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from mistd.classical import CLASSICAL
    from mistd.data.readers import read_dataset
    from mistd.evaluation.runner import data_classes_for, detect_sequences
    from mistd.inference.predictor import Predictor

    rows = {}
    for model in args.models:
        check = None if model in CLASSICAL else args.frame_check
        predictor = Predictor(model, keep_all=True, frame_check=check)
        data = read_dataset(args.data, select=args.select, classes=data_classes_for(predictor))
        if predictor.merges_for(data.class_names):
            predictor.set_merge_classes(True)
        found = list(detect_sequences(predictor, data, progress=False))
        scores = np.concatenate([r.scores for r in found] + [np.zeros(0, np.float32)])
        quantiles = np.quantile(scores[scores >= 0.01], np.linspace(0, 1, args.levels))
        levels = np.unique(np.concatenate([quantiles, np.linspace(0.01, 0.99, 99)]).round(4))
        curve = pd_fa_curve(found, levels)
        cells = []
        for fa in args.fa:
            ok = [(pd, t) for t, pd, f in curve if f <= fa]
            cells.append(max(ok) if ok else None)
        rows[model] = cells
        text = "  ".join(
            f"Fa<={fa:.0e}: " + ("-" if c is None else f"Pd {100 * c[0]:.1f} @{c[1]:.2f}")
            for fa, c in zip(args.fa, cells, strict=True)
        )
        print(f"{model:18s} {text}", flush=True)
    print(f"\nPd (%) at Fa at most ..., {args.data} {args.select} (score threshold)")
    print("| detector | " + " | ".join(f"Fa {fa:.0e}" for fa in args.fa) + " |")
    print("|---|" + "---|" * len(args.fa))
    for model, cells in rows.items():
        text = [("-" if c is None else f"{100 * c[0]:.1f} ({c[1]:.2f})") for c in cells]
        print(f"| {model} | " + " | ".join(text) + " |")


if __name__ == "__main__":
    main()
