"""BP-FPN ablation on synthetic `hard` infrared clips, and BP-FPN's size/arithmetic overhead.

Ablation: the same host (default `mf-baseline`, tiny width) trained with the same budget, data
order and seeds, with BP-FPN's parts switched on one at a time; each row is evaluated on a held-out
generated split (different generator seed) with the official protocol
(`mistd.evaluation.coco.COCOEvaluator`: mAP50, F1). Training is a minimal loop on the model's own
`loss` (AdamW, linear warm-up + cosine), so every row differs only in its model config.

    python benchmarks/bpfpn_ablation.py                         # ablation + overhead tables
    python benchmarks/bpfpn_ablation.py --steps 300 --seeds 0 1 2 --rows host gils dgr-a
    python benchmarks/bpfpn_ablation.py --overhead-only         # params / GMAC at 512 per host
    python benchmarks/bpfpn_ablation.py --init yolox.pt         # every row starts from weights
    python benchmarks/bpfpn_ablation.py --host chal --rows host no-snf no-hal no-crg  # CHAL parts

`--init` loads a checkpoint (e.g. a single-frame yolox-s trained on other `hard` sequences, as the
official CHAL recipe starts from a pretrained checkpoint) into every row where names and shapes
agree: the backbone and PAFPN; BP-FPN's own modules keep their (zero-initialised) start.

Overhead: parameters and GMAC (`mistd.models.complexity`) of each host at 512x512 with and without
BP-FPN (GILS + DGR A; DGR adds no parameters and no inference arithmetic).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mistd.data.clips import causal_window
from mistd.data.synth.config import preset_config
from mistd.data.synth.generate import generate_sequence, sequence_rngs
from mistd.data.transforms import to_model_input
from mistd.evaluation.coco import COCOEvaluator
from mistd.io import write_text_atomic
from mistd.models.complexity import count_macs, count_parameters
from mistd.models.zoo import build_model
from mistd.structures import FrameRecord
from mistd.weights import load_initial_weights

ROWS: dict[str, dict] = {
    "host": {},
    "ls": {"gils": "ls"},
    "gils": {"gils": "gils"},
    "gils-strided": {"gils": "gils", "gils_down": "strided"},
    "dgr-a": {"loss": {"dgr": "a"}},
    "dgr-b": {"loss": {"dgr": "b"}},
    "gils+dgr-a": {"gils": "gils", "loss": {"dgr": "a"}},
    "gils+dgr-b": {"gils": "gils", "loss": {"dgr": "b"}},
    # CHAL's own ablation (host chal): the same step-matched protocol without one part.
    "no-snf": {"snf": False},
    "no-hal": {"hal": False},
    "no-crg": {"crg": False},
}
DEFAULT_ROWS = ("host", "ls", "gils", "dgr-a", "dgr-b", "gils+dgr-a")


@dataclass
class Split:
    """Model-input clips `[N, T, 3, H, W]`, their targets and the key frames' records."""

    clips: torch.Tensor
    targets: list[torch.Tensor]
    records: list[FrameRecord]
    sequences: list[np.ndarray]  # raw frames [N, H, W] of each sequence (classical detectors)
    bit_depth: int = 8


