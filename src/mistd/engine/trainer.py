"""The training loop: plain, short, with a few named callback events.

    trainer = Trainer(cfg, run_dir)            # builds model, data, optimizer, EMA
    trainer.add_callback("on_step_end", fn)    # fn(trainer); or add_callback(a Callback)
    summary = trainer.train()                  # or Trainer.from_checkpoint(path).train()

The loop runs steps and keeps the state a checkpoint holds; everything around it (periodic
evaluation, checkpoints, console / results.csv / TensorBoard logs, curves.png) is a callback
(`mistd.engine.callbacks`: events on_train_start, on_epoch_start, on_step_end, on_epoch_end,
on_eval_end, on_train_end). A step: forward + loss (autocast if `train.amp`), a non-finite check
(the step is skipped with a warning; `train.max_nan_steps` in a row stop the run), backward
(GradScaler for fp16), optional gradient clipping, optimizer step, EMA update. The data order is
a function of (seed, epoch) and every RNG is checkpointed, so a resumed run continues exactly
where the killed one stopped.

Run directory: config.yaml (resolved), weights/last.pt and best.pt (by mAP50), results.csv (one row
per epoch), curves.png, tensorboard/ (if tensorboard is importable).
"""

from __future__ import annotations

import contextlib
import math
import random
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mistd.checkpoint import (
    get_rng_states,
    load_checkpoint,
    make_checkpoint,
    save_checkpoint,
    set_rng_states,
)
from mistd.config import dump_yaml, to_dict
from mistd.device import resolve_device
from mistd.engine import distributed as D
from mistd.engine.callbacks import Callback, FunctionCallback, default_callbacks
from mistd.engine.ema import ModelEMA, unwrap
from mistd.engine.schedule import schedule_from_config, set_lr
from mistd.errors import InputError
from mistd.inference.detector import ClipDetector
from mistd.io import lock_folder, write_text_atomic
from mistd.run_config import RunConfig, run_config_from_dict, run_config_to_dict
from mistd.structures import FrameDataset, Sequence


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (the global RNG user code draws from)
    torch.manual_seed(seed)


def param_groups(model: nn.Module, weight_decay: float, norm_bias_decay: float) -> list[dict]:
    """Official CHAL grouping: BatchNorm weights and all biases get `norm_bias_decay` (AdamW's
    default 0.01 officially), every other parameter `weight_decay`.

    The official code only optimises parameters reachable as a module's `.weight`/`.bias`; here
    the others (position tables, learned vectors) are optimised too, in the decayed group.
    """
    norm_bias, decayed, seen = [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen or not p.requires_grad:
                continue
            seen.add(id(p))
            is_norm = isinstance(module, nn.modules.batchnorm._BatchNorm)
            (norm_bias if name == "bias" or is_norm else decayed).append(p)
    return [
        {"params": norm_bias, "weight_decay": norm_bias_decay},
        {"params": decayed, "weight_decay": weight_decay},
    ]


def freeze_modules(model: nn.Module, names: str) -> list[str]:
    """Freeze the model's top-level parts named in `names` (comma-separated, e.g.
    `backbone,neck`): no gradients, BatchNorm statistics fixed. Returns the names frozen."""
    frozen = [n.strip() for n in names.split(",") if n.strip()]
    parts = dict(model.named_children())
    for name in frozen:
        if name not in parts:
            raise InputError(
                f"train.freeze: the model has no part '{name}' (parts: {', '.join(parts)})"
            )
        parts[name].requires_grad_(False)
    return frozen


def set_frozen_eval(model: nn.Module, frozen: list[str]) -> None:
    """Keep frozen parts in eval mode (BatchNorm uses its running statistics)."""
    for name in frozen:
        getattr(model, name).eval()


def build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay, cfg.norm_bias_weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)


