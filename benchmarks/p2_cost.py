"""What the stride-4 level (P2) costs: GMAC and ms per frame with and without it, side by side.

    python benchmarks/p2_cost.py [--width 0.25] [--repeats 30]

For each input size (320x256, 640x512) and each host (`yolox-s`, `mf-residual` T=3), the model is
built twice from one seed (P2 off / on) and its single-frame forward (`[1, T, 3, H, W]`, the
streamed per-frame work of yolox-s; the whole clip for mf-residual) is timed interleaved, one
thread, median and p90 of `--repeats` calls, with the machine's load printed beside (figures on a
loaded machine are only comparable within one run).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from mistd.models.complexity import count_macs
from mistd.models.zoo import build_model


def _load() -> str:
    one, five, _ = os.getloadavg()
    try:
        with open("/proc/pressure/cpu") as f:
            some = f.readline().split()[1]
    except OSError:
        some = "avg10=?"
    return f"load {one:.2f} / {five:.2f}, cpu pressure {some}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(_load())
    print("| host | input | P2 | GMAC | ms median | ms p90 | ratio (on / off) |")
    print("|---|---|---|---|---|---|---|")
    for name in ("yolox-s", "mf-residual"):
        for h, w in ((256, 320), (512, 640)):
            models = {}
            for p2 in (False, True):
                torch.manual_seed(0)
                model, cfg = build_model(name, {"width": args.width, "p2": p2})
                models[p2] = (model.eval(), torch.randn(1, cfg.num_frames, 3, h, w))
            macs = {p2: count_macs(m, x) / 1e9 for p2, (m, x) in models.items()}
            times: dict[bool, list[float]] = {False: [], True: []}
            with torch.no_grad():
                for m, x in models.values():  # warm-up
                    m(x)
                for _ in range(args.repeats):
                    for p2, (m, x) in models.items():  # interleaved
                        start = time.perf_counter()
                        m(x)
                        times[p2].append(1000 * (time.perf_counter() - start))
            medians = {p2: float(np.median(t)) for p2, t in times.items()}
            for p2 in (False, True):
                ratio = f"{medians[True] / medians[False]:.2f}x" if p2 else ""
                print(
                    f"| {name} | {w}x{h} | {'on' if p2 else 'off'} | {macs[p2]:.2f} | "
                    f"{medians[p2]:.1f} | {np.percentile(times[p2], 90):.1f} | {ratio} |"
                )
    print(_load())


if __name__ == "__main__":
    main()