def make_split(
    name: str,
    seed: int,
    sequences: int,
    frames: int,
    size: int,
    num_frames: int,
    image_id: int,
    preset: str = "hard",
) -> Split:
    """Generate `sequences` sequences of synthetic `preset` and cut every frame into a causal
    clip (key frame last, the earliest frame repeated at a sequence start)."""
    cfg = preset_config(preset, height=size, width=size, num_frames=frames)
    clips, targets, records, raws = [], [], [], []
    for s, rng in enumerate(sequence_rngs(seed, sequences)):
        raw, truths = generate_sequence(cfg, rng)
        raws.append(raw)
        tensor, info = to_model_input(raw, cfg.bit_depth, (size, size))
        assert info.scale == 1.0 and info.pad_x == 0 and info.pad_y == 0  # input = original px
        for k, truth in enumerate(truths):
            clips.append(tensor[causal_window(k, num_frames)])
            boxes = torch.from_numpy(truth.boxes).float().reshape(-1, 4)
            cxcywh = torch.cat([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1)
            targets.append(torch.cat([torch.zeros(len(boxes), 1), cxcywh], 1))
            records.append(
                FrameRecord(
                    sequence=f"{name}{s:03d}",
                    index=k,
                    boxes=truth.boxes.astype(np.float32),
                    labels=truth.labels,
                    width=size,
                    height=size,
                    image_id=image_id,
                )
            )
            image_id += 1
    return Split(torch.stack(clips), targets, records, raws, cfg.bit_depth)


def evaluate_classical(val: Split) -> dict[str, dict]:
    """mAP50/F1 of each classical detector on the same held-out split (causal windows)."""
    from mistd.classical import CLASSICAL

    results = {}
    for name, make in CLASSICAL.items():
        detector = make()
        evaluator = COCOEvaluator(class_names=["target"])
        i = 0
        for raw in val.sequences:
            for k in range(len(raw)):
                window = raw[causal_window(k, detector.num_frames)]
                evaluator.process([val.records[i]], [detector.detect(window, val.bit_depth)])
                i += 1
        metrics = evaluator.compute()
        results[name] = {"mAP50": float(metrics["mAP50"]), "f1": float(metrics["f1"])}
    return results


def train_and_evaluate(
    host: str, overrides: dict, seed: int, train: Split, val: Split, args: argparse.Namespace
) -> dict:
    base = {
        "width": args.width,
        "input_size": [args.size, args.size],
        "num_frames": args.frames,
    }
    merged = {**base, **overrides}
    if "loss" in overrides:
        merged["loss"] = {**overrides["loss"], "dgr_weight": args.dgr_weight}
    torch.manual_seed(seed)
    model, _ = build_model(host, merged)
    if args.init:
        load_initial_weights(model, args.init)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    order = torch.Generator().manual_seed(seed)  # same data order for every row of a seed
    n = len(train.targets)
    perm, cursor = torch.randperm(n, generator=order), 0
    dgr_values = []
    model.train()
    start = time.perf_counter()
    for step in range(args.steps):
        lr_scale = (
            (step + 1) / args.warmup
            if step < args.warmup
            else 0.5
            * (1 + math.cos(math.pi * (step - args.warmup) / max(args.steps - args.warmup, 1)))
        )
        for group in optimizer.param_groups:
            group["lr"] = args.lr * lr_scale
        if cursor + args.batch > n:
            perm, cursor = torch.randperm(n, generator=order), 0
        index = perm[cursor : cursor + args.batch]
        cursor += args.batch
        clips = train.clips[index]
        if args.frames == 1 or host.startswith("yolox"):
            clips = clips[:, -args.frames :]
        losses = model.loss(clips, [train.targets[i] for i in index])
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()
        if "dgr" in losses:
            dgr_values.append(float(losses["dgr"]))
    train_s = time.perf_counter() - start

    model.eval()
    evaluator = COCOEvaluator(class_names=["target"])
    with torch.no_grad():
        for i in range(0, len(val.targets), 32):
            detections = model.predict(val.clips[i : i + 32], decode_floor=0.001, nms_iou=0.65)
            evaluator.process(val.records[i : i + 32], detections)
    metrics = evaluator.compute()
    return {
        "mAP50": float(metrics["mAP50"]),
        "f1": float(metrics["f1"]),
        "final_loss": float(losses["total"].detach()),
        "dgr_first_last": (dgr_values[0], dgr_values[-1]) if dgr_values else None,
        "train_s": train_s,
    }


def overhead_table(size: int) -> list[tuple]:
    """(host, params, +params, %, GMAC, +GMAC, %) at `size` x `size`, width 0.5 (YOLOX-S)."""
    rows = []
    for host, frames in (("yolox-s", 1), ("mf-baseline", 5), ("chal", 5)):
        clip = torch.zeros(1, frames, 3, size, size)
        stats = []
        for bp in ({}, {"gils": "gils", "loss": {"dgr": "a"}}):
            torch.manual_seed(0)
            model, _ = build_model(host, {"input_size": [size, size], **bp})
            model.eval()
            stats.append((count_parameters(model), count_macs(model, clip)))
        (p0, m0), (p1, m1) = stats
        rows.append(
            (
                host,
                p0,
                p1 - p0,
                100 * (p1 - p0) / p0,
                m0 / 1e9,
                (m1 - m0) / 1e9,
                100 * (m1 - m0) / m0,
            )
        )
    return rows


def print_table(results: dict[str, list[dict]]) -> None:
    """Markdown table: mean ± sd over seeds of each row's mAP50 and F1."""
    print()
    print("| row | seeds | mAP50 (mean ± sd) | F1 (mean ± sd) | per-seed mAP50 |")
    print("|---|---|---|---|---|")
    for row, rs in results.items():
        m = [r["mAP50"] for r in rs]
        f = [r["f1"] for r in rs]
        sd = statistics.stdev(m) if len(m) > 1 else 0.0
        sdf = statistics.stdev(f) if len(f) > 1 else 0.0
        print(
            f"| {row} | {len(rs)} | {statistics.mean(m):.4f} ± {sd:.4f} | "
            f"{statistics.mean(f):.4f} ± {sdf:.4f} | {', '.join(f'{x:.4f}' for x in m)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--host", default="mf-baseline")
    parser.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS), choices=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=3, help="clip length T")
    parser.add_argument("--train-sequences", type=int, default=12)
    parser.add_argument("--val-sequences", type=int, default=6)
    parser.add_argument("--sequence-frames", type=int, default=40)
    parser.add_argument("--data-seed", type=int, default=100)
    parser.add_argument("--preset", default="hard", choices=["easy", "medium", "hard"])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--dgr-weight", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--init", default="", help="start every row from these weights")
    parser.add_argument(
        "--classical", action="store_true", help="also score the classical detectors on the split"
    )
    parser.add_argument("--overhead-only", action="store_true")
    parser.add_argument("--no-overhead", action="store_true")
    parser.add_argument("--json", help="also write the per-run results to this JSON file")
    parser.add_argument(
        "--merge", nargs="+", help="print the table of JSON files written by --json (no training)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.merge:
        merged: dict[str, list[dict]] = {}
        for path in args.merge:
            for row, runs in json.loads(Path(path).read_text()).items():
                merged.setdefault(row, []).extend(runs)
        print_table(merged)
    elif not args.overhead_only:
        t0 = time.perf_counter()
        train = make_split(
            "train",
            args.data_seed,
            args.train_sequences,
            args.sequence_frames,
            args.size,
            args.frames,
            image_id=1,
            preset=args.preset,
        )
        val = make_split(
            "val",
            args.data_seed + 1,
            args.val_sequences,
            args.sequence_frames,
            args.size,
            args.frames,
            image_id=1,
            preset=args.preset,
        )
        num_val_targets = sum(len(t) for t in val.targets)
        print(
            f"data: {len(train.targets)} train / {len(val.targets)} val clips "
            f"({num_val_targets} val targets), {args.preset} preset {args.size}x{args.size}, "
            f"T={args.frames}, {time.perf_counter() - t0:.1f}s"
        )
        print(
            f"host {args.host} width {args.width}, {args.steps} steps x batch {args.batch}, "
            f"AdamW lr {args.lr}, seeds {args.seeds}, dgr_weight {args.dgr_weight}, "
            f"start {args.init or 'scratch'}"
        )
        results: dict[str, list[dict]] = {}
        for row in args.rows:
            for seed in args.seeds:
                r = train_and_evaluate(args.host, ROWS[row], seed, train, val, args)
                r["seed"] = seed
                results.setdefault(row, []).append(r)
                dgr = r["dgr_first_last"]
                dgr_text = f" dgr {dgr[0]:.3f}->{dgr[1]:.3f}" if dgr else ""
                print(
                    f"  {row:<13} seed {seed}: mAP50 {r['mAP50']:.4f} F1 {r['f1']:.4f} "
                    f"loss {r['final_loss']:.3f}{dgr_text} ({r['train_s']:.0f}s)",
                    flush=True,
                )
                if args.json:  # rewritten after every run, so a killed grid keeps its rows
                    write_text_atomic(args.json, json.dumps(results, indent=1))
        print_table(results)
        if args.classical:
            for name, metrics in evaluate_classical(val).items():
                print(
                    f"| classical {name} | - | {metrics['mAP50']:.4f} | {metrics['f1']:.4f} | - |"
                )

    if not args.no_overhead and not args.merge:
        print()
        print("| host @512 | params | +BP-FPN params | % | GMAC | +GMAC | % |")
        print("|---|---|---|---|---|---|---|")
        for host, p0, dp, pp, m0, dm, pm in overhead_table(512):
            print(f"| {host} | {p0:,} | {dp:,} | {pp:.2f} | {m0:.2f} | {dm:.3f} | {pm:.2f} |")


if __name__ == "__main__":
    main()