def split_sequences(
    dataset: FrameDataset, fraction: float, seed: int
) -> tuple[FrameDataset, FrameDataset]:
    """Hold out whole SEQUENCES for validation (frames of a sequence are too alike to split).

    `round(fraction * n)` sequences (at least 1) are chosen by a seeded permutation. A data set
    of ONE sequence cannot be split that way: its last `fraction` of frames becomes a separate
    validation sequence (a contiguous tail, never interleaved frames), with a warning.
    """
    seqs = list(dataset.sequences)
    if not seqs:
        raise InputError("the training data set has no frames", dataset.source)
    if len(seqs) == 1:
        seq = seqs[0]
        cut = len(seq) - max(1, round(fraction * len(seq)))
        if cut < 1:
            raise InputError("one sequence with a single frame cannot be split", dataset.source)
        warnings.warn(
            f"the training data has one sequence: validating on its last {len(seq) - cut} frames "
            "(give --val for a proper held-out set)",
            stacklevel=2,
        )
        train_seqs = [Sequence(seq.name, seq.frames[:cut])]
        val_seqs = [Sequence(seq.name + "-val", seq.frames[cut:])]
    else:
        n_val = min(len(seqs) - 1, max(1, round(fraction * len(seqs))))
        order = torch.randperm(len(seqs), generator=torch.Generator().manual_seed(seed)).tolist()
        held = set(order[:n_val])
        train_seqs = [s for i, s in enumerate(seqs) if i not in held]
        val_seqs = [s for i, s in enumerate(seqs) if i in held]

    def subset(sequences: list[Sequence]) -> FrameDataset:
        return FrameDataset(sequences, dataset.class_names, dataset.source, dataset.format)

    return subset(train_seqs), subset(val_seqs)


