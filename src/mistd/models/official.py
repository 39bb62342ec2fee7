"""Official CHAL checkpoints: key-name conversion, detection, verification.

Loading one (into a model or a detector) is `mistd.weights.read_weights`.

The official code (github.com/UESTC-nnLab/CHAL, `nets/slowfastnet.py::slowfastnet`) saves plain
`state_dict()`s (sometimes float16, sometimes with a DDP `module.` prefix). `convert_official`
maps every official key to this package's `chal` model or drops it for a stated reason; any other
key is an error, so nothing is silently lost:

- dropped, dead: `neck.background_field.neural_field.hidden_layers.2.*` (built officially but
  skipped by the MLP's loop);
- dropped, derived (checked equal to what this package computes): the Fourier frequencies
  `...pos_encoder.freq_bands` and each Swin layer's `attn.relative_position_index`.

The official forward also evaluates `conv1(cat[mulit1(P5), P4])` twice; that conv's weights are
used (once) here, so nothing is dropped for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mistd.errors import InputError
from mistd.models.necks import fold as fold_module
from mistd.models.necks import pafpn as pafpn_module
from mistd.models.temporal.swin3d import relative_position_index

NUM_FREQUENCIES = 6

# Official key prefix -> ours (longest prefix wins).
_PREFIXES: dict[str, str] = {
    "backbone.backbone.": "backbone.",
    **{f"backbone.{off}.": f"neck.{ours}." for ours, off in pafpn_module.OFFICIAL_NAMES.items()},
    **{f"{off}.": f"fold.{ours}." for ours, off in fold_module.OFFICIAL_NAMES.items()},
    "neck.early_fusion.align_convs.0.": "early_fusion.align_p3.",
    "neck.early_fusion.align_convs.1.1.": "early_fusion.align_p4.",
    "neck.early_fusion.align_convs.2.1.": "early_fusion.align_p5.",
    "neck.early_fusion.fusion_conv.": "early_fusion.fuse.",
    "neck.early_fusion.attention.": "early_fusion.attention.",
    "neck.background_field.time_scale": "background_field.time_scale",
    "neck.background_field.scene_encoder.temporal_aggregator.": (
        "background_field.scene_encoder.volume_convs."
    ),
    "neck.background_field.scene_encoder.scene_encoder.": (
        "background_field.scene_encoder.scene_head."
    ),
    "neck.background_field.scene_encoder.dynamics_encoder.": (
        "background_field.scene_encoder.motion_branch."
    ),
    "neck.background_field.neural_field.input_layer.": "background_field.field.input_layer.",
    "neck.background_field.neural_field.hidden_layers.0.": (
        "background_field.field.layers_before_skip.0."
    ),
    "neck.background_field.neural_field.hidden_layers.1.": (
        "background_field.field.layers_before_skip.1."
    ),
    "neck.background_field.neural_field.skip_proj.": "background_field.field.skip_layer.",
    "neck.background_field.neural_field.hidden_layers.3.": (
        "background_field.field.layers_after_skip.0."
    ),
    "neck.background_field.neural_field.output_layer.": "background_field.field.output_layer.",
    "neck.anomaly_extractor.feat_norm.": "appearance_anomaly.norm.",
    "neck.anomaly_extractor.anomaly_enhance.": "appearance_anomaly.refine.",
    "neck.stst_processor.temporal_weights": "motion_verification.temporal_weights",
    "neck.stst_processor.anomaly_processor.pos_embed": "motion_verification.token_bias",
    "neck.stst_processor.anomaly_processor.anomaly_embed.": "motion_verification.embed.",
    "neck.stst_processor.transformer_layers.": "motion_verification.layers.",
    "neck.stst_processor.anomaly_reconstruct.": "motion_verification.reconstruct.",
    "neck.small_target_enhancer.": "gate.mask.",
    "neck.feature_modulation.": "gate.refine.",
    "head.": "head.",
}
_PREFIX_ORDER = sorted(_PREFIXES, key=len, reverse=True)

# Renames inside a module (CBAM and the Swin MLP), applied after the prefix.
_SEGMENTS = (
    (".channel_attention.shared_MLP.", ".channel_attention.mlp."),
    (".spatial_attention.conv2d.", ".spatial_attention.conv."),
    (".mlp.fc1.", ".mlp.0."),
    (".mlp.fc2.", ".mlp.2."),
)

_DEAD = re.compile(r"^neck\.background_field\.neural_field\.hidden_layers\.2\.(weight|bias)$")
_FREQUENCIES = "neck.background_field.pos_encoder.freq_bands"
_RELATIVE_INDEX = re.compile(
    r"^neck\.stst_processor\.transformer_layers\.\d+\.attn\.relative_position_index$"
)

# Keys that only an official CHAL state dict has.
_OFFICIAL_MARKERS = ("mulit1.1.weight", "neck.stst_processor.anomaly_processor.pos_embed")


def strip_module_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove a DDP `module.` prefix present on every key."""
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return {k[len("module.") :]: v for k, v in state_dict.items()}
    return state_dict


