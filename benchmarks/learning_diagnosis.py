"""Why a stride-8 host learns slowly from scratch: loss curves of controlled variants.

Trains each variant for the same number of iterations on the same random clips of a synthetic
training split (`learning_comparison.py` writes it) at a constant learning rate, and prints the
mean losses every `--every` iterations. The regression loss and the number of SimOTA positives
(`num_fg`; it stays at one per target until predicted boxes overlap the targets) show whether a
model is learning to localise.

    python benchmarks/learning_diagnosis.py --variants yolox-s mf-baseline:num_frames=1 \
        "mf-baseline:num_frames=1,no_fold" "mf-baseline:init=runs/.../last.pt"

A variant is `NAME[:key=value,...]` with model-config keys, plus `no_fold` (the head reads the
per-frame P3 directly instead of the top-down fold; mf-baseline only) and `init=WEIGHTS` (start
from these weights where names and shapes agree).
"""

from __future__ import annotations

import argparse
import random
import time

import torch

from mistd.config import parse_dotted
from mistd.data.clips import ClipTrainingSet, collate_clips
from mistd.data.readers import read_dataset
from mistd.models.zoo import build_model
from mistd.weights import load_initial_weights


def bypass_fold(model: torch.nn.Module) -> None:
    """Make the model's fold return P3 unchanged (the coarse levels are ignored)."""
    model.fold.forward = lambda levels: (levels[0], levels[1], levels[2])


def run_variant(text: str, args: argparse.Namespace) -> list[tuple[int, dict[str, float]]]:
    name, _, rest = text.partition(":")
    items = [item for item in rest.split(",") if item]
    no_fold = "no_fold" in items
    init = next((i.split("=", 1)[1] for i in items if i.startswith("init=")), "")
    overrides = parse_dotted([i for i in items if i != "no_fold" and not i.startswith("init=")])
    torch.manual_seed(args.seed)
    model, cfg = build_model(
        name, {"width": args.width, "input_size": [args.size, args.size], **overrides}
    )
    if no_fold:
        bypass_fold(model)
    if init:
        load_initial_weights(model, init)
    data = ClipTrainingSet(read_dataset(args.data), cfg.num_frames, args.size)
    order = random.Random(args.seed)  # the same clips, in the same order, for every variant
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    model.train()
    curve, sums, start = [], {}, time.perf_counter()
    for step in range(1, args.iterations + 1):
        clips, targets, _ = collate_clips(
            [data[order.randrange(len(data))] for _ in range(args.batch)]
        )
        losses = model.loss(clips, targets)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach())
        if step % args.every == 0:
            means = {key: value / args.every for key, value in sums.items()}
            curve.append((step, means))
            sums = {}
            print(
                f"{text:50s} it {step:5d} "
                + " ".join(f"{k} {v:.3f}" for k, v in means.items())
                + f" ({time.perf_counter() - start:.0f}s)",
                flush=True,
            )
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", required=True)
    parser.add_argument("--data", default="runs/bench/data/medium-128-train")
    parser.add_argument("--iterations", type=int, default=360)
    parser.add_argument("--every", type=int, default=60)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {variant: run_variant(variant, args) for variant in args.variants}
    print(
        f"\n{'variant':50s} "
        + " ".join(f"{'reg@' + str(s):>9s}" for s, _ in results[args.variants[0]])
    )
    for variant, curve in results.items():
        print(f"{variant:50s} " + " ".join(f"{m['reg']:9.3f}" for _, m in curve))


if __name__ == "__main__":
    main()
