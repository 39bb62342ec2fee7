"""Is training bound by video decoding? Clips/s of the data path alone vs. the model step.

    python benchmarks/data_throughput.py [--data ../shared/data/real/drone_ir] [--clips 200]

Data path: `ClipTrainingSet` items (read T frames + letterbox to 256x320) in random order over the
train split, (a) from the decoded-frame cache (`data.cache=true`, the default) and (b) decoding
H.264 by random access (`data.cache=false`). Model step: forward + backward + AdamW on a batch of 8
random clips at 256x320, width 0.25, T=3 for the multi-frame models, `--freeze` as in the
real-data recipe. One process, `--threads` intra-op threads; candidates interleaved, so the ratios
hold on a noisy machine even when the absolute figures do not.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mistd.data.clips import ClipTrainingSet
from mistd.data.readers import read_dataset
from mistd.engine.trainer import freeze_modules, set_frozen_eval
from mistd.models.zoo import build_model


def data_rate(dataset, num_frames: int, cached: bool, clips: int, seed: int) -> float:
    items = ClipTrainingSet(dataset, num_frames, (256, 320), decoded_cache=cached)
    order = np.random.default_rng(seed).choice(len(items), clips, replace=False)
    start = time.perf_counter()
    for i in order:
        items[int(i)]
    return clips / (time.perf_counter() - start)


def step_rate(name: str, num_frames: int, freeze: str, steps: int) -> float:
    model, _ = build_model(
        name, {"width": 0.25, "input_size": [256, 320], "num_frames": num_frames, "num_classes": 4}
    )
    frozen = freeze_modules(model, freeze)  # as the trainer does for train.freeze
    model.train()
    set_frozen_eval(model, frozen)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-3)
    clips = torch.rand(8, num_frames, 3, 256, 320)
    targets = [torch.tensor([[2.0, 160.0, 128.0, 17.0, 9.0]])] * 8
    for i in range(steps + 1):
        if i == 1:
            start = time.perf_counter()
        loss = model.loss(clips, targets)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return 8 * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/real/drone_ir")
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = read_dataset(args.data, select="train")
    print(f"| path | clips/s ({args.threads} thread(s)) |\n|---|---|")
    for num_frames in (1, 3):
        for cached in (True, False):
            rate = data_rate(dataset, num_frames, cached, args.clips, seed=num_frames)
            label = "decoded-frame cache" if cached else "H.264 random access"
            print(f"| data, T={num_frames}, {label} | {rate:.1f} |", flush=True)
    rows = (
        ("yolox-s", 1, ""),
        ("yolox-s", 1, "backbone,neck"),
        ("mf-baseline", 3, "backbone,neck"),
        ("chal", 3, "backbone,neck"),
        ("chal", 3, ""),
    )
    for name, num_frames, freeze in rows:
        rate = step_rate(name, num_frames, freeze, args.steps)
        label = f"frozen {freeze}" if freeze else "all parts train"
        print(f"| model step, {name} T={num_frames}, {label}, batch 8 | {rate:.1f} |", flush=True)


if __name__ == "__main__":
    main()
