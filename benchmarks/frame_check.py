"""How a model's frame-check settings (`mistd.frame_check`) were chosen: every setting on every
real set, from one pass of the model per set.

    python benchmarks/frame_check.py yolox-gen-s [--sets "drone_ir val sample" ...]
        [--scales 0 10 30 100] [--margins 0 2] [--json runs/frame_check/yolox-gen-s.json]

The model runs once per set with the frame check off, every box above the decoding floor kept
with its frame; then each setting (regrow off / on x contrast scale) re-measures those boxes
(`FrameCheckStage`, as `Predictor` runs it; regrow at each `--margins`) and is scored with the
official protocol:
mAP50 / best F1 and the best-F1 threshold. The sets are those of `cross_camera.py`; choose on
the val splits (drone_ir val sample, SIRST-V2 val): `anti_uav 4.avi` and `daub data20` are
shown, not chosen on (the models are judged on other footage of those kinds).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
from pathlib import Path

from cross_camera import SETS


def raw_results(model: str, column: str, real: str):
    """`(dataset, [Results with .frame and .record])` of `model` on `column`, frame check off."""
    from mistd.data.readers import read_dataset
    from mistd.evaluation.runner import detect_sequences, predict_sampled
    from mistd.inference.predictor import Predictor

    spec = SETS[column]
    # class-agnostic, as the papers (and cross_camera.py's cells) score: every box a target
    predictor = Predictor(model, keep_all=True, frame_check=False, merge_classes=True)
    root = f"{real}/{spec['root']}" if "root" in spec else None
    data = read_dataset(
        f"{real}/{spec['data']}", root=root, select=spec.get("select"), classes="target"
    )
    if "sample" in spec:
        return data, predict_sampled(predictor, data, spec["sample"])
    return data, list(detect_sequences(predictor, data, progress=False))


def scored(data, found, operating: float) -> dict:
    """Official mAP50 / best F1 / best-F1 threshold of `found` on `data`."""
    from mistd.evaluation.coco import COCOEvaluator

    evaluator = COCOEvaluator(data.class_names, operating_threshold=operating)
    evaluator.process([r.record for r in found], [r.to_detections() for r in found])
    with contextlib.redirect_stdout(io.StringIO()):
        metrics = evaluator.compute()
    return {k: metrics.get(k) for k in ("mAP50", "f1", "best_f1", "best_f1_threshold", "op_f1")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    parser.add_argument("--scales", type=float, nargs="*", default=[0.0, 10.0, 30.0, 100.0])
    parser.add_argument("--margins", type=float, nargs="*", default=[2.0])
    parser.add_argument("--real", default="../shared/data/real")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from mistd.frame_check import FrameCheck, FrameCheckStage
    from mistd.io import write_text_atomic
    from mistd.weights import read_weights

    operating = read_weights(args.model).thresholds.operating
    settings = [FrameCheck(False, scale) for scale in args.scales] + [
        FrameCheck(True, scale, margin) for margin in args.margins for scale in args.scales
    ]
    table: dict[str, dict[str, dict]] = {}
    for column in args.sets:
        data, found = raw_results(args.model, column, args.real)
        for check in settings:
            stage = FrameCheckStage(check)
            checked = [stage(r) if check.enabled else r for r in found]
            key = f"contrast={check.contrast_scale:g} regrow=" + (
                f"on margin={check.margin:g}" if check.regrow else "off"
            )
            table.setdefault(key, {})[column] = scored(data, checked, operating)
            cell = table[key][column]
            print(
                f"{column:22s} {key:28s} mAP50 {100 * cell['mAP50']:5.1f}  "
                f"F1 {100 * cell['f1']:5.1f}  best-F1 thr {cell['best_f1_threshold']:.3f}",
                flush=True,
            )
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(args.json, json.dumps(table, indent=1))
    print(f"\n{args.model}: mAP50 / F1 (best-F1 threshold)")
    print("| setting | " + " | ".join(args.sets) + " |")
    print("|---|" + "---|" * len(args.sets))
    for key, row in table.items():
        cells = [
            f"{100 * c['mAP50']:.1f} / {100 * c['f1']:.1f} ({c['best_f1_threshold']:.2f})"
            if (c := row.get(column))
            else "-"
            for column in args.sets
        ]
        print(f"| {key} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
