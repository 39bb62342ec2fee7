"""The official CHAL implementation and the fixture weights, for the benchmarks that compare
mistd's `chal` with it (`chal_latency.py`, `streaming_speed.py`).

mistd's own `chal` with the fixture weights is `mistd.weights.read_weights`' job:
`chal_model(size)` below is a use of it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from mistd.weights import read_weights

FIXTURE = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "chal_official"
FIXTURE_WEIGHTS = FIXTURE / "official_state_dict_fp16.pt"


def fixture_state_dict() -> dict[str, torch.Tensor] | None:
    """The official CHAL weights of the shared fidelity fixture in float32 (official key names),
    or None when the fixture is absent."""
    if not FIXTURE_WEIGHTS.is_file():
        return None
    state_dict = torch.load(FIXTURE_WEIGHTS, weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}


def chal_model(size: int | None = None) -> nn.Module:
    """mistd's `chal` (input `size` x `size` when given) with the fixture weights converted into
    it, or random weights when the fixture is absent; eval mode."""
    source = FIXTURE_WEIGHTS if FIXTURE_WEIGHTS.is_file() else "chal"
    overrides = {"input_size": [size, size]} if size is not None else None
    return read_weights(source, zoo=True).build_model(overrides)


def official_chal(checkout: str | Path, state_dict: dict[str, torch.Tensor] | None) -> nn.Module:
    """The official CHAL model (`nets/slowfastnet.py::slowfastnet`, 1 class, T=5) imported from
    the user's checkout at `checkout`, with `state_dict` loaded when given; eval mode."""
    sys.path.insert(0, str(checkout))
    from nets.slowfastnet import slowfastnet  # the user's official checkout

    model = slowfastnet(num_classes=1, num_frame=5)
    if state_dict is not None:
        model.load_state_dict(state_dict, strict=True)
    return model.eval()
