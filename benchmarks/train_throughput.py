"""Training throughput (clips/s, forward + backward + AdamW step) of zoo models on this machine.

    python benchmarks/train_throughput.py                     # yolox-s and mf-baseline, 256x256
    python benchmarks/train_throughput.py --models chal --size 512 --batch 4 --amp bf16

Random clips with one 8x8 target per key frame; the official recipe's optimizer and loss. Not run
by CI (slow). Prints one table row per model.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from mistd.engine.trainer import build_optimizer
from mistd.models.zoo import build_model
from mistd.run_config import TrainConfig


def measure(name: str, size: int, batch: int, steps: int, warmup: int, amp: str, device: str):
    model, cfg = build_model(name, {"input_size": [size, size]})
    model = model.to(device).train()
    optimizer = build_optimizer(model, TrainConfig())
    t = cfg.num_frames
    clip = torch.randn(batch, t, 3, size, size, device=device)
    targets = [torch.tensor([[0.0, size / 2, size / 2, 8.0, 8.0]], device=device)] * batch
    autocast = (
        torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
        if amp == "bf16"
        else contextlib.nullcontext()
    )
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        with autocast:
            loss = model.loss(clip, targets)["total"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    median = sorted(times)[len(times) // 2]
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return t, params, median, batch / median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["yolox-s", "mf-baseline"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--amp", choices=["off", "bf16"], default="off")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"device {args.device}, {torch.get_num_threads()} threads, input {args.size}x{args.size}, "
        f"batch {args.batch}, amp {args.amp}, median of {args.steps} steps"
    )
    print(f"{'model':<14}{'T':>3}{'params (M)':>12}{'s/step':>9}{'clips/s':>9}")
    for name in args.models:
        t, params, step, rate = measure(
            name, args.size, args.batch, args.steps, args.warmup, args.amp, args.device
        )
        print(f"{name:<14}{t:>3}{params:>12.2f}{step:>9.3f}{rate:>9.2f}")


if __name__ == "__main__":
    main()
