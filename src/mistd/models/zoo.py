"""The model zoo: ONE explicit dict from name to (config dataclass, builder).

    model, cfg = build_model("yolox-s", {"width": 0.25, "loss": {"nwd_weight": 1.0}})

Each config is a dataclass of explicit numbers (defaults = the preset); YAML / CLI overrides are
applied with `mistd.config.apply_overrides` (type-checked, unknown keys rejected with a
suggestion). To add a model: write its config dataclass (with a `tiny_overrides()` classmethod
giving a small, fast variant for `tests/models/test_zoo.py`) and a builder `cfg -> nn.Module`,
then add ONE line to `ZOO`. No registration by import side effects.

Every config has at least `num_classes`, `num_frames` and `input_size` (H, W): the clip length and
input size the model is meant to be fed (training/inference wrappers read them). Multi-frame configs
add `frame_stride` (frames between clip frames), set on the model as `model.frame_stride`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from mistd.config import apply_overrides, check_input_size
from mistd.errors import InputError
from mistd.losses.criterion import YOLOXCriterion
from mistd.losses.iou import BoxLossKind
from mistd.models.backbones.cspdarknet import CSPDarknet
from mistd.models.blocks import BaseConv
from mistd.models.detectors.chal import CHAL, freeze_parameters
from mistd.models.detectors.mf_baseline import MultiFrameBaseline
from mistd.models.detectors.mf_residual import MultiFrameResidual, TemporalResidual
from mistd.models.detectors.tinyseg import TinySeg
from mistd.models.detectors.yolox import YOLOXDetector
from mistd.models.heads.yolox_head import YOLOXHead
from mistd.models.necks.bpfpn import BPFPN, DownsampleKind, LowLevelShortcut, ShortcutVariant
from mistd.models.necks.fold import TopDownFold
from mistd.models.necks.p2 import StrideFourLevel
from mistd.models.necks.pafpn import PAFPN
from mistd.models.temporal.appearance_anomaly import AppearanceAnomaly
from mistd.models.temporal.background_field import NeuralBackgroundField
from mistd.models.temporal.causal_gate import CausalGate
from mistd.models.temporal.early_fusion import EarlyFusion
from mistd.models.temporal.motion_verification import MotionVerification


@dataclass
class LossConfig:
    """Criterion weights and assignment parameters; defaults = the official CHAL recipe
    (docs/design.md §4.2; see `mistd.losses.criterion.YOLOXCriterion`)."""

    reg_weight: float = 4.0
    obj_weight: float = 1.0
    cls_weight: float = 1.2
    nwd_weight: float = 0.5
    ciou_weight: float = 0.5
    box_loss: BoxLossKind = "ciou"
    use_focal: bool = True
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    nwd_constant: float = 12.0
    center_radius: float = 2.5
    iou_cost_weight: float = 3.0
    candidate_topk: int = 10
    # BP-FPN's directional gradient regularization (docs/design.md §4.4, `mistd.losses.dgr`):
    # "a" = direction-consistency loss weighted by `dgr_weight`, "b" = gradient projection hook.
    dgr: Literal["off", "a", "b"] = "off"
    dgr_weight: float = 0.1


def build_criterion(cfg: LossConfig, num_classes: int, strides: tuple[int, ...]) -> YOLOXCriterion:
    """The criterion described by `cfg` for a head with `num_classes` and `strides`."""
    return YOLOXCriterion(
        num_classes=num_classes,
        strides=strides,
        reg_weight=cfg.reg_weight,
        obj_weight=cfg.obj_weight,
        cls_weight=cfg.cls_weight,
        nwd_weight=cfg.nwd_weight,
        ciou_weight=cfg.ciou_weight,
        box_loss=cfg.box_loss,
        use_focal=cfg.use_focal,
        focal_alpha=cfg.focal_alpha,
        focal_gamma=cfg.focal_gamma,
        nwd_constant=cfg.nwd_constant,
        center_radius=cfg.center_radius,
        iou_cost_weight=cfg.iou_cost_weight,
        candidate_topk=cfg.candidate_topk,
    )


def backbone_features(cfg: Any) -> tuple[str, ...]:
    """Backbone outputs a host needs: C3-C5, plus C2 (dark2) when BP-FPN's shortcut or the
    stride-4 level is on."""
    base = ("dark3", "dark4", "dark5")
    return ("dark2", *base) if cfg.gils != "off" or getattr(cfg, "p2", False) else base


def build_p2(cfg: Any, backbone: CSPDarknet, neck: PAFPN) -> StrideFourLevel | None:
    """The stride-4 level for a host config with `p2: true` (None otherwise); built under a forked
    RNG so the host's own parameters are initialised as without it for the same seed."""
    if not getattr(cfg, "p2", False):
        return None
    with torch.random.fork_rng(devices=[]):
        c3 = neck.output_shape()["p3"][0]
        return StrideFourLevel(
            c2_channels=backbone.output_shape()["dark2"][0],
            p3_channels=c3,
            out_channels=c3 // 2,
            depth=cfg.depth,
        )


