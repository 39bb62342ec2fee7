"""Inference-only rewrites of a torch model: BatchNorm folded into the convolution before it, and
2-D convolutions in channels-last memory format.

    model = fold_batch_norms(copy.deepcopy(model).eval())  # exact algebra, fewer ops
    set_channels_last(model)               # the layout oneDNN's AVX-512 / AMX kernels want

Both change the module in place and return it. Folding removes the BatchNorm parameters and
running statistics: run it on a copy that will never be trained or saved (the `Predictor` folds
the models it loads itself, never a module a caller passes in).

Also here: `compile_for_inference` (torch.compile with frozen weights) and `autocast` (the bf16
context). The allocator setting the `Predictor` makes on the CPU: `mistd.inference.allocator`.
"""

from __future__ import annotations

import os
import shutil

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from mistd.errors import InputError
from mistd.models.blocks import BaseConv


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Fold every eval-mode `BatchNorm2d` that directly follows a `Conv2d` into that convolution
    (in `BaseConv`: conv -> bn -> act; in an `nn.Sequential`: a Conv2d child followed by a
    BatchNorm2d child), replacing the BatchNorm by `nn.Identity`. Outputs equal the unfolded
    model's up to floating-point rounding (~1e-6 relative).

    Raises:
        ValueError: the model is in training mode (BatchNorm would use batch statistics).
    """
    if model.training:
        raise ValueError("fold_batch_norms needs an eval-mode model (call model.eval() first)")
    for module in model.modules():
        if isinstance(module, BaseConv) and isinstance(module.bn, nn.BatchNorm2d):
            module.conv = fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = nn.Identity()
        elif isinstance(module, nn.Sequential):
            children = list(module)
            for i in range(len(children) - 1):
                conv, bn = children[i], children[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(conv, bn)
                    module[i + 1] = nn.Identity()
    return model


def set_channels_last(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Put every Conv2d weight in channels-last (or back to contiguous) memory format.

    Only 2-D convolutions (4-D weights) change; Conv3d and linear layers keep their layout.
    """
    memory_format = torch.channels_last if enabled else torch.contiguous_format
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.to(memory_format=memory_format)
    return model


def has_cpp_compiler() -> bool:
    """Whether a C++ compiler for torch.compile's CPU code is on the PATH ($CXX, g++, c++,
    clang++)."""
    compilers = (os.environ.get("CXX", ""), "g++", "c++", "clang++")
    return any(c and shutil.which(c) for c in compilers)


def autocast(device: torch.device, precision: str):
    """The forward's context for `precision`: bf16 autocast on `device`, or nothing (fp32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def compile_for_inference(module: nn.Module) -> nn.Module:
    """`torch.compile` of an inference-only module with its weights frozen into the compiled
    graph (`FrozenCompiled`). Needs a C++ compiler on the CPU (InputError without one: torch
    would fail at the first frame). Outputs equal the eager module's up to floating-point
    rounding. The graph holds the weights as constants: after changing the module's weights,
    compile again."""
    on_cpu = all(p.device.type == "cpu" for p in module.parameters())
    if on_cpu and not has_cpp_compiler():
        raise InputError(
            "compile needs a C++ compiler for the CPU (g++ or clang++, or $CXX): install one, "
            "or run without compile"
        )
    return FrozenCompiled(module)


class FrozenCompiled(nn.Module):
    """`module` through `torch.compile` with the inductor's `freezing`: weights become constants
    of the graph, so BatchNorm-free convolutions are pre-packed for oneDNN with their activation
    fused (conv + SiLU one kernel), and autocast's weight casts are folded away. One graph per
    input shape (a new frame size compiles again, ~30 s on 2 cores).

    Freezing must be on when dynamo traces (the first call, and each new shape): passed as
    `torch.compile(options={"freezing": True})` it reaches the inductor only, the weights stay
    graph inputs and nothing is folded (measured: chal-ir-s's frame encoder 32.5 ms instead of
    17 ms per 640x512 frame in bf16). Each call therefore runs under the setting. Attributes the
    wrapper lacks (e.g. `forward_with_maps`) are the module's own, run eagerly."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.compiled = torch.compile(module, dynamic=False)

    def forward(self, *args: torch.Tensor):
        import torch._inductor.config as inductor_config

        with inductor_config.patch(freezing=True):
            return self.compiled(*args)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            module = self.__dict__.get("_modules", {}).get("module")
            if module is None:  # not built yet (copying, unpickling)
                raise
            return getattr(module, name)
