"""Model size and arithmetic: parameter counts (all / used in forward) and MACs.

MACs come from `torch.utils.flop_counter.FlopCounterMode`, which counts convolutions, linear
layers, (batched) matmuls and scaled-dot-product attention; MACs = FLOPs / 2. Element-wise
operations, pooling and normalisation are not counted (the usual convention of papers' GFLOPs).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (shared tensors counted once)."""
    return sum(p.numel() for p in model.parameters())


def _run(model: nn.Module, example_input: Any) -> None:
    if isinstance(example_input, tuple | list):
        model(*example_input)
    else:
        model(example_input)


@torch.no_grad()
def count_used_parameters(model: nn.Module, example_input: Any) -> int:
    """Number of parameters of modules that actually run in `model(example_input)`.

    A parameter belongs to the module that registers it directly; it is "used" when that module's
    forward is called at least once (forward hooks). Parameters of modules that are never called
    (dead layers, such as an official checkpoint's unused hidden layer) are not counted; neither
    are parameters read only through the functional API by a module that is itself never called.
    The model runs in its current train/eval mode.
    """
    called: set[int] = set()
    handles = [
        m.register_forward_hook(lambda mod, args, out: called.add(id(mod))) for m in model.modules()
    ]
    try:
        _run(model, example_input)
    finally:
        for h in handles:
            h.remove()
    seen: set[int] = set()
    total = 0
    for m in model.modules():
        if id(m) not in called:
            continue
        for p in m.parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
    return total


@torch.no_grad()
def count_macs(model: nn.Module, example_input: Any) -> int:
    """Multiply-accumulates of one `model(example_input)` (FLOPs / 2, see module docstring)."""
    counter = FlopCounterMode(display=False)
    with counter:
        _run(model, example_input)
    return int(counter.get_total_flops()) // 2
