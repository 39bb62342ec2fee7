"""What happens around the training loop: evaluation, checkpoints, logs and plots, as callbacks.

A callback is an object with any of the hooks below; each takes the `Trainer` and reads or sets
its state. `Trainer` runs `default_callbacks()` in this order, then the ones added with
`trainer.add_callback`:

    on_train_start   the run (or the resumed run) begins
    on_epoch_start   before the epoch's first step (the learning rate is set)
    on_step_end      after every optimisation step (`trainer.last_losses`, `trainer.iteration`)
    on_epoch_end     the epoch is complete: `trainer.history[-1]` is its row, `trainer.epoch`
                     counts finished epochs; `PeriodicEvaluation` adds the metrics to the row
    on_eval_end      after an evaluation (`trainer.metrics`)
    on_train_end     the run stops (budget spent, `trainer.stop_reason`, or all epochs done)

Only rank 0 writes files, and only when the trainer has a run directory.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from mistd.engine import distributed as D
from mistd.io import write_text_atomic

if TYPE_CHECKING:
    from mistd.engine.trainer import Trainer

EVENTS = (
    "on_train_start",
    "on_epoch_start",
    "on_step_end",
    "on_epoch_end",
    "on_eval_end",
    "on_train_end",
)


class Callback:
    """Base class: override the hooks you need (all do nothing here)."""

    def on_train_start(self, trainer: Trainer) -> None: ...

    def on_epoch_start(self, trainer: Trainer) -> None: ...

    def on_step_end(self, trainer: Trainer) -> None: ...

    def on_epoch_end(self, trainer: Trainer) -> None: ...

    def on_eval_end(self, trainer: Trainer) -> None: ...

    def on_train_end(self, trainer: Trainer) -> None: ...


class FunctionCallback(Callback):
    """One function `fn(trainer)` called at one event (`trainer.add_callback(event, fn)`)."""

    def __init__(self, event: str, fn):
        if event not in EVENTS:
            raise ValueError(f"unknown event '{event}'; events: {', '.join(EVENTS)}")
        setattr(self, event, fn)


def _writes(trainer: Trainer) -> bool:
    return trainer.info.is_main and trainer.run_dir is not None


class PeriodicEvaluation(Callback):
    """Every `train.eval_interval` epochs and after the last one: official-protocol metrics on
    the validation set (rank 0), added to the epoch's row; a better mAP50 sets
    `trainer.new_best` (and `best_map50`) for the checkpointer."""

    def on_epoch_end(self, trainer: Trainer) -> None:
        t = trainer.cfg.train
        done = trainer.epoch  # epochs finished, this one included
        due = (
            trainer.val_data is not None
            and t.eval_interval > 0
            and (done % t.eval_interval == 0 or done == t.epochs)
        )
        if not due:
            return
        row = trainer.history[-1]
        trainer.metrics = trainer.evaluate() if trainer.info.is_main else {}
        trainer.fire("on_eval_end")
        for key in ("mAP50", "precision", "recall", "f1"):
            if key in trainer.metrics:
                row[key] = float(trainer.metrics[key])
        for name, numbers in trainer.metrics.get("sources", {}).items():
            row[f"mAP50_{name}"] = float(numbers["mAP50"])
            row[f"f1_{name}"] = float(numbers["f1"])
        agnostic = trainer.metrics.get("breakdown", {}).get("class_agnostic")
        if agnostic and len(trainer.val_data.class_names) > 1:
            row["agnostic_mAP50"] = float(agnostic["mAP50"])
            row["agnostic_f1"] = float(agnostic["f1"])
        # Only rank 0 evaluates: share its mAP50 so every process takes the same save branches.
        map50 = D.all_reduce_max(row.get("mAP50", -1.0), trainer.info)
        if map50 > trainer.best_map50:
            trainer.best_map50 = map50
            trainer.new_best = True


class Checkpointer(Callback):
    """weights/last.pt every `train.checkpoint_interval` steps, at every epoch end and when the
    run stops early; weights/best.pt when the validation mAP50 improves."""

    def on_train_start(self, trainer: Trainer) -> None:
        if _writes(trainer):
            # Temporary checkpoint files of a killed run (a kill skips their clean-up).
            for stale in (trainer.run_dir / "weights").glob(".*.tmp.pt"):
                stale.unlink(missing_ok=True)

    def on_step_end(self, trainer: Trainer) -> None:
        interval = trainer.cfg.train.checkpoint_interval
        if interval and trainer.iteration % interval == 0:
            trainer.save("last.pt")

    def on_epoch_end(self, trainer: Trainer) -> None:
        # best.pt first: last.pt records the new best score, and a run resumed from a last.pt
        # written before a crash would never write the best.pt it believes it has.
        if trainer.new_best:
            trainer.save("best.pt")
        trainer.save("last.pt")

    def on_train_end(self, trainer: Trainer) -> None:
        if trainer.stop_reason or trainer.iteration_cap_reached():
            trainer.save("last.pt")


class ProgressLogger(Callback):
    """Console: a progress bar per epoch, or (no bar, a run directory) one plain line every
    `train.log_interval` steps."""

    def __init__(self) -> None:
        self.bar = None

    def on_epoch_start(self, trainer: Trainer) -> None:
        if not trainer.progress:
            return
        from tqdm import tqdm

        self.bar = tqdm(
            total=trainer.sampler.num_batches,
            initial=trainer.batch_in_epoch,
            desc=f"epoch {trainer.epoch + 1}/{trainer.cfg.train.epochs}",
            dynamic_ncols=True,
            leave=True,
        )

    def on_step_end(self, trainer: Trainer) -> None:
        interval = max(1, trainer.cfg.train.log_interval)
        if trainer.iteration % interval:
            return
        loss = trainer.last_losses.get("total", float("nan"))
        lr = trainer.optimizer.param_groups[0]["lr"]
        bar = self.bar
        if bar is not None:
            bar.update(interval if bar.n + interval <= bar.total else bar.total - bar.n)
            bar.set_postfix(
                loss=f"{loss:.4g}", lr=f"{lr:.2e}", clips_s=f"{trainer.clips_per_s:.1f}"
            )
        elif _writes(trainer):
            # No progress bar (--no-progress, logs to a file): one plain line per interval.
            total = trainer.cfg.train.max_steps or ""
            print(
                f"iteration {trainer.iteration}{'/' + str(total) if total else ''} "
                f"loss {loss:.4g} lr {lr:.2e} {trainer.clips_per_s:.1f} clips/s",
                flush=True,
            )

    def on_epoch_end(self, trainer: Trainer) -> None:
        self._close()

    def on_train_end(self, trainer: Trainer) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class ResultsCsv(Callback):
    """results.csv: one row per epoch (losses, lr, validation metrics), rewritten atomically."""

    def on_epoch_end(self, trainer: Trainer) -> None:
        if not _writes(trainer):
            return
        columns = list(dict.fromkeys(k for r in trainer.history for k in r))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(trainer.history)
        write_text_atomic(trainer.run_dir / "results.csv", text.getvalue())


class TensorBoardLogger(Callback):
    """tensorboard/: step scalars every `train.log_interval` steps, epoch rows (if importable)."""

    def __init__(self) -> None:
        self.writer: Any = None

    def on_train_start(self, trainer: Trainer) -> None:
        if not _writes(trainer):
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("note: tensorboard is not installed; TensorBoard logs skipped (CSV written)")
            return
        # purge_step drops events a killed run logged after its last checkpoint.
        self.writer = SummaryWriter(
            str(trainer.run_dir / "tensorboard"), purge_step=trainer.iteration
        )

    def on_step_end(self, trainer: Trainer) -> None:
        if self.writer is None or trainer.iteration % max(1, trainer.cfg.train.log_interval):
            return
        for k, v in trainer.last_losses.items():
            self.writer.add_scalar(f"train/{k}", v, trainer.iteration)
        self.writer.add_scalar(
            "train/lr", trainer.optimizer.param_groups[0]["lr"], trainer.iteration
        )
        self.writer.add_scalar("train/clips_per_s", trainer.clips_per_s, trainer.iteration)

    def on_epoch_end(self, trainer: Trainer) -> None:
        if self.writer is None:
            return
        row = trainer.history[-1]
        for k, v in row.items():
            if k not in ("epoch", "iteration"):
                self.writer.add_scalar(f"epoch/{k}", v, int(row["epoch"]))
        self.writer.flush()

    def on_train_end(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class CurvePlotter(Callback):
    """curves.png: loss terms, lr and validation metrics per epoch; drawn after evaluations and
    at the end only (plotting takes about a second)."""

    def on_epoch_end(self, trainer: Trainer) -> None:
        if _writes(trainer) and "mAP50" in trainer.history[-1]:
            self.plot(trainer)

    def on_train_end(self, trainer: Trainer) -> None:
        if _writes(trainer) and trainer.history:
            self.plot(trainer)

    @staticmethod
    def plot(trainer: Trainer) -> None:
        from mistd.viz.plots import plot_curves

        columns: dict[str, list[float]] = {}
        keys = [k for k in dict.fromkeys(k for r in trainer.history for k in r) if k != "iteration"]
        for k in keys:
            columns[k] = [float(r.get(k, float("nan"))) for r in trainer.history]
        plot_curves(
            columns, trainer.run_dir / "curves.png", x="epoch", title=trainer.cfg.model_name
        )


def default_callbacks() -> list[Callback]:
    """The trainer's own callbacks, in the order they run: evaluation before what records it,
    checkpoints before the (slow, fallible) plot."""
    return [
        ProgressLogger(),
        PeriodicEvaluation(),
        ResultsCsv(),
        TensorBoardLogger(),
        Checkpointer(),
        CurvePlotter(),
    ]
