"""Per-frame latency of `chal`: clip mode vs streaming (torch) vs streaming (onnxruntime), and
optionally the official implementation's clip forward, interleaved in one process.

    python benchmarks/streaming_speed.py                          # 256 and 512, 1 thread
    python benchmarks/streaming_speed.py --sizes 512 --threads 2 --repeats 7 --bf16
    python benchmarks/streaming_speed.py --official /path/to/CHAL  # + the official forward

Weights: the shared fidelity fixture (`../shared/fixtures/chal_official`) when present, else
random (latency does not depend on weight values). The official code is imported only from the
path given with --official (a checkout of UESTC-nnLab/CHAL with `nets/module/CBAM.py`). Every
mode runs once per round, round after round, so that all see the same load on a shared CPU;
medians (and bests) in ms per frame and the relative error of each streaming mode's outputs vs
clip mode are printed (`mistd.inference.bench`). On a busy 2-core machine use --threads 1:
OpenMP threads that wait for a descheduled peer make 2-thread timings 10-100x slower.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from official_chal import FIXTURE_WEIGHTS, chal_model, fixture_state_dict, official_chal

from mistd.inference.bench import benchmark, format_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="also bf16 autocast streaming")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--official", type=Path, default=None, help="official CHAL checkout")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    official = official_chal(args.official, fixture_state_dict()) if args.official else None
    results = []
    for size in args.sizes:
        model = chal_model(size)
        extra = {}
        if official is not None:
            # official layout [B, C, T, H, W]
            extra["official_clip"] = lambda clip: official(clip.permute(0, 2, 1, 3, 4))
        result = benchmark(
            model,
            (size, size),
            repeats=args.repeats,
            warmup=args.warmup,
            onnx=not args.no_onnx,
            precisions=("bf16",) if args.bf16 else (),
            channels_last=args.channels_last,
            extra_runners=extra,
            log=lambda msg: print(f"... {msg}", file=sys.stderr),
        )
        result["weights"] = "fixture" if FIXTURE_WEIGHTS.is_file() else "random"
        print(format_table(result))
        if official is not None:
            ms, best = result["official_clip_ms"], result["official_clip_best_ms"]
            print(f"{'official clip forward':<34} {ms:>9.1f} {best:>9.1f}")
            for key in ("clip", "stream", "onnx_stream"):
                if result.get(f"{key}_ms"):
                    print(f"  {key}: {ms / result[f'{key}_ms']:.2f}x faster than official")
        print()
        results.append(result)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