def build_bpfpn(cfg: Any, backbone: CSPDarknet, neck: PAFPN) -> BPFPN | None:
    """BP-FPN for a host config (`gils`, `gils_down`, `loss.dgr`, `loss.dgr_weight`), or None when
    all are off. Built under a forked RNG, so the host's own parameters are initialised exactly as
    without BP-FPN for the same seed (ablations then start from identical host weights)."""
    if cfg.gils == "off" and cfg.loss.dgr == "off":
        return None
    with torch.random.fork_rng(devices=[]):
        shortcut = None
        if cfg.gils != "off":
            shortcut = LowLevelShortcut(
                in_channels=backbone.output_shape()["dark2"][0],
                out_channels=neck.output_shape()["p3"][0],
                isolate=cfg.gils == "gils",
                down=cfg.gils_down,
            )
        return BPFPN(shortcut=shortcut, dgr=cfg.loss.dgr, dgr_weight=cfg.loss.dgr_weight)


def check_common(cfg: Any, name: str) -> None:
    """Validate the fields every config shares; raise InputError naming the field."""
    if cfg.num_classes < 1:
        raise InputError(f"model '{name}': num_classes must be >= 1, got {cfg.num_classes}")
    if cfg.num_frames < 1:
        raise InputError(f"model '{name}': num_frames must be >= 1, got {cfg.num_frames}")
    if getattr(cfg, "frame_stride", 1) < 1:
        raise InputError(f"model '{name}': frame_stride must be >= 1, got {cfg.frame_stride}")
    check_input_size(cfg.input_size, f"model '{name}': input_size")
    for key in ("depth", "width"):
        if getattr(cfg, key, 1.0) <= 0:
            raise InputError(f"model '{name}': {key} must be > 0, got {getattr(cfg, key)}")


# --------------------------------------------------------------------------- yolox (single frame)
# Valid ranges of the keys every model config shares (`mistd.config`; `input_size` is checked by
# `check_input_size`).
MODEL_RANGES = {
    "num_classes": "[1, 10000]",
    "num_frames": "[1, 64]",
    "frame_stride": "[1, 1000]",
    "depth": "(0, 4]",
    "width": "(0, 4]",
    "prior_prob": "(0, 1)",
    "drop_path_rate": "[0, 1)",
    "gate_dropout": "[0, 1)",
}


@dataclass
class YOLOXConfig:
    """Single-frame YOLOX on the key frame (YOLOX-S: depth 0.33, width 0.50)."""

    num_classes: int = 1
    depth: float = 0.33
    width: float = 0.50
    depthwise: bool = False
    num_frames: int = 1
    input_size: tuple[int, int] = (512, 512)
    prior_prob: float = 0.01
    # BP-FPN (docs/design.md §4.4): low-level shortcut into P3 ("gils" = gradient-isolated, "ls" =
    # vanilla, not isolated) and its downsampling ("unshuffle" or "strided"); DGR is `loss.dgr`.
    gils: ShortcutVariant = "off"
    gils_down: DownsampleKind = "unshuffle"
    # A stride-4 level (P2) for 2-5 px targets (`mistd.models.necks.p2`), appended after P5.
    p2: bool = False
    loss: LossConfig = field(default_factory=LossConfig)

    VALID_RANGES: ClassVar[dict[str, str]] = MODEL_RANGES

    @classmethod
    def tiny_overrides(cls) -> dict[str, Any]:
        """A small, fast variant for tests."""
        return {"width": 0.125, "depth": 0.33, "input_size": [64, 64]}