def is_official_state_dict(state_dict: Any) -> bool:
    """True for an official CHAL `state_dict()` (possibly with a `module.` prefix)."""
    if not isinstance(state_dict, dict) or not state_dict:
        return False
    keys = strip_module_prefix(state_dict).keys()
    return any(marker in keys for marker in _OFFICIAL_MARKERS)


def official_to_mistd_key(key: str) -> str | None:
    """Our key for official `key`; None when the key is not a mapped one (dropped or unknown)."""
    for prefix in _PREFIX_ORDER:
        if key == prefix.rstrip(".") or key.startswith(prefix):
            ours = _PREFIXES[prefix] + key[len(prefix) :]
            for old, new in _SEGMENTS:
                ours = ours.replace(old, new)
            return ours
    return None


def convert_official(
    state_dict: dict[str, torch.Tensor], *, source: str | Path | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Official CHAL state dict -> (our `chal` state dict in float32, {dropped key: reason}).

    Floating tensors are cast to float32 (official checkpoints are often float16). Raises
    InputError for a key that is neither mapped nor a known dropped one, and when a derived
    buffer differs from what this package computes.
    """
    state_dict = strip_module_prefix(state_dict)
    converted: dict[str, torch.Tensor] = {}
    dropped: dict[str, str] = {}
    unknown: list[str] = []
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise InputError(f"entry '{key}' is not a tensor", source)
        if _DEAD.match(key):
            dropped[key] = "dead layer: built by the official MLP but skipped by its loop"
            continue
        if key == _FREQUENCIES:
            expected = 2.0 ** torch.linspace(0.0, NUM_FREQUENCIES - 1, NUM_FREQUENCIES)
            if value.shape != expected.shape or not torch.equal(value.float(), expected):
                raise InputError(
                    f"'{key}' is {value.tolist()}, expected the frequencies {expected.tolist()}",
                    source,
                )
            dropped[key] = "derived: Fourier frequencies 2^0..2^5 (checked equal)"
            continue
        if _RELATIVE_INDEX.match(key):
            n = value.shape[0]
            expected = relative_position_index((5, 4, 4)) if n == 80 else None
            if expected is None or not torch.equal(value.long(), expected):
                raise InputError(f"'{key}' is not the (5, 4, 4) relative position index", source)
            dropped[key] = "derived: Swin relative position index (checked equal)"
            continue
        ours = official_to_mistd_key(key)
        if ours is None:
            unknown.append(key)
            continue
        converted[ours] = value.float() if value.is_floating_point() else value.clone()
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise InputError(
            f"{len(unknown)} key(s) are not part of the official CHAL model: {shown}", source
        )
    return converted, dropped


def official_num_classes(state_dict: dict[str, torch.Tensor]) -> int:
    """Number of classes of an official CHAL state dict (from its classification conv)."""
    return int(strip_module_prefix(state_dict)["head.cls_preds.0.weight"].shape[0])


def relative_l2(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """`||actual - expected|| / ||expected||` (float64)."""
    actual, expected = actual.double(), expected.double()
    return float(torch.linalg.vector_norm(actual - expected) / torch.linalg.vector_norm(expected))


REFERENCE_TENSORS = ("fused", "background", "appearance_anomaly", "anomaly", "neck", "head")


@torch.no_grad()
def verify_against_reference(
    model: nn.Module, reference: dict[str, torch.Tensor]
) -> dict[str, float]:
    """Run `model` (a `chal`) in eval mode on `reference["input"]` (official layout
    `[B, C, T, H, W]`) and return {tensor name: relative L2 error} for every reference tensor
    among `fused, background, appearance_anomaly, anomaly, neck, head`."""
    if "input" not in reference:
        raise InputError("reference has no 'input' tensor")
    was_training = model.training
    model.eval()
    try:
        clip = reference["input"].float().permute(0, 2, 1, 3, 4).contiguous()
        outputs, maps = model.forward_with_maps(clip)
    finally:
        model.train(was_training)
    ours = dict(maps)
    ours["head"] = outputs[0]
    errors = {}
    for name in REFERENCE_TENSORS:
        if name in reference:
            if name not in ours:
                raise InputError(f"the model does not compute '{name}' (an ablated configuration?)")
            if tuple(ours[name].shape) != tuple(reference[name].shape):
                raise InputError(
                    f"'{name}' has shape {tuple(ours[name].shape)}, the reference "
                    f"{tuple(reference[name].shape)}"
                )
            errors[name] = relative_l2(ours[name], reference[name])
    return errors