class _LossModule(nn.Module):
    """Routes `model.loss` through `forward` so DistributedDataParallel's hooks see it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, clip: torch.Tensor, targets: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.model.loss(clip, targets)


class Trainer:
    """One training run (single process or one rank of a torchrun job).

    Args:
        cfg: the resolved `RunConfig`.
        run_dir: output folder (only rank 0 writes); None = write nothing (tests, benchmarks).
        model: use this model instead of `zoo.build_model(cfg.model_name, cfg.model)`.
        train_data, val_data: use these data sets instead of reading `cfg.data.train/val`.
        info: process placement (default: from torchrun's environment).
        progress: show a progress bar (rank 0).
    """

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: str | Path | None = None,
        *,
        model: nn.Module | None = None,
        train_data: FrameDataset | None = None,
        val_data: FrameDataset | None = None,
        info: D.DistInfo | None = None,
        progress: bool = True,
    ):
        self.cfg = cfg
        t = cfg.train
        self.info = info if info is not None else D.init_distributed(t.device)
        self.device = resolve_device(t.device, self.info.local_rank)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.progress = progress and self.info.is_main
        self.callbacks: list[Callback] = default_callbacks()
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        seed_everything(t.seed)

        # Data: the same (seed, epoch) order on every process, each takes its slice.
        if cfg.data.sources:
            self.train_data, self.val_sets = self._source_datasets()
            self.val_data = next(iter(self.val_sets.values()), None)
        else:
            self.train_data, self.val_data = self._datasets(train_data, val_data)
            self.val_sets = {}
        from mistd.data.clips import ClipTrainingSet

        if cfg.data.cache:
            from mistd.data import frame_cache

            datasets = self.train_data if isinstance(self.train_data, list) else [self.train_data]
            videos = {f.video for d in datasets for f in d.frames() if f.video is not None}
            if self.info.is_main:
                frame_cache.prepare(videos, progress=self.progress)
            D.barrier(self.info)
        if cfg.data.sources:
            from mistd.data.sources import MultiSourceTrainingSet

            self.train_set = MultiSourceTrainingSet(
                list(zip(cfg.data.sources, self.train_data, strict=True)),
                cfg.model.num_frames,
                tuple(cfg.model.input_size),
                length=cfg.data.source_epoch,
                seed=t.seed,
                target_crop=cfg.data.target_crop,
                min_box=cfg.data.min_box,
                flip=cfg.data.flip,
                overlay=cfg.data.overlay,
                decoded_cache=cfg.data.cache,
                frame_stride=getattr(cfg.model, "frame_stride", 1),
            )
        else:
            self.train_set = ClipTrainingSet(
                self.train_data,
                cfg.model.num_frames,
                tuple(cfg.model.input_size),
                decoded_cache=cfg.data.cache,
                frame_stride=getattr(cfg.model, "frame_stride", 1),
            )
        self.sampler = D.ShardedBatchSampler(
            len(self.train_set),
            t.batch_size,
            seed=t.seed,
            info=self.info,
            epoch_fraction=t.epoch_fraction,
        )
        if t.max_steps:
            # A step budget: derive the epochs, update the learning rate every iteration.
            t.epochs = math.ceil(t.max_steps / self.sampler.num_batches)
            t.lr_step = "iteration"

        # Model (+ synchronised BatchNorm), the DDP wrapper around its loss, EMA, optimizer.
        if model is None:
            from mistd.models.zoo import build_model

            model, _ = build_model(cfg.model_name, to_dict(cfg.model))
            if t.init_weights:
                from mistd.weights import load_initial_weights

                loaded, missing, _ = load_initial_weights(model, t.init_weights)
                if self.info.is_main:
                    print(
                        f"initialised {loaded} tensors from {t.init_weights} "
                        f"({len(missing)} left at their initial values)"
                    )
        if t.sync_bn and self.info.enabled:
            model = D.convert_sync_batchnorm(model, self.device)
        self.frozen = freeze_modules(model, t.freeze)
        self.model = model.to(self.device).train()
        set_frozen_eval(self.model, self.frozen)
        self.loss_module: nn.Module = _LossModule(self.model)
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.loss_module = nn.parallel.DistributedDataParallel(
                self.loss_module,
                device_ids=ids,
                find_unused_parameters=t.find_unused_parameters,
            )
        self.ema = ModelEMA(self.model, t.ema_decay, t.ema_tau) if t.ema else None
        self.optimizer = build_optimizer(self.model, t)
        self.schedule = schedule_from_config(
            t, steps_per_epoch=self.sampler.num_batches if t.max_steps else None
        )
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.amp_dtype == torch.float16 and self.device.type == "cuda"
        )

        # Progress state (all of it goes into checkpoints).
        self.epoch = 0
        self.batch_in_epoch = 0
        self.iteration = 0
        self.best_map50 = -1.0
        self.history: list[dict[str, float]] = []
        self.epoch_sums: dict[str, float] = {}
        self.epoch_steps = 0
        self.nan_streak = 0
        self.step_skipped = False
        self.last_losses: dict[str, float] = {}
        self.metrics: dict[str, Any] = {}
        self.new_best = False  # set at an epoch end whose evaluation beat best_map50
        self.stop_reason = ""
        self.clips_per_s = 0.0

    # ------------------------------------------------------------------ setup helpers

    def _datasets(
        self, train_data: FrameDataset | None, val_data: FrameDataset | None
    ) -> tuple[FrameDataset, FrameDataset | None]:
        d = self.cfg.data
        if train_data is None:
            if not d.train:
                raise InputError("no training data: give --data PATH (or data.train=PATH)")
            from mistd.data.readers import read_dataset

            train_data = read_dataset(
                d.train,
                format=d.format,
                root=d.root or None,
                select=d.train_select or None,
                classes=d.classes or None,
            )
            if val_data is None and d.val:
                val_data = read_dataset(
                    d.val,
                    format=d.format,
                    root=d.root or None,
                    select=d.val_select or None,
                    classes=d.classes or ",".join(train_data.class_names),
                )
        if val_data is not None and val_data.class_names != train_data.class_names:
            raise InputError(
                f"validation classes {val_data.class_names} differ from the training classes "
                f"{train_data.class_names}",
                val_data.source,
            )
        if not any(f.num_targets for f in train_data.frames()):
            warnings.warn(
                f"{train_data.source}: the training data has no annotated targets; the model "
                "will learn that there is nothing to detect (is this the right file?)",
                stacklevel=2,
            )
        d.class_names = list(train_data.class_names)
        num_classes = getattr(self.cfg.model, "num_classes", None)
        if num_classes is not None and num_classes != len(d.class_names) and self.info.is_main:
            print(
                f"model.num_classes={len(d.class_names)} from the data ({', '.join(d.class_names)})"
            )
        if num_classes is not None:
            self.cfg.model.num_classes = num_classes = len(d.class_names)
        labels = [int(f.labels.max()) for f in train_data.frames() if len(f.labels)]
        if num_classes is not None and labels and max(labels) >= num_classes:
            raise InputError(
                f"the data has class id {max(labels)} but the model has {num_classes} class(es); "
                f"set model.num_classes={max(labels) + 1}",
                train_data.source,
            )
        if val_data is None and self.cfg.train.eval_interval > 0:
            train_data, val_data = split_sequences(train_data, d.val_fraction, self.cfg.train.seed)
        return train_data, val_data

    def _source_datasets(self) -> tuple[list[FrameDataset], dict[str, FrameDataset]]:
        """`data.sources`: each source's training frames and the validation sets by source name,
        every class merged into one (`data.classes`, default `target`)."""
        from mistd.data.readers import read_dataset

        d = self.cfg.data
        name = d.classes or "target"
        read: dict[tuple, FrameDataset] = {}  # sources often share a data set (scaled, painted)

        def once(path: str, select: str, source) -> FrameDataset:
            key = (path, select, source.format, source.root)
            if key not in read:
                read[key] = read_dataset(
                    path, select=select or None, format=source.format,
                    root=source.root or None, classes=name,
                )  # fmt: skip
            return read[key]

        train = [once(source.path, source.select, source) for source in d.sources]
        val = {s.label(): once(s.val, s.val_select, s) for s in d.sources if s.val}
        d.class_names = [name]
        if getattr(self.cfg.model, "num_classes", None) not in (None, 1) and self.info.is_main:
            print(f"model.num_classes=1 from data.sources (every class merged into '{name}')")
        if getattr(self.cfg.model, "num_classes", None) is not None:
            self.cfg.model.num_classes = 1
        return train, val

    def _amp_dtype(self) -> torch.dtype | None:
        amp = self.cfg.train.amp
        if amp == "off":
            return None
        if amp == "fp16" and self.device.type != "cuda":
            warnings.warn("train.amp=fp16 needs CUDA; using bf16 autocast on CPU", stacklevel=3)
            return torch.bfloat16
        return torch.float16 if amp == "fp16" else torch.bfloat16

    def add_callback(
        self, callback: Callback | str, fn: Callable[[Trainer], None] | None = None
    ) -> None:
        """Run `callback` after the built-in ones; `add_callback(event, fn)` calls `fn(trainer)`
        at `event` (one of `mistd.engine.callbacks.EVENTS`)."""
        if isinstance(callback, str):
            callback = FunctionCallback(callback, fn)
        self.callbacks.append(callback)

    def fire(self, event: str) -> None:
        """Call hook `event` of every callback, in order."""
        for callback in self.callbacks:
            getattr(callback, event)(self)

    # ------------------------------------------------------------------ checkpoints

    def state(self) -> dict[str, Any]:
        """The checkpoint dict of the current state."""
        return make_checkpoint(
            state_dict=unwrap(self.model).state_dict(),
            ema=None if self.ema is None else self.ema.state_dict(),
            model=self.cfg.model_name,
            config=run_config_to_dict(self.cfg),
            epoch=self.epoch,
            batch_in_epoch=self.batch_in_epoch,
            iteration=self.iteration,
            optimizer=self.optimizer.state_dict(),
            scheduler=self.schedule.state_dict(),
            scaler=self.scaler.state_dict(),
            rng_states=get_rng_states(),
            best_map50=self.best_map50,
            history=self.history,
            epoch_sums=dict(self.epoch_sums),
            epoch_steps=self.epoch_steps,
            nan_streak=self.nan_streak,
            world_size=self.info.world_size,
            thresholds=self.found_thresholds(),
        )

    def found_thresholds(self) -> dict[str, float] | None:
        """The checkpoint's `thresholds` (`mistd.thresholds`): the operating point the last
        evaluation found, the score of the best F1 (class-agnostic where the data has several
        classes); None before any evaluation or when nothing was found."""
        metrics = self.metrics.get("breakdown", {}).get("class_agnostic") or self.metrics
        if not metrics.get("best_f1"):
            return None
        return {"operating": float(metrics["best_f1_threshold"])}

    def load_state(self, ckpt: dict[str, Any]) -> None:
        """Restore everything `state()` saved (RNG states last, so nothing consumes them)."""
        unwrap(self.model).load_state_dict(ckpt["state_dict"])
        if self.ema is not None and ckpt.get("ema"):
            self.ema.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch = int(ckpt["epoch"])
        self.batch_in_epoch = int(ckpt["batch_in_epoch"])
        self.iteration = int(ckpt["iteration"])
        self.best_map50 = float(ckpt["best_map50"])
        self.history = list(ckpt["history"])
        self.epoch_sums = dict(ckpt["epoch_sums"])
        self.epoch_steps = int(ckpt["epoch_steps"])
        self.nan_streak = int(ckpt["nan_streak"])
        set_rng_states(ckpt["rng_states"])

    def save(self, name: str = "last.pt") -> Path | None:
        """Write `weights/<name>` (rank 0 only); everyone waits for it."""
        path = None
        if self.info.is_main and self.run_dir is not None:
            path = save_checkpoint(self.run_dir / "weights" / name, self.state())
        D.barrier(self.info)
        return path

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, overrides: dict[str, Any] | None = None, **kwargs: Any
    ) -> Trainer:
        """Resume the run a checkpoint (or its run directory) belongs to.

        `overrides` (nested dict) change the saved config, e.g. `{"train": {"max_steps": 2000}}`
        (a larger step budget; its learning-rate schedule then spans the 2000 steps).
        The run continues in the same run directory.
        """
        from mistd.config import apply_overrides

        path = Path(path)
        if path.is_dir():
            path = path / "weights" / "last.pt"
        last = path.parent / "last.pt"
        if path.parent.name == "weights" and path.name != "last.pt" and last.is_file():
            # Resuming from best.pt would rewind the run and overwrite the later last.pt.
            raise InputError(
                f"this is an earlier point of the run whose latest state is {last}: resume with "
                f"--resume {path.parent.parent}, or start a new run from it with --init {path}",
                path,
            )
        ckpt = load_checkpoint(path)
        if "optimizer" not in ckpt or "rng_states" not in ckpt:
            raise InputError("checkpoint has no training state to resume from", path)
        cfg = run_config_from_dict(ckpt["config"])
        if overrides:
            cfg = apply_overrides(cfg, overrides)
        run_dir = path.parent.parent if path.parent.name == "weights" else path.parent
        kwargs.setdefault("info", None)
        trainer = cls(cfg, kwargs.pop("run_dir", run_dir), **kwargs)
        trainer.load_state(ckpt)
        return trainer

    # ------------------------------------------------------------------ the loop

    def run_step(self, clips: torch.Tensor, targets: list[torch.Tensor]) -> dict[str, float]:
        """One optimisation step on a (local) batch; returns the loss terms as floats.

        Non-finite loss (agreed over all processes): no update, `nan_streak` grows.
        """
        self.step_skipped = False
        clips = clips.to(self.device, non_blocking=True)
        targets = [t.to(self.device) for t in targets]
        self.model.train()
        set_frozen_eval(unwrap(self.model), self.frozen)
        autocast = (
            torch.autocast(self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else contextlib.nullcontext()
        )
        # BatchNorm statistics move in forward; a skipped step must not keep them (a NaN forward
        # would poison them for good), so they are saved first (small tensors).
        buffers = [b.detach().clone() for b in self.model.buffers()]
        with autocast:
            losses = self.loss_module(clips, targets)
        bad = [k for k, v in losses.items() if not bool(torch.isfinite(v.detach()).all())]
        if D.all_reduce_max(float(bool(bad)), self.info) > 0:
            self._skip_step(buffers, bad or ["(another process)"])
            return {k: float(v.detach()) for k, v in losses.items()}
        self.scaler.scale(losses["total"]).backward()
        grad_clip = self.cfg.train.grad_clip
        if grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            norm = nn.utils.clip_grad_norm_(self.model.parameters(), grad_clip)
            if not torch.isfinite(norm) and not self.scaler.is_enabled():
                self._skip_step(buffers, ["gradient norm"])
                return {k: float(v.detach()) for k, v in losses.items()}
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        self.nan_streak = 0
        return {k: float(v.detach()) for k, v in losses.items()}

    def _skip_step(self, buffers: list[torch.Tensor], terms: list[str]) -> None:
        """No update: drop gradients, restore the buffers saved before forward, count it."""
        self.step_skipped = True
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for b, saved in zip(self.model.buffers(), buffers, strict=True):
                b.copy_(saved)
        self.nan_streak += 1
        where = f"epoch {self.epoch + 1}, iteration {self.iteration + 1}"
        message = f"non-finite loss ({', '.join(terms)}) at {where}: step skipped"
        warnings.warn(message, stacklevel=3)
        if self.nan_streak >= self.cfg.train.max_nan_steps:
            self.stop_reason = (
                f"stopped: {self.nan_streak} consecutive non-finite losses, the last at {where} "
                f"(loss term: {', '.join(terms)}); lower train.lr or enable train.grad_clip"
            )

    def train(self) -> dict[str, Any]:
        """Run (or continue) training; returns a summary dict (also printed by the CLI).

        The run directory is locked meanwhile: a second process training into it (two
        `--resume` of one run) fails with an `InputError` instead of overwriting its files."""
        with contextlib.ExitStack() as stack:
            if self.info.is_main and self.run_dir is not None:
                stack.enter_context(lock_folder(self.run_dir))
            return self._train()

    def _train(self) -> dict[str, Any]:
        t = self.cfg.train
        self._prepare_run_dir()
        self.fire("on_train_start")
        start = time.perf_counter()
        while self.epoch < t.epochs and not self.stop_reason and not self.iteration_cap_reached():
            self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
            if t.lr_step == "epoch":
                set_lr(self.optimizer, self.schedule(self.epoch))
            self.fire("on_epoch_start")
            finished = self._train_epoch()
            if not finished:
                budget_spent = t.max_steps and self.iteration >= t.max_steps
                if budget_spent and not self.stop_reason:
                    self.epoch = t.epochs - 1  # the budget's end is the last epoch's end
                    self._end_epoch()
                break
            self._end_epoch()
        self.fire("on_train_end")
        return {
            "run_dir": str(self.run_dir) if self.run_dir else "",
            "epochs_done": len(self.history),
            "iterations": self.iteration,
            "best_map50": self.best_map50,
            "last": self.history[-1] if self.history else {},
            "stopped": self.stop_reason,
            "seconds": time.perf_counter() - start,
        }

    def iteration_cap_reached(self) -> bool:
        """True once the step budget `train.max_steps` is spent."""
        max_steps = self.cfg.train.max_steps
        return bool(max_steps) and self.iteration >= max_steps

    def _loader(self) -> torch.utils.data.DataLoader:
        from mistd.data.clips import collate_clips

        # A fresh, seeded generator per epoch: worker seeds depend on (seed, epoch) only and the
        # global torch RNG is untouched (an iterator would draw its base seed from it).
        generator = torch.Generator().manual_seed(self.cfg.train.seed * 1000 + self.epoch)
        workers = self.cfg.data.workers
        if hasattr(self.train_set, "epoch"):
            self.train_set.epoch = self.epoch  # multi-source draws depend on (seed, epoch, item)
        return torch.utils.data.DataLoader(
            self.train_set,
            batch_sampler=self.sampler,
            num_workers=workers,
            collate_fn=collate_clips,
            generator=generator,
            pin_memory=self.device.type == "cuda",
        )

    def _train_epoch(self) -> bool:
        """Train the rest of the current epoch; False if stopped early (max_steps, NaNs)."""
        t = self.cfg.train
        num_batches = self.sampler.num_batches
        tick = time.perf_counter()
        for clips, targets, _ in self._loader():
            if t.lr_step == "iteration":
                frac = self.epoch + self.batch_in_epoch / num_batches
                set_lr(self.optimizer, self.schedule(frac))
            losses = self.run_step(clips, targets)
            self.iteration += 1
            self.batch_in_epoch += 1
            self.last_losses = losses
            if not self.step_skipped:  # skipped on every process alike: means stay comparable
                for k, v in losses.items():
                    self.epoch_sums[k] = self.epoch_sums.get(k, 0.0) + v
                self.epoch_steps += 1
            now = time.perf_counter()
            self.clips_per_s = clips.shape[0] * self.info.world_size / max(now - tick, 1e-9)
            tick = now
            self.fire("on_step_end")
            if self.stop_reason or self.iteration_cap_reached():
                break
        return self.batch_in_epoch >= num_batches

    def _end_epoch(self) -> None:
        """Close the epoch: its row (mean losses, lr) joins `history`, `epoch` counts it, then
        the callbacks evaluate, log and checkpoint (the checkpoint points at the next epoch)."""
        steps = max(self.epoch_steps, 1)
        means = D.all_reduce_mean({k: v / steps for k, v in self.epoch_sums.items()}, self.info)
        row: dict[str, float] = {
            "epoch": self.epoch + 1,
            "iteration": self.iteration,
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        row.update({f"loss_{k}": v for k, v in sorted(means.items())})
        self.history.append(row)
        self.epoch += 1
        self.batch_in_epoch = 0
        self.epoch_sums, self.epoch_steps = {}, 0
        self.new_best = False
        self.fire("on_epoch_end")

    # ------------------------------------------------------------------ evaluation

    def detector(self) -> ClipDetector:
        """The EMA model (or the model) as a clip detector at the training input size."""
        module = self.ema.module if self.ema is not None else unwrap(self.model)
        return ClipDetector(
            module,
            num_frames=self.cfg.model.num_frames,
            input_size=tuple(self.cfg.model.input_size),
            device=self.device,
            decode_floor=self.cfg.train.decode_floor,
            nms_iou=self.cfg.train.nms_iou,
            name=self.cfg.model_name,
        )

    @torch.no_grad()
    def evaluate(self, dataset: FrameDataset | None = None) -> dict[str, Any]:
        """Official-protocol metrics of the EMA model on the validation set: at most
        `data.val_max_frames` key frames, evenly spread (`evaluation.runner.evaluate_sampled`),
        with the class-agnostic / per-class / per-attribute breakdown where the data has them."""
        from mistd.evaluation.runner import evaluate_sampled

        if dataset is None and self.val_sets:
            return self._evaluate_sources()
        dataset = dataset if dataset is not None else self.val_data
        if dataset is None:
            return {}
        metrics = evaluate_sampled(
            self.detector(),
            dataset,
            self.cfg.data.val_max_frames,
            batch=max(1, self.cfg.train.batch_size),
        )
        unwrap(self.model).train()
        set_frozen_eval(unwrap(self.model), self.frozen)
        return metrics

    def _evaluate_sources(self) -> dict[str, Any]:
        """Each source's validation set (frames at their own size, at most `data.val_max_frames`
        each): the means of their headline numbers, and one row per source under `sources`."""
        from mistd.evaluation.runner import evaluate_sampled
        from mistd.inference.predictor import Predictor

        # the sources' frames differ in size: each at its own (padded to a multiple of 32), as
        # `mistd eval` runs a trained model by default; one frame per forward
        detector = Predictor(self.detector(), input_size="native", keep_all=True)
        rows = {
            name: evaluate_sampled(detector, data, self.cfg.data.val_max_frames, batch=1)
            for name, data in self.val_sets.items()
        }
        unwrap(self.model).train()
        set_frozen_eval(unwrap(self.model), self.frozen)
        keys = ("mAP50", "precision", "recall", "f1")
        metrics: dict[str, Any] = {
            k: float(np.mean([r[k] for r in rows.values()]))
            for k in keys
            if all(k in r for r in rows.values())
        }
        metrics["sources"] = {
            name: {k: float(r[k]) for k in keys if k in r} for name, r in rows.items()
        }
        return metrics

    # ------------------------------------------------------------------ run directory

    def _prepare_run_dir(self) -> None:
        """Create the run directory and write the resolved config.yaml (rank 0)."""
        if self.info.is_main and self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.run_dir / "config.yaml", dump_yaml(self.cfg))