def build_yolox(cfg: YOLOXConfig) -> YOLOXDetector:
    check_common(cfg, "yolox")
    backbone = CSPDarknet(
        depth=cfg.depth,
        width=cfg.width,
        depthwise=cfg.depthwise,
        out_features=backbone_features(cfg),
    )
    neck = PAFPN(in_shapes=backbone.output_shape(), depth=cfg.depth, depthwise=cfg.depthwise)
    p2 = build_p2(cfg, backbone, neck)
    levels = list(neck.output_shape().values())
    if p2 is not None:
        levels.append((p2.out_channels, 4))
    strides = tuple(s for _, s in levels)
    head = YOLOXHead(
        num_classes=cfg.num_classes,
        in_channels=tuple(c for c, _ in levels),
        strides=strides,
        hidden_channels=int(256 * cfg.width),
        depthwise=cfg.depthwise,
        prior_prob=cfg.prior_prob,
    )
    criterion = build_criterion(cfg.loss, cfg.num_classes, strides)
    return YOLOXDetector(
        backbone=backbone,
        neck=neck,
        head=head,
        criterion=criterion,
        num_frames=cfg.num_frames,
        bpfpn=build_bpfpn(cfg, backbone, neck),
        p2=p2,
    )


# ------------------------------------------------------------------ multi-frame baseline (T = 5)
@dataclass
class MultiFrameBaselineConfig:
    """CHAL's "w/o All" baseline: shared YOLOX-S features per frame, folded to stride 8, fused
    over T frames, one stride-8 head. At width 0.5 the widths are CHAL's (fold 512/256/128,
    head 128 -> 256)."""

    num_classes: int = 1
    depth: float = 0.33
    width: float = 0.50
    num_frames: int = 5
    # frames between consecutive clip frames (1 = consecutive; see `mistd.data.clips`)
    frame_stride: int = 1
    input_size: tuple[int, int] = (512, 512)
    prior_prob: float = 0.01
    # BP-FPN (docs/design.md §4.4): low-level shortcut into P3 ("gils" = gradient-isolated, "ls" =
    # vanilla, not isolated) and its downsampling ("unshuffle" or "strided"); DGR is `loss.dgr`.
    gils: ShortcutVariant = "off"
    gils_down: DownsampleKind = "unshuffle"
    loss: LossConfig = field(default_factory=LossConfig)

    VALID_RANGES: ClassVar[dict[str, str]] = MODEL_RANGES

    @classmethod
    def tiny_overrides(cls) -> dict[str, Any]:
        """A small, fast variant for tests."""
        return {"width": 0.125, "depth": 0.33, "num_frames": 2, "input_size": [64, 64]}


def build_mf_baseline(cfg: MultiFrameBaselineConfig) -> MultiFrameBaseline:
    check_common(cfg, "mf-baseline")
    backbone = CSPDarknet(depth=cfg.depth, width=cfg.width, out_features=backbone_features(cfg))
    neck = PAFPN(in_shapes=backbone.output_shape(), depth=cfg.depth)
    c3, c4, c5 = (c for c, _ in neck.output_shape().values())
    fold = TopDownFold(in_channels=(c3, c4, c5))
    temporal_fusion = BaseConv(cfg.num_frames * c3, c3, 3, 1)
    # CHAL's head runs at width 1.0 on 128 channels (hidden 256) = int(512 * 0.5).
    head = YOLOXHead(
        num_classes=cfg.num_classes,
        in_channels=(c3,),
        strides=(8,),
        hidden_channels=int(512 * cfg.width),
        prior_prob=cfg.prior_prob,
    )
    criterion = build_criterion(cfg.loss, cfg.num_classes, head.strides)
    return MultiFrameBaseline(
        backbone=backbone,
        neck=neck,
        fold=fold,
        temporal_fusion=temporal_fusion,
        head=head,
        criterion=criterion,
        num_frames=cfg.num_frames,
        bpfpn=build_bpfpn(cfg, backbone, neck),
    )


# ------------------------------------------------------- multi-frame residual (YOLOX + frames)
@dataclass
class MultiFrameResidualConfig(YOLOXConfig):
    """YOLOX-S on the key frame plus a zero-initialised temporal residual on P3
    (`mistd.models.detectors.mf_residual`): a yolox-s checkpoint of the same width loads into
    every part but the residual, so fine-tuning starts from the single-frame detector."""

    num_frames: int = 3
    frame_stride: int = 1  # frames between consecutive clip frames (1 = consecutive)


