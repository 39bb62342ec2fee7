"""What resolution for tiny targets costs: GMAC and ms per frame of the stride-4 level (P2) with
and without it, and of the full-resolution `tinyseg`, side by side.

    python benchmarks/p2_cost.py [--width 0.25] [--repeats 30]

For each input size (320x256, 640x512) and each host (`yolox-s`, `mf-residual` and `chal` T=3;
`--hosts`), the model is built twice from one seed (P2 off / on) and its forward (`[1, T, 3,
H, W]`: the streamed per-frame work of yolox-s; the whole clip for the others) is timed
interleaved, one thread, median and p90 of `--repeats` calls, with the machine's load printed
beside (figures on a loaded machine are only comparable within one run). Then `tinyseg` at full
resolution (`input_stride` 1, the first `tinyseg-gen-s`) and on 2x2 sub-images (`input_stride`
2, the shipped one) interleaved with yolox-s with P2 (the shipped `yolox-gen-s`'s network).
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


def time_interleaved(models: dict, repeats: int) -> dict:
    """`{key: [ms per call]}` of each `(model, input)` of `models`, called in turn `repeats`
    times after one warm-up call each."""
    times: dict = {key: [] for key in models}
    with torch.no_grad():
        for m, x in models.values():
            m(x)
        for _ in range(repeats):
            for key, (m, x) in models.items():
                start = time.perf_counter()
                m(x)
                times[key].append(1000 * (time.perf_counter() - start))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--hosts", nargs="*", default=["yolox-s", "mf-residual", "chal"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(_load())
    print("| host | input | P2 | GMAC | ms median | ms p90 | ratio (on / off) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.hosts:
        for h, w in ((256, 320), (512, 640)):
            models = {}
            for p2 in (False, True):
                torch.manual_seed(0)
                # CHAL as chal-ir-s: 3 frames (its streamed work is per frame, its clip forward
                # is timed here as mf-residual's)
                frames = {"num_frames": 3} if name == "chal" else {}
                model, cfg = build_model(name, {"width": args.width, "p2": p2, **frames})
                models[p2] = (model.eval(), torch.randn(1, cfg.num_frames, 3, h, w))
            macs = {p2: count_macs(m, x) / 1e9 for p2, (m, x) in models.items()}
            times = time_interleaved(models, args.repeats)
            medians = {p2: float(np.median(t)) for p2, t in times.items()}
            for p2 in (False, True):
                ratio = f"{medians[True] / medians[False]:.2f}x" if p2 else ""
                print(
                    f"| {name} | {w}x{h} | {'on' if p2 else 'off'} | {macs[p2]:.2f} | "
                    f"{medians[p2]:.1f} | {np.percentile(times[p2], 90):.1f} | {ratio} |"
                )
    print("\n| model | input | GMAC | ms median | ms p90 |")
    print("|---|---|---|---|---|")
    for h, w in ((256, 320), (512, 640)):
        torch.manual_seed(0)
        models = {
            "yolox-s P2": (
                build_model("yolox-s", {"width": args.width, "p2": True})[0].eval(),
                torch.randn(1, 1, 3, h, w),
            ),
            "tinyseg": (build_model("tinyseg")[0].eval(), torch.randn(1, 1, 3, h, w)),
            "tinyseg input_stride 2": (
                build_model("tinyseg", {"input_stride": 2})[0].eval(),
                torch.randn(1, 1, 3, h, w),
            ),
        }
        times = time_interleaved(models, args.repeats)
        for key, (m, x) in models.items():
            print(
                f"| {key} | {w}x{h} | {count_macs(m, x) / 1e9:.2f} | {np.median(times[key]):.1f} "
                f"| {np.percentile(times[key], 90):.1f} |"
            )
    print(_load())


if __name__ == "__main__":
    main()
