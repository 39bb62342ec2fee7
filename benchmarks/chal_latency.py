"""Eval-mode forward latency of mistd's `chal` (batch 1, T=5) on CPU, optionally beside the
official implementation.

    python benchmarks/chal_latency.py                       # 256 and 512, 2 threads
    python benchmarks/chal_latency.py --sizes 256 512 --threads 2 --repeats 5
    python benchmarks/chal_latency.py --official /path/to/CHAL   # a checkout of UESTC-nnLab/CHAL

With the shared fidelity fixture beside the checkout (`../shared/fixtures/chal_official`) both
models get its weights; otherwise random weights (latency does not depend on them). The official
code is imported only from the path given with --official (its `nets/module/CBAM.py` must exist
there; the public repository lacks it). Prints a table: size, best and median seconds per clip,
GMACs (with --macs).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from official_chal import chal_model, fixture_state_dict, official_chal

from mistd.inference.bench import interleaved_times
from mistd.models.complexity import count_macs


def timings(
    runs: dict[str, Callable[[], object]], repeats: int
) -> dict[str, tuple[float, float, float]]:
    """{name: (best wall, median wall, best process CPU) seconds} over `repeats` rounds after one
    warm-up round. The models alternate within each round, so that load from other processes hits
    them alike; on a shared machine the best wall time and the CPU time (all threads, less
    sensitive to waiting for a core) are the better estimates of the code's own cost."""
    times = interleaved_times(runs, repeats, warmup=1)
    return {
        name: (min(wall), statistics.median(wall), min(cpu)) for name, (wall, cpu) in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--official", type=Path, default=None, help="official CHAL checkout")
    parser.add_argument("--macs", action="store_true", help="also count GMACs (slow at 512)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    state_dict = fixture_state_dict()
    models = {"mistd chal": chal_model()}
    if args.official is not None:
        models["official"] = official_chal(args.official, state_dict)
    weights = "fixture weights" if state_dict is not None else "random weights"
    print(f"eval forward, batch 1, T=5, {args.threads} threads, {weights}, {args.repeats} runs")
    print(f"{'model':<12} {'size':>5} {'best s':>8} {'median s':>9} {'CPU s':>8} {'GMAC':>8}")
    for size in args.sizes:
        clip = torch.randn(1, 5, 3, size, size)  # mistd layout [B, T, C, H, W]
        inputs = {
            name: clip if name != "official" else clip.permute(0, 2, 1, 3, 4).contiguous()
            for name in models
        }
        with torch.inference_mode():
            runs = {name: (lambda m=m, x=inputs[name]: m(x)) for name, m in models.items()}
            results = timings(runs, args.repeats)
            for name, model in models.items():
                best, median, cpu = results[name]
                macs = count_macs(model, inputs[name]) / 1e9 if args.macs else float("nan")
                print(f"{name:<12} {size:>5} {best:>8.3f} {median:>9.3f} {cpu:>8.3f} {macs:>8.1f}")


if __name__ == "__main__":
    main()