def build_mf_residual(cfg: MultiFrameResidualConfig) -> MultiFrameResidual:
    check_common(cfg, "mf-residual")
    if cfg.num_frames < 2:
        raise InputError(f"model 'mf-residual': num_frames must be >= 2, got {cfg.num_frames}")
    single = build_yolox(cfg)
    return MultiFrameResidual(
        backbone=single.backbone,
        neck=single.neck,
        temporal=TemporalResidual(single.neck.output_shape()["p3"][0], cfg.num_frames),
        head=single.head,
        criterion=single.criterion,
        num_frames=cfg.num_frames,
        bpfpn=single.bpfpn,
        p2=single.p2,
    )


# ------------------------------------------------------------------------------------- CHAL
@dataclass
class CHALConfig:
    """CHAL exactly as the official code computes it (docs/design.md §4.2; preset `chal`).

    Widths scale with `width` relative to YOLOX-S (0.5), so at 0.5 every number is official:
    fusion channels `int(256 * width)` (128), SNF clip code `int(128 * width) + int(64 * width)`
    (64 + 32), scene hidden `int(256 * width)` (128), motion hidden `int(64 * width)` (32),
    field MLP `int(512 * width)` (256), Swin dim `int(64 * width)` (32, 2 heads), head hidden
    `int(512 * width)` (256). The appearance-anomaly refinement (1 -> 32 -> 16 -> 1) is fixed.

    Switches: `snf`, `hal`, `crg` ablate the three parts (see `mistd.models.detectors.chal`);
    `swin_layers` (every second one shifted), `temporal_readout` ("official": key frame in eval,
    mean in train; "learned": learnable softmax weights in train and eval), `time_coordinate`
    ("constant": t = 1 for every background, as officially; "per_frame": alpha * k / (T-1), alpha
    learnable), `gate_residual` (the paper's residual into the amplifier), and
    `freeze_unoptimised`: the official train.py builds its optimiser from module `weight`/`bias`
    attributes only, so the Swin relative position tables and the learned token vector are never
    optimised (they stay at their random init), nor the temporal weights (they stay at ones);
    True reproduces that (requires_grad=False).
    """

    num_classes: int = 1
    depth: float = 0.33
    width: float = 0.50
    num_frames: int = 5
    frame_stride: int = 1  # frames between consecutive clip frames (1 = consecutive)
    input_size: tuple[int, int] = (512, 512)
    prior_prob: float = 0.01
    snf: bool = True
    hal: bool = True
    crg: bool = True
    swin_layers: int = 1
    swin_window: int = 4
    swin_heads: int = 2
    drop_path_rate: float = 0.2
    temporal_readout: Literal["official", "learned"] = "official"
    time_coordinate: Literal["constant", "per_frame"] = "constant"
    gate_residual: bool = False
    gate_threshold: float = 0.3
    gate_scale: float = 0.8
    gate_dropout: float = 0.1
    freeze_unoptimised: bool = True
    # BP-FPN (docs/design.md §4.4): low-level shortcut into P3 ("gils" = gradient-isolated, "ls" =
    # vanilla, not isolated) and its downsampling ("unshuffle" or "strided"); DGR is `loss.dgr`.
    gils: ShortcutVariant = "off"
    gils_down: DownsampleKind = "unshuffle"
    # A stride-4 head level for 2-5 px targets (not in the paper): the key frame's C2 and the
    # gated stride-8 feature through `mistd.models.necks.p2.StrideFourLevel`, strides (8, 4).
    p2: bool = False
    loss: LossConfig = field(default_factory=LossConfig)

    VALID_RANGES: ClassVar[dict[str, str]] = MODEL_RANGES

    @classmethod
    def tiny_overrides(cls) -> dict[str, Any]:
        """A small, fast variant for tests."""
        return {"width": 0.125, "depth": 0.33, "num_frames": 3, "input_size": [64, 64]}


