"""CPU-scale learning comparison: learned detectors vs classical ones on synthetic data.

Generates a training set and a held-out test set (different seeds) with `mistd data synth`,
trains each learned model for the SAME number of optimisation steps (`--steps`, the trainer's
`train.max_steps`: its warm-up + cosine learning rate spans exactly them, so every model finishes
its schedule), evaluates the EMA weights on the held-out set with the official protocol, runs the
classical detectors on the same set, and prints one table. Not run by CI.

    python benchmarks/learning_comparison.py --preset medium --steps 1000 \
        --models yolox-s mf-baseline --json runs/bench/learning_medium.json
    python benchmarks/learning_comparison.py --preset hard --steps 600 \
        --models chal mf-baseline yolox-s --rows "chal:model.snf=false" ...

Starting point: from scratch (default), or, like the official CHAL recipe (which starts from a
pretrained checkpoint), from a single-frame `yolox-s` trained first on the same training split
(`--pretrain-steps N`, or `--init WEIGHTS` to reuse one): every row then loads its backbone and
pyramid (and the yolox-s row all of it) and fine-tunes for the same budget.

    python benchmarks/learning_comparison.py --preset medium --pretrain-steps 4890 --steps 1800 \
        --lr 1e-3 --models yolox-s mf-baseline chal

Training data: `--train-sequences` (default 160 sequences of 60 frames, generated once and cached
under `--data-dir`). With 16 sequences the models overfit their few backgrounds (yolox-s: mAP50 65
on its training sequences, 24 on held-out ones) and the comparison measures that instead.

A row is `NAME[:key=value,key=value]`, e.g. `chal:snf=false,hal=false`: keys of the model config,
or `train.lr=5e-4` for a per-row peak learning rate (default `--lr`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

from mistd.config import parse_dotted
from mistd.data.readers import read_dataset
from mistd.engine.trainer import Trainer
from mistd.evaluation.runner import evaluate_detector
from mistd.run_config import build_run_config


def synth(out: Path, preset: str, sequences: int, frames: int, size: int, seed: int) -> Path:
    if not (out / "coco.json").exists():
        cmd = [
            sys.executable, "-m", "mistd.cli", "data", "synth", "--out", str(out),
            "--preset", preset, "--sequences", str(sequences), "--frames", str(frames),
            "--size", f"{size}x{size}", "--seed", str(seed), "--overwrite",
        ]  # fmt: skip
        subprocess.run(cmd, check=True)
    return out


def parse_row(text: str) -> tuple[str, str, dict]:
    """`name[:k=v,k=v]` -> (label, zoo name, model overrides, train overrides)."""
    name, _, rest = text.partition(":")
    items = [item for item in rest.split(",") if item]
    train_items = [item.removeprefix("train.") for item in items if item.startswith("train.")]
    model_items = [item for item in items if not item.startswith("train.")]
    return text, name, parse_dotted(model_items), parse_dotted(train_items)


def train_and_evaluate(
    row: str, args, train_dir: Path, test_data, init: str = "", steps: int | None = None
) -> dict:
    label, name, model_overrides, row_train = parse_row(row)
    steps = args.steps if steps is None else steps
    if init:
        row_train.setdefault("init_weights", init)
    model_overrides = {"width": args.width, "input_size": [args.size, args.size], **model_overrides}
    peak_lr = float(row_train.pop("lr", args.lr))
    # A step budget: the trainer's schedule spans `steps` iterations (warm-up from 0.05 x lr over
    # at most 5% of them, then cosine down to 0.02 x lr).
    train_overrides = {
        "max_steps": steps, "epoch_fraction": 1.0, "batch_size": args.batch, "lr": peak_lr,
        "schedule": "cosine", "warmup_lr_ratio": 0.05, "min_lr_ratio": 0.02, "flat_epochs": 0.0,
        "eval_interval": 0, "seed": args.seed, "ema_tau": 200.0, "device": "cpu",
        "log_interval": 20, **row_train,
    }  # fmt: skip
    cfg = build_run_config(
        name,
        {"model": model_overrides, "train": train_overrides, "data": {"workers": 0}},
    )
    train_data = read_dataset(train_dir)
    run_dir = Path(args.runs_dir) / (
        f"{args.preset}-{'ft-' if init else ''}{label.replace(':', '_').replace('=', '-')}"
        + (f"-seed{args.seed}" if args.seed else "")
    )
    trainer = Trainer(cfg, run_dir, train_data=train_data, val_data=None, progress=not args.quiet)
    summary = trainer.train()  # the budget's end writes run_dir/weights/last.pt
    metrics, _ = evaluate_detector(trainer.detector(), test_data, progress=False)
    return {
        "row": label,
        "lr": peak_lr,
        "init": row_train.get("init_weights", ""),
        "run_dir": str(run_dir),
        "iterations": summary["iterations"],
        "clips_seen": summary["iterations"] * args.batch,
        **{k: metrics[k] for k in ("mAP50", "precision", "recall", "f1", "op_f1")},
        "ms_per_frame": metrics.get("ms_per_frame", float("nan")),
    }


def evaluate_classical(test_data) -> list[dict]:
    from mistd.classical import CLASSICAL

    rows = []
    for name, make in CLASSICAL.items():
        metrics, _ = evaluate_detector(make(), test_data, progress=False)
        rows.append(
            {
                "row": f"classical:{name}",
                "iterations": 0,
                "clips_seen": 0,
                **{k: metrics[k] for k in ("mAP50", "precision", "recall", "f1", "op_f1")},
                "ms_per_frame": metrics.get("ms_per_frame", float("nan")),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--models", nargs="+", default=["yolox-s", "mf-baseline"])
    parser.add_argument("--steps", type=int, default=1000, help="training steps per row")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument(
        "--pretrain-steps",
        type=int,
        default=0,
        help="first train yolox-s this many steps; every row starts from it (0: from scratch)",
    )
    parser.add_argument("--pretrain-lr", type=float, default=2e-3)
    parser.add_argument("--init", default="", help="start every row from these weights")
    parser.add_argument(
        "--train-sequences",
        type=int,
        default=160,
        help="training sequences (16 is too few: the models overfit their backgrounds)",
    )
    parser.add_argument("--test-sequences", type=int, default=6)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default="runs/bench/data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs-dir", default="runs/bench/learning", help="checkpoints per row")
    parser.add_argument("--json", default="")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    root = Path(args.data_dir)
    tag = f"{args.preset}-{args.size}"
    train_dir = synth(
        root / f"{tag}-train-{args.train_sequences}seq",
        args.preset,
        args.train_sequences,
        args.frames,
        args.size,
        1000,
    )
    test_dir = synth(
        root / f"{tag}-test", args.preset, args.test_sequences, args.frames, args.size, 2000
    )
    test_data = read_dataset(test_dir)

    init, rows = args.init, []
    if args.pretrain_steps > 0 and not init:
        row = f"yolox-s:train.lr={args.pretrain_lr}"
        pre = train_and_evaluate(row, args, train_dir, test_data, steps=args.pretrain_steps)
        rows.append({**pre, "row": f"pretrain {row}"})
        init = str(Path(pre["run_dir"]) / "weights" / "last.pt")
    rows += [train_and_evaluate(row, args, train_dir, test_data, init) for row in args.models]
    rows += evaluate_classical(test_data)

    columns = ("iters", "mAP50", "P", "R", "F1", "opF1", "ms/f")
    header = f"{'row':40s} {columns[0]:>6s} " + " ".join(f"{c:>7s}" for c in columns[1:])
    print(
        f"\npreset={args.preset} size={args.size} width={args.width} budget={args.steps} steps/row"
        f" start={init or 'scratch'}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['row']:40s} {r['iterations']:6d} {r['mAP50']:7.4f} {r['precision']:7.4f} "
            f"{r['recall']:7.4f} {r['f1']:7.4f} {r['op_f1']:7.4f} {r['ms_per_frame']:7.1f}"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
