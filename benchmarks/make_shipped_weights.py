"""Turn trained runs into the weights shipped inside the package, with a measured model card.

    python benchmarks/make_shipped_weights.py \
        --run chal-synth-s=runs/bench/big/medium-ft-chal \
        --run mf-baseline-synth-s=runs/bench/big/medium-ft-mf-baseline --input-size 256

For each `NAME=RUN_DIR`: takes the run's last checkpoint, keeps only the EMA weights (float16,
so the package stays small), sets the inference input size, writes `src/mistd/weights/NAME.pt`,
then evaluates it (streaming, official protocol) on held-out synthetic data generated with seeds
the training never saw and prints (and writes to `--json`) the numbers for the model card,
`src/mistd/weights/README.md`, which is edited by hand (recipe, honest reading).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mistd.data.readers import read_dataset
from mistd.engine.checkpoint import (
    checkpoint_weights,
    load_checkpoint,
    load_detector,
    save_checkpoint,
)
from mistd.evaluation.runner import evaluate_detector
from mistd.inference.video_predictor import streaming_detector
from mistd.io import write_text_atomic
from mistd.models.complexity import count_parameters

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "src" / "mistd" / "weights"


def ship(name: str, run_dir: Path, input_size: int) -> Path:
    data = load_checkpoint(run_dir / "weights" / "last.pt")
    state = {
        k: v.half() if v.is_floating_point() else v for k, v in checkpoint_weights(data).items()
    }
    config = data["config"]
    config["model"]["input_size"] = [input_size, input_size]
    out = WEIGHTS_DIR / f"{name}.pt"
    save_checkpoint(
        out,
        {
            "mistd_version": data["mistd_version"],
            "model": data["model"],
            "config": config,
            "state_dict": state,
            "trained": {"iterations": data.get("iteration"), "source_run": str(run_dir)},
        },
    )
    return out


def evaluate(detector, test_dirs: dict[str, tuple[Path, int]]) -> dict:
    """Held-out metrics of a loaded detector, streamed, on each test folder at its input size
    (the frame size: synthetic targets keep their pixel size, as in training)."""
    rows = {}
    for label, (path, size) in test_dirs.items():
        detector.input_size = (size, size)
        metrics, _ = evaluate_detector(
            streaming_detector(detector), read_dataset(path), progress=False
        )
        rows[label] = {k: metrics[k] for k in ("mAP50", "precision", "recall", "f1", "op_f1")}
        rows[label]["ms_per_frame"] = metrics["ms_per_frame"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, help="NAME=RUN_DIR")
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument("--data-dir", default="runs/bench/data")
    parser.add_argument("--json", default="runs/bench/shipped_weights.json")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from mistd.data.synth import preset_config, write_synthetic_dataset

    test_dirs = {}
    # (label, preset, size, sequences, seed): the learning comparison's held-out split, then
    # card splits at the shipped input size.
    splits = (
        ("medium 128x128 (learning-comparison test)", "medium", 128, 6, 2000),
        ("medium 256x256", "medium", 256, 4, 9256),
        ("hard 256x256", "hard", 256, 4, 9256),
    )
    for label, preset, size, sequences, seed in splits:
        path = Path(args.data_dir) / f"card-{preset}-{size}-seed{seed}"
        if not (path / "coco.json").exists():
            cfg = preset_config(preset, height=size, width=size, num_frames=60)
            write_synthetic_dataset(path, cfg, sequences=sequences, seed=seed, overwrite=True)
        test_dirs[label] = (path, size)

    results = {}
    for item in args.run:
        name, _, run = item.partition("=")
        path = ship(name, Path(run), args.input_size)
        detector = load_detector(name)
        results[name] = {
            "file_mb": round(path.stat().st_size / 2**20, 2),
            "params": count_parameters(detector.model),
            "metrics": evaluate(detector, test_dirs),
        }
        print(name, json.dumps(results[name], indent=1))
    write_text_atomic(args.json, json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
