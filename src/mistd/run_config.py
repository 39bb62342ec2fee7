"""`RunConfig`: everything a training run needs, as typed dataclasses with the official defaults.

Sections: `model` (the zoo's config dataclass of the chosen model), `data`, `train`. YAML files
and dotted `key=value` overrides change them (`mistd.config`); unknown keys fail with a
suggestion. The defaults reproduce the official CHAL recipe (UESTC-nnLab/CHAL `train.py`,
`nets/yolo_training.py`, `utils/utils_fit.py`):

- AdamW, lr 8e-5, betas (0.9, 0.999); weight decay 0.05 on conv/linear weights and AdamW's default
  0.01 on BatchNorm weights and biases (the official code puts them in groups without an explicit
  `weight_decay`, so torch's AdamW default 0.01 applies);
- warm-up 3 epochs (quadratic, from 0.1 x lr), then cosine to 0.01 x lr, the last 5 epochs flat at
  the minimum (YOLOX `yolox_warm_cos_lr`), the learning rate set once per epoch;
- EMA of all floating state (decay 0.9999 x (1 - exp(-updates / 2000)));
- batch 4, 512x512 input, T = 5, 100 epochs each of half the training clips, no augmentation,
  no gradient clipping, fp32, seed 3407.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from mistd.config import apply_overrides, from_dict, to_dict
from mistd.data.sources import SourceConfig
from mistd.errors import InputError
from mistd.thresholds import DECODE_FLOOR


@dataclass
class DataConfig:
    """Where the clips come from and how they are shaped.

    Attributes:
        train: training annotation file or folder (any format `read_dataset` reads).
        val: validation data; empty = hold out whole SEQUENCES of `train` (see `val_fraction`).
        root: image root for index files with foreign absolute paths (`--root` remap).
        format: reader format (`auto`, `uestc`, `coco`, ...).
        workers: DataLoader worker processes (0 = load in the training process).
        val_fraction: share of whole sequences held out for validation when `val` is empty and
            evaluation is on (`train.eval_interval > 0`); with one sequence, its last frames.
        val_max_frames: evaluate on at most this many validation frames, spread evenly over the
            validation set (0 = all); periodic evaluation on CPU is slow.
        train_select, val_select: keep only these sequences of `train` / `val`: a split name of
            a video-csv folder's `clips.csv` (`train`, `val`), comma-separated names, or a .txt
            file of names (empty = all).
        classes: empty = the data's classes; `target` merges all classes into one (the papers'
            single-class setting).
        class_names: the classes the model was trained on, filled from the data (kept in
            checkpoints so outputs carry the names).
        cache: read video frames from the decoded-frame cache (each video decoded once into
            `~/.cache/mistd/frames`, then random access; see `mistd.data.frame_cache`).
        sources: several training data sets at once (`mistd.data.sources`: per-source path,
            select, sampling weight, downscale range and validation set; a YAML `--cfg` list);
            replaces `train`/`val`. Items are windows of `model.input_size` at the frames' own
            scale; every class is merged into one (`classes`, default `target`).
        target_crop: with `sources`, the probability that a window holds a target.
        min_box: with `sources`, training boxes grow to at least this many pixels per side (0 =
            as annotated).
        flip: with `sources`, random horizontal flips.
        overlay: with `sources`, the probability of a burned-in overlay (text, a crosshair)
            drawn into a window as a negative (`mistd.data.sources.draw_overlay`).
        source_epoch: with `sources`, items per epoch (each epoch draws new ones; evaluation
            and `best.pt` follow epochs).
    """

    train: str = ""
    val: str = ""
    root: str = ""
    format: str = "auto"
    workers: int = 2
    val_fraction: float = 0.2
    val_max_frames: int = 0
    train_select: str = ""
    val_select: str = ""
    classes: str = ""
    class_names: list[str] = field(default_factory=list)
    cache: bool = True
    sources: list[SourceConfig] = field(default_factory=list)
    target_crop: float = 0.8
    min_box: float = 0.0
    flip: bool = True
    overlay: float = 0.0
    source_epoch: int = 4000

    VALID_RANGES: ClassVar[dict[str, str]] = {
        "workers": "[0, 256]",
        "val_fraction": "(0, 1)",
        "val_max_frames": ">= 0",
        "target_crop": "[0, 1]",
        "min_box": ">= 0",
        "overlay": "[0, 1]",
        "source_epoch": ">= 1",
    }


@dataclass
class TrainConfig:
    """Optimisation, schedule and bookkeeping (defaults: the official CHAL recipe).

    Attributes:
        epochs: number of epochs; the learning-rate schedule spans them.
        epoch_fraction: share of the (shuffled) training clips one epoch visits; the official
            code breaks each epoch after half its batches (`epoch_step // 2`).
        batch_size: GLOBAL batch size (split evenly over data-parallel processes).
        optimizer: `adamw` or `sgd` (SGD: nesterov, `momentum`).
        lr: peak learning rate.
        min_lr_ratio: final learning rate as a fraction of `lr`.
        momentum: SGD momentum (AdamW uses betas (0.9, 0.999)).
        weight_decay: decay of conv/linear weights.
        norm_bias_weight_decay: decay of normalisation weights and all biases.
        warmup_epochs: quadratic warm-up length (from `warmup_lr_ratio` x lr).
        warmup_lr_ratio: warm-up start as a fraction of `lr`.
        flat_epochs: final epochs held at the minimum learning rate.
        schedule: `cosine` (warm-up + cosine) or `constant`.
        lr_step: update the learning rate every `epoch` (official) or every `iteration`.
        ema: keep an exponential moving average of the weights (used for evaluation/export).
        ema_decay, ema_tau: EMA decay d(u) = ema_decay * (1 - exp(-u / ema_tau)).
        grad_clip: clip the gradient norm to this value (0 = off, as officially).
        amp: mixed precision: `off`, `bf16` (CPU or CUDA autocast) or `fp16` (CUDA autocast with a
            GradScaler; on CPU falls back to bf16 with a warning).
        seed: seeds python, numpy and torch; the data order is a function of (seed, epoch).
        deterministic: ask torch for deterministic algorithms (slower on CUDA).
        eval_interval: evaluate every N epochs (0 = never); the last epoch is always evaluated.
        checkpoint_interval: also write `last.pt` every N iterations (0 = only each epoch).
        init_weights: start from these weights (a mistd checkpoint, a shipped name or an official
            CHAL state dict; tensors are matched by name and shape), e.g. a pretrained model.
        max_steps: a step budget (0 = off): the run is exactly this many iterations, the
            learning-rate schedule spans them (per-iteration updates; warm-up and the flat tail
            each capped at 5% of the budget), `epochs` is derived, the last step evaluates. Old
            configs' `max_iters` (a cap on an epoch schedule) is read as `max_steps`.
        freeze: comma-separated top-level model parts to keep frozen (e.g. `backbone,neck`:
            a pretrained single-frame backbone while a multi-frame neck learns; no gradients,
            BatchNorm statistics fixed). Empty = train everything.
        max_nan_steps: stop after this many consecutive non-finite losses (each one is skipped).
        device: `auto` (CUDA if available, else CPU), `cpu`, `cuda`, `cuda:1`, ...
        sync_bn: synchronise BatchNorm statistics over data-parallel processes.
        find_unused_parameters: DDP option; some models have parameters unused in forward.
        log_interval: refresh the progress bar / iteration log every N iterations.
        decode_floor, nms_iou: decoding for evaluation (official protocol: 0.001, 0.65;
            `mistd.thresholds.DECODE_FLOOR`). Old configs' `score_threshold` is read as
            `decode_floor`.
    """

    epochs: int = 100
    epoch_fraction: float = 0.5
    batch_size: int = 4
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = 8e-5
    min_lr_ratio: float = 0.01
    momentum: float = 0.937
    weight_decay: float = 0.05
    norm_bias_weight_decay: float = 0.01
    warmup_epochs: float = 3.0
    warmup_lr_ratio: float = 0.1
    flat_epochs: float = 5.0
    schedule: Literal["cosine", "constant"] = "cosine"
    lr_step: Literal["epoch", "iteration"] = "epoch"
    ema: bool = True
    ema_decay: float = 0.9999
    ema_tau: float = 2000.0
    grad_clip: float = 0.0
    amp: Literal["off", "bf16", "fp16"] = "off"
    seed: int = 3407
    deterministic: bool = False
    eval_interval: int = 10
    checkpoint_interval: int = 0
    init_weights: str = ""
    max_steps: int = 0
    freeze: str = ""
    max_nan_steps: int = 10
    device: str = "auto"
    sync_bn: bool = False
    find_unused_parameters: bool = True
    log_interval: int = 1
    decode_floor: float = DECODE_FLOOR
    nms_iou: float = 0.65

    VALID_RANGES: ClassVar[dict[str, str]] = {
        "epochs": ">= 1",
        "epoch_fraction": "(0, 1]",
        "batch_size": ">= 1",
        "lr": "> 0",
        "min_lr_ratio": "[0, 1]",
        "momentum": "[0, 1)",
        "weight_decay": ">= 0",
        "norm_bias_weight_decay": ">= 0",
        "warmup_epochs": ">= 0",
        "warmup_lr_ratio": "[0, 1]",
        "flat_epochs": ">= 0",
        "ema_decay": "[0, 1)",
        "ema_tau": "> 0",
        "grad_clip": ">= 0",
        "seed": "[0, 4294967295]",
        "eval_interval": ">= 0",
        "checkpoint_interval": ">= 0",
        "max_steps": ">= 0",
        "max_nan_steps": ">= 1",
        "log_interval": ">= 1",
        "decode_floor": "[0, 1]",
        "nms_iou": "(0, 1]",
    }
    # old name -> new name: old configs and the configs stored in old checkpoints still read
    RENAMED_KEYS: ClassVar[dict[str, str]] = {
        "max_iters": "max_steps",
        "score_threshold": "decode_floor",
    }


@dataclass
class RunConfig:
    """A whole training run: `model` is the zoo config dataclass of `model_name`.

    The clip length and input size live in the model section only (`model.num_frames`,
    `model.input_size`): the data pipeline and the detector wrapper read them from there.
    """

    model_name: str = ""
    model: Any = None
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def model_config_class(name: str) -> type:
    """The zoo's config dataclass for model `name` (InputError naming the choices if unknown)."""
    from mistd.models import zoo

    if name not in zoo.ZOO:
        import difflib

        close = difflib.get_close_matches(name, list(zoo.ZOO), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise InputError(f"unknown model '{name}'{hint} (choices: {', '.join(sorted(zoo.ZOO))})")
    return zoo.ZOO[name][0]


def build_run_config(model_name: str, *overrides: dict[str, Any]) -> RunConfig:
    """Defaults for `model_name`, then each override dict (YAML file, CLI) in order.

    A `model_name` key in an override is rejected: the model is chosen with `--model`.
    """
    cfg = RunConfig(model_name=model_name, model=model_config_class(model_name)())
    for override in overrides:
        if "model_name" in override and override["model_name"] != model_name:
            raise InputError(
                f"config sets model_name '{override['model_name']}' but --model is '{model_name}'"
            )
        cfg = apply_overrides(cfg, override)
    _validate(cfg)
    return cfg


def run_config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a `RunConfig` saved with `run_config_to_dict` (e.g. from a checkpoint)."""
    name = data.get("model_name", "")
    model_cls = model_config_class(name)
    rest = {k: v for k, v in data.items() if k not in ("model", "model_name")}
    base = RunConfig(model_name=name, model=from_dict(model_cls, data["model"]))
    return apply_overrides(base, rest)


def run_config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    """Plain nested dict (YAML/JSON/checkpoint friendly)."""
    return to_dict(cfg)


def _validate(cfg: RunConfig) -> None:
    from mistd.config import check_input_size, check_ranges

    check_ranges(cfg)
    if hasattr(cfg.model, "input_size"):
        check_input_size(cfg.model.input_size, "model.input_size")
    t = cfg.train
    checks = [
        (t.epochs >= 1, "train.epochs must be >= 1"),
        (0 < t.epoch_fraction <= 1, "train.epoch_fraction must be in (0, 1]"),
        (t.batch_size >= 1, "train.batch_size must be >= 1"),
        (t.lr > 0, "train.lr must be > 0"),
        (t.max_nan_steps >= 1, "train.max_nan_steps must be >= 1"),
        (t.grad_clip >= 0, "train.grad_clip must be >= 0 (0 = off)"),
        (0 < cfg.data.val_fraction < 1, "data.val_fraction must be in (0, 1)"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)
    if cfg.data.sources:
        from mistd.data.sources import check_sources

        check_sources(cfg.data.sources)
        if "," in cfg.data.classes:
            raise InputError("data.sources merge every class into one: data.classes is one name")


def absolute_paths(cfg: RunConfig) -> RunConfig:
    """Make the run's local file paths absolute (data, root, clip lists, init weights), in place,
    so a run resumed from another working directory still finds its data. Values that are not
    existing paths (shipped weight names, split names like `val`) are left as they are."""
    from pathlib import Path

    d, t = cfg.data, cfg.train
    pairs = [(d, "train"), (d, "val"), (d, "root"), (d, "train_select"), (d, "val_select"),
             (t, "init_weights")]  # fmt: skip
    for source in d.sources:
        pairs += [(source, key) for key in ("path", "root", "select", "val", "val_select")]
    for section, key in pairs:
        value = getattr(section, key)
        if value and Path(value).exists():
            setattr(section, key, str(Path(value).resolve()))
    return cfg