@dataclass
class CHALPaperConfig(CHALConfig):
    """CHAL as the paper describes it (docs/design.md §4.3; preset `chal-paper`): two Swin layers
    (the second shifted), learnable temporal weights used in train and eval, the residual path into
    the anomaly amplifier, time coordinate alpha * t per frame, pure NWD regression loss, nothing
    frozen; the official dead/duplicated layers never exist in this package."""

    swin_layers: int = 2
    temporal_readout: Literal["official", "learned"] = "learned"
    time_coordinate: Literal["constant", "per_frame"] = "per_frame"
    gate_residual: bool = True
    freeze_unoptimised: bool = False
    loss: LossConfig = field(default_factory=lambda: LossConfig(nwd_weight=1.0, ciou_weight=0.0))


def build_chal(cfg: CHALConfig) -> CHAL:
    """Build CHAL from `cfg` (the `chal` and `chal-paper` presets share this builder)."""
    check_common(cfg, "chal")
    if cfg.swin_layers < 1:
        raise InputError(f"model 'chal': swin_layers must be >= 1, got {cfg.swin_layers}")
    w = cfg.width
    backbone = CSPDarknet(depth=cfg.depth, width=w, out_features=backbone_features(cfg))
    neck = PAFPN(in_shapes=backbone.output_shape(), depth=cfg.depth)
    levels = tuple(c for c, _ in neck.output_shape().values())
    channels = int(256 * w)
    swin_dim = int(64 * w)
    if swin_dim % cfg.swin_heads or swin_dim < 2 * cfg.swin_heads:
        raise InputError(
            f"model 'chal': Swin dim int(64 * width) = {swin_dim} must be a multiple of "
            f"swin_heads = {cfg.swin_heads} (and at least twice it)"
        )
    background_field = None
    if cfg.snf:
        background_field = NeuralBackgroundField(
            channels,
            scene_dim=int(128 * w),
            motion_dim=int(64 * w),
            scene_hidden=int(256 * w),
            motion_hidden=int(64 * w),
            mlp_hidden=int(512 * w),
            learnable_time_scale=cfg.time_coordinate == "per_frame",
        )
    appearance = motion = None
    if cfg.hal:
        appearance = AppearanceAnomaly(channels)
        motion = MotionVerification(
            cfg.num_frames,
            dim=swin_dim,
            num_heads=cfg.swin_heads,
            window=cfg.swin_window,
            num_layers=cfg.swin_layers,
            drop_path_rate=cfg.drop_path_rate,
            temporal_readout=cfg.temporal_readout,
        )
    gate = None
    if cfg.crg:
        gate = CausalGate(
            channels,
            threshold=cfg.gate_threshold,
            scale=cfg.gate_scale,
            dropout=cfg.gate_dropout,
            residual=cfg.gate_residual,
        )
    stride_four = build_p2(cfg, backbone, neck)  # P3 of the PAFPN has the fused `channels`
    head = YOLOXHead(
        num_classes=cfg.num_classes,
        in_channels=(channels,) if stride_four is None else (channels, stride_four.out_channels),
        strides=(8,) if stride_four is None else (8, 4),
        hidden_channels=int(512 * w),
        prior_prob=cfg.prior_prob,
    )
    model = CHAL(
        backbone=backbone,
        neck=neck,
        fold=TopDownFold(in_channels=levels),
        early_fusion=EarlyFusion(levels, channels),
        background_field=background_field,
        appearance_anomaly=appearance,
        motion_verification=motion,
        gate=gate,
        head=head,
        criterion=build_criterion(cfg.loss, cfg.num_classes, head.strides),
        num_frames=cfg.num_frames,
        per_frame_time=cfg.time_coordinate == "per_frame",
        bpfpn=build_bpfpn(cfg, backbone, neck),
        stride_four=stride_four,
    )
    if cfg.freeze_unoptimised:
        freeze_parameters(model, ("relative_position_bias_table", "token_bias", "temporal_weights"))
    return model


# ------------------------------------------------------------------------ BP-FPN presets (§4.4)
# Each host with the gradient-isolated shortcut (PixelUnshuffle + 1x1), the paper's main part;
# DGR stays a switch (`model.loss.dgr=a|b`). At this project's CPU budgets neither part is shown
# to help: on real footage (docs/results.md) two seeds of 100 steps disagree in sign for
# both. See `mistd.models.necks.bpfpn` and `mistd.losses.dgr` for the documented reading.
@dataclass
class YOLOXBPConfig(YOLOXConfig):
    """YOLOX-S + BP-FPN's gradient-isolated low-level shortcut into P3."""

    gils: ShortcutVariant = "gils"


