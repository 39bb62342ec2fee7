"""Turn trained runs into the weights shipped inside the package.

    python benchmarks/make_shipped_weights.py \
        --run yolox-gen-s=runs/gen-p2-stage2 --threshold yolox-gen-s=0.3 \
        --frame-check yolox-gen-s=on,100 \
        --run yolox-ir-s=runs/real/yolox-s-seed0 \
        --run mf-baseline-ir-s=runs/real/mf-baseline-seed0-300 \
        --run chal-ir-s=runs/real/chal-seed0-300

For each `NAME=RUN_DIR`: takes the run's last checkpoint, keeps only the EMA weights (float16,
so the package stays small), the run's config (input size, classes, recipe), its thresholds and
frame-check settings (`--threshold`, `--frame-check NAME=REGROW,SCALE`: `mistd.frame_check`,
chosen with `benchmarks/frame_check.py` on val splits), writes
`src/mistd/weights/NAME.pt`, then scores it streamed on the real demo clip shipped in the package
(the floor `tests/test_shipped_weights.py` checks) and prints file size, parameters and those
numbers. The model cards (`src/mistd/weights/README.md`) take their validation and cross-data-set
numbers from `benchmarks/real_recipe.sh eval RUN` and are edited by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mistd.checkpoint import checkpoint_weights, load_checkpoint, save_checkpoint
from mistd.data.readers import read_dataset
from mistd.frame_check import FrameCheck
from mistd.inference.detector import load_detector
from mistd.inference.predictor import Predictor
from mistd.io import write_text_atomic
from mistd.models.complexity import count_parameters

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "src" / "mistd" / "weights"


def ship(
    name: str, run_dir: Path, threshold: float | None = None, frame_check: dict | None = None
) -> Path:
    data = load_checkpoint(run_dir / "weights" / "last.pt")
    state = {
        k: v.half() if v.is_floating_point() else v for k, v in checkpoint_weights(data).items()
    }
    config = data["config"]
    config["train"]["init_weights"] = ""  # a local path of the machine that trained it
    for key in ("train", "val", "root"):  # data paths of that machine: keep the data set's name
        if config["data"].get(key):
            config["data"][key] = Path(str(config["data"][key])).name
    for source in config["data"].get("sources", []):
        for key in ("path", "root", "val"):
            if source.get(key):
                source[key] = Path(str(source[key])).name
    out = WEIGHTS_DIR / f"{name}.pt"
    save_checkpoint(
        out,
        {
            "mistd_version": data["mistd_version"],
            "model": data["model"],
            "config": config,
            "state_dict": state,
            "trained": {"iterations": data.get("iteration"), "source_run": run_dir.name},
            **({"thresholds": thresholds} if (thresholds := _thresholds(data, threshold)) else {}),
            **({"frame_check": frame_check} if frame_check else {}),
        },
    )
    return out


def _thresholds(checkpoint: dict, threshold: float | None) -> dict | None:
    """`--threshold` (one score for display, operating point and tracks, chosen on validation
    data) or what the run's checkpoint recorded."""
    if threshold is not None:
        return {"display": threshold, "operating": threshold, "track": threshold}
    return checkpoint.get("thresholds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="NAME=RUN_DIR")
    parser.add_argument(
        "--threshold",
        action="append",
        default=[],
        help="NAME=SCORE: the model's display / operating / track threshold (best F1 on val)",
    )
    parser.add_argument(
        "--frame-check",
        action="append",
        default=[],
        help="NAME=REGROW,SCALE (on|off, contrast scale): the model's frame check (on val)",
    )
    parser.add_argument("--json", default="runs/real/shipped_weights.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from mistd.demo import demo_clip
    from mistd.evaluation.runner import data_classes_for, evaluate_with_breakdown

    results = {}
    thresholds = {k: float(v) for k, _, v in (t.partition("=") for t in args.threshold)}
    checks = {}
    for item in args.frame_check:
        name, _, value = item.partition("=")
        regrow, _, scale = value.partition(",")
        checks[name] = FrameCheck(regrow == "on", float(scale or 0)).to_dict()
    for item in args.run:
        name, _, run = item.partition("=")
        path = ship(name, Path(run), thresholds.get(name), checks.get(name))
        detector = Predictor(name, keep_all=True)  # as `mistd eval --weights NAME` runs it
        clip = read_dataset(demo_clip(), classes=data_classes_for(detector))
        metrics, _ = evaluate_with_breakdown(detector, clip, progress=False)  # streamed
        agnostic = metrics.get("breakdown", {}).get("class_agnostic", metrics)
        results[name] = {
            "file_mb": round(path.stat().st_size / 2**20, 2),
            "params": count_parameters(load_detector(name).model),
            "demo_clip": {k: agnostic[k] for k in ("mAP50", "f1", "op_f1")},
            "ms_per_frame": metrics["ms_per_frame"],
        }
        print(name, json.dumps(results[name], indent=1))
    write_text_atomic(args.json, json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