@dataclass
class MultiFrameBaselineBPConfig(MultiFrameBaselineConfig):
    """Multi-frame baseline + BP-FPN's shortcut on every frame's pyramid, before the fold."""

    gils: ShortcutVariant = "gils"


@dataclass
class CHALBPConfig(CHALConfig):
    """CHAL (official preset) + BP-FPN's shortcut on every frame's pyramid, before the fold."""

    gils: ShortcutVariant = "gils"


# ------------------------------------------------------------------------------------- the zoo
# ------------------------------------------------------------------- tinyseg (dense, single frame)
@dataclass
class TinySegConfig:
    """Single-frame encoder-decoder painting target boxes at full resolution
    (`mistd.models.detectors.tinyseg`): for 2-5 px targets, which a stride-8 grid blurs."""

    num_classes: int = 1
    num_frames: int = 1
    input_size: tuple[int, int] = (256, 256)
    widths: tuple[int, ...] = (16, 32, 64, 128)
    bce_weight: float = 10.0
    mask_level: float = 0.5
    max_detections: int = 100
    score_temperature: float = 4.0
    input_stride: int = 1

    VALID_RANGES: ClassVar[dict[str, str]] = {
        **MODEL_RANGES,
        "widths": "[1, 1024]",
        "input_stride": "[1, 4]",
        "bce_weight": "[0, 1000]",
        "mask_level": "(0, 1]",
        "max_detections": "[1, 10000]",
        "score_temperature": "(0, 100]",
    }

    @classmethod
    def tiny_overrides(cls) -> dict[str, Any]:
        """A small, fast variant for tests."""
        return {"widths": [4, 8, 16], "input_size": [64, 64]}


def build_tinyseg(cfg: TinySegConfig) -> TinySeg:
    check_common(cfg, "tinyseg")
    if cfg.num_frames != 1:
        raise InputError(
            f"model 'tinyseg' is single-frame: num_frames must be 1, got {cfg.num_frames}"
        )
    if len(cfg.widths) < 2:
        raise InputError(f"model 'tinyseg': widths needs at least 2 levels, got {list(cfg.widths)}")
    model = TinySeg(
        num_classes=cfg.num_classes,
        widths=tuple(int(w) for w in cfg.widths),
        bce_weight=cfg.bce_weight,
        mask_level=cfg.mask_level,
        max_detections=cfg.max_detections,
        score_temperature=cfg.score_temperature,
        input_stride=cfg.input_stride,
    )
    multiple = model.size_multiple
    if cfg.input_size[0] % multiple or cfg.input_size[1] % multiple:
        raise InputError(
            f"model 'tinyseg': input_size {list(cfg.input_size)} must be multiples of {multiple} "
            f"(input_stride x 2 ** (levels - 1) for {len(cfg.widths)} widths)"
        )
    return model


ZOO: dict[str, tuple[type, Callable[[Any], nn.Module]]] = {
    "yolox-s": (YOLOXConfig, build_yolox),
    "mf-baseline": (MultiFrameBaselineConfig, build_mf_baseline),
    "mf-residual": (MultiFrameResidualConfig, build_mf_residual),
    "chal": (CHALConfig, build_chal),
    "chal-paper": (CHALPaperConfig, build_chal),
    "yolox-bp": (YOLOXBPConfig, build_yolox),
    "mf-baseline-bp": (MultiFrameBaselineBPConfig, build_mf_baseline),
    "chal-bp": (CHALBPConfig, build_chal),
    "tinyseg": (TinySegConfig, build_tinyseg),
}


def build_model(name: str, overrides: dict[str, Any] | None = None) -> tuple[nn.Module, Any]:
    """Build zoo model `name` with config `overrides` (nested dict) -> (model, resolved config).

    Raises InputError for an unknown name (with a suggestion) or a bad/unknown config key.
    """
    if name not in ZOO:
        close = difflib.get_close_matches(name, list(ZOO), n=1, cutoff=0.4)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise InputError(f"unknown model '{name}'{hint} (available: {', '.join(ZOO)})")
    config_cls, builder = ZOO[name]
    cfg = apply_overrides(config_cls(), overrides or {})
    model = builder(cfg)
    model.frame_stride = int(getattr(cfg, "frame_stride", 1))
    return model, cfg
