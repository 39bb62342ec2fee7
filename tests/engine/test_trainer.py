"""The training loop on real zoo models and generated data: loss goes down, exact resume, NaNs."""

from __future__ import annotations

import csv
import math
import warnings

import pytest
import torch

from mistd.checkpoint import load_checkpoint
from mistd.data.readers import read_dataset
from mistd.engine.trainer import Trainer, split_sequences
from mistd.errors import InputError
from mistd.models.zoo import ZOO
from mistd.run_config import build_run_config
from mistd.weights import read_weights


def tiny_cfg(name: str, data, **train):
    settings = {
        "epochs": 2,
        "batch_size": 4,
        "epoch_fraction": 1.0,
        "eval_interval": 0,
        "lr": 1e-3,
        "warmup_epochs": 1.0,
        "flat_epochs": 0.0,
        "lr_step": "iteration",
        "ema_tau": 5.0,
        **train,
    }
    return build_run_config(
        name,
        {
            "model": ZOO[name][0].tiny_overrides(),
            "data": {"train": str(data), "workers": 0},
            "train": settings,
        },
    )


def stop_after(trainer: Trainer, iterations: int) -> Trainer:
    """Stop `trainer` after `iterations` steps as an interruption would (`stop_reason`; the
    schedule is untouched, `last.pt` is written); a resumed run goes on."""

    def stop(t: Trainer) -> None:
        if t.iteration >= iterations:
            t.stop_reason = f"test: stopped after {iterations} iterations"

    trainer.add_callback("on_step_end", stop)
    return trainer


def record_losses(trainer: Trainer) -> list[tuple[int, dict[str, float]]]:
    losses: list[tuple[int, dict[str, float]]] = []
    trainer.add_callback("on_step_end", lambda t: losses.append((t.iteration, t.last_losses)))
    return losses


@pytest.mark.slow
def test_smoke_training_reduces_loss(tiny_data, tmp_path):
    """A tiny real model trained on generated data: the loss goes down; outputs are written."""
    cfg = tiny_cfg("mf-baseline", tiny_data, epochs=4, lr=4e-3, eval_interval=4, ema=False)
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    losses = record_losses(trainer)
    result = trainer.train()
    totals = [v["total"] for _, v in losses]
    # batch losses are noisy (16 steps of 2 clips): compare the first steps with the second half
    second_half = totals[len(totals) // 2 :]
    first, last = sum(totals[:3]) / 3, sum(second_half) / len(second_half)
    assert last < 0.9 * first, " ".join(f"{v:.3f}" for v in totals)
    run = tmp_path / "run"
    for name in ("config.yaml", "results.csv", "curves.png", "weights/last.pt", "weights/best.pt"):
        assert (run / name).is_file(), name
    rows = list(csv.DictReader((run / "results.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["mAP50"] != "" and rows[0]["mAP50"] == ""  # evaluated at epoch 4 only
    assert result["best_map50"] == pytest.approx(float(rows[-1]["mAP50"]))
    ckpt = load_checkpoint(run / "weights" / "last.pt")
    assert ckpt["model"] == "mf-baseline" and ckpt["epoch"] == 4 and ckpt["iteration"] == 16
    # the operating point the evaluation found travels with the weights (none found here)
    assert ckpt["thresholds"] == trainer.found_thresholds()


def test_checkpoints_carry_the_operating_point_the_evaluation_found(tiny_data, tmp_path):
    """`thresholds.operating` of a checkpoint is the best-F1 score of the last evaluation
    (class-agnostic where the data has several classes); `read_weights` reads it back."""
    from mistd.checkpoint import save_checkpoint

    trainer = Trainer(tiny_cfg("yolox-s", tiny_data, epochs=1), tmp_path / "run", progress=False)
    assert trainer.state()["thresholds"] is None  # no evaluation yet
    trainer.metrics = {"best_f1": 0.0, "best_f1_threshold": 1.0}
    assert trainer.found_thresholds() is None  # nothing found: no operating point
    trainer.metrics = {"best_f1": 0.6, "best_f1_threshold": 0.42}
    assert trainer.found_thresholds() == {"operating": 0.42}
    agnostic = {"best_f1": 0.7, "best_f1_threshold": 0.35}
    trainer.metrics["breakdown"] = {"class_agnostic": agnostic}
    path = save_checkpoint(tmp_path / "w.pt", trainer.state())
    assert read_weights(path).thresholds.operating == pytest.approx(0.35)


def _final_state(run_dir) -> dict:
    return load_checkpoint(run_dir / "weights" / "last.pt")


@pytest.mark.slow
def test_resume_after_a_stop_matches_uninterrupted(tiny_data, tmp_path):
    """Stop mid-epoch, resume: same losses, weights, EMA and logs as one run.

    CHAL has Dropout2d, so this also checks that the torch RNG is restored."""
    cfg = tiny_cfg("chal", tiny_data)
    full = Trainer(cfg, tmp_path / "full", progress=False)
    full_losses = record_losses(full)
    full.train()
    assert len(full_losses) == 12  # 2 epochs x 6 batches of 4 clips (24 clips)

    part = Trainer(tiny_cfg("chal", tiny_data), tmp_path / "part", progress=False)
    part = stop_after(part, 8)  # epoch 2, batch 2 of 6
    part_losses = record_losses(part)
    summary = part.train()
    assert summary["iterations"] == 8 and summary["epochs_done"] == 1
    resumed = Trainer.from_checkpoint(tmp_path / "part", progress=False)
    assert (resumed.epoch, resumed.batch_in_epoch, resumed.iteration) == (1, 2, 8)
    resumed_losses = record_losses(resumed)
    resumed.train()

    assert part_losses + resumed_losses == full_losses
    a, b = _final_state(tmp_path / "full"), _final_state(tmp_path / "part")
    for key in ("state_dict",):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), name
    for name, tensor in a["ema"]["state_dict"].items():
        assert torch.equal(tensor, b["ema"]["state_dict"][name]), name
    assert a["ema"]["updates"] == b["ema"]["updates"] == 12
    assert (tmp_path / "full" / "results.csv").read_text() == (
        tmp_path / "part" / "results.csv"
    ).read_text()


class Killed(RuntimeError):
    pass


@pytest.mark.slow
def test_resume_after_crash_from_periodic_checkpoint(tiny_data, tmp_path):
    """A run that dies (exception in a callback) resumes from its last periodic checkpoint."""
    cfg = tiny_cfg("mf-baseline", tiny_data, checkpoint_interval=3)
    full = Trainer(cfg, tmp_path / "full", progress=False)
    full_losses = record_losses(full)
    full.train()

    crashing = Trainer(cfg, tmp_path / "crash", progress=False)

    def die(t: Trainer) -> None:
        if t.iteration == 5:
            raise Killed

    crashing.add_callback("on_step_end", die)
    with pytest.raises(Killed):
        crashing.train()
    resumed = Trainer.from_checkpoint(tmp_path / "crash" / "weights" / "last.pt", progress=False)
    assert resumed.iteration == 3  # the checkpoint of iteration 3; 4 and 5 are redone
    resumed_losses = record_losses(resumed)
    resumed.train()
    assert resumed_losses == full_losses[3:]
    a, b = _final_state(tmp_path / "full"), _final_state(tmp_path / "crash")
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name


class NaNAfter(torch.nn.Module):
    """Wraps a model; its loss term `obj` becomes NaN from call `start` on."""

    def __init__(self, model, start: int):
        super().__init__()
        self.inner = model
        self.start = start
        self.calls = 0

    def loss(self, clip, targets):
        self.calls += 1
        losses = self.inner.loss(clip, targets)
        if self.calls >= self.start:
            losses["obj"] = losses["obj"] * float("nan")
            losses["total"] = losses["total"] + losses["obj"]
        return losses


def test_nan_steps_are_skipped_then_the_run_stops(tiny_data, tmp_path):
    from mistd.models.zoo import build_model

    cfg = tiny_cfg("mf-baseline", tiny_data, max_nan_steps=3, ema=False)
    model = NaNAfter(build_model("mf-baseline", ZOO["mf-baseline"][0].tiny_overrides())[0], 3)
    trainer = Trainer(cfg, tmp_path / "run", model=model, progress=False)
    with pytest.warns(UserWarning, match=r"non-finite loss \(.*obj.*\) at epoch 1, iteration 3"):
        before = None

        def snapshot(t: Trainer) -> None:
            nonlocal before
            if t.iteration == 2:
                before = {k: v.clone() for k, v in t.model.state_dict().items()}

        trainer.add_callback("on_step_end", snapshot)
        result = trainer.train()
    assert result["iterations"] == 5  # 2 good steps, NaN at 3, 4, 5 -> stop after the 3rd
    assert "3 consecutive non-finite losses" in result["stopped"]
    assert "epoch 1, iteration 5" in result["stopped"] and "obj" in result["stopped"]
    # Skipped steps leave the weights untouched and finite.
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    ckpt = load_checkpoint(tmp_path / "run" / "weights" / "last.pt")
    weights = [v for v in ckpt["state_dict"].values() if v.is_floating_point()]
    assert all(torch.isfinite(v).all() for v in weights)


def test_split_holds_out_whole_sequences(tiny_data):
    dataset = read_dataset(tiny_data)
    train, val = split_sequences(dataset, 0.34, seed=1)
    names_train = {s.name for s in train.sequences}
    names_val = {s.name for s in val.sequences}
    assert len(names_val) == 1 and len(names_train) == 2 and not names_train & names_val
    assert train.num_frames + val.num_frames == dataset.num_frames
    assert split_sequences(dataset, 0.34, seed=1)[1].sequences[0].name in names_val  # seeded


def test_split_single_sequence_uses_a_contiguous_tail(tiny_data):
    dataset = read_dataset(tiny_data)
    dataset.sequences = dataset.sequences[:1]
    with pytest.warns(UserWarning, match="one sequence"):
        train, val = split_sequences(dataset, 0.25, seed=0)
    assert [f.index for f in train.sequences[0].frames] == list(range(6))
    assert [f.index for f in val.sequences[0].frames] == [6, 7]


def test_bad_configs_fail_with_a_message(tiny_data):
    with pytest.raises(InputError, match="did you mean 'epochs'"):
        build_run_config("mf-baseline", {"train": {"epoch": 3}})
    with pytest.raises(InputError, match="did you mean 'mf-baseline'"):
        build_run_config("mf-baselin")
    with pytest.raises(InputError, match="train.batch_size"):
        build_run_config("mf-baseline", {"train": {"batch_size": 0}})
    cfg = tiny_cfg("mf-baseline", tiny_data, batch_size=64)
    with pytest.raises(InputError, match="fewer than one batch"):
        Trainer(cfg, None, progress=False)


@pytest.mark.slow
def test_schedule_per_epoch_follows_official_warm_cosine(tiny_data):
    cfg = tiny_cfg("mf-baseline", tiny_data, lr_step="epoch", epochs=3)
    trainer = stop_after(Trainer(cfg, None, progress=False), 13)  # epoch 3 has begun
    lrs = []
    trainer.add_callback("on_epoch_start", lambda t: lrs.append(t.optimizer.param_groups[0]["lr"]))
    trainer.train()
    expected = [trainer.schedule(e) for e in range(3)]
    assert lrs == expected and not math.isclose(lrs[0], lrs[1])


def test_class_ids_beyond_the_model_fail_early(tiny_data):
    dataset = read_dataset(tiny_data)
    dataset.sequences[0].frames[0].labels[:] = 3
    cfg = tiny_cfg("mf-baseline", tiny_data)
    with pytest.raises(InputError, match="set model.num_classes=4"):
        Trainer(cfg, None, train_data=dataset, progress=False)


def test_training_data_without_targets_warns(tiny_data, tmp_path):
    from mistd.data.readers import read_dataset

    data = read_dataset(tiny_data)
    for record in data.frames():
        record.boxes = record.boxes[:0]
        record.labels = record.labels[:0]
    cfg = tiny_cfg("yolox-s", tiny_data, epochs=1, eval_interval=0)
    with pytest.warns(UserWarning, match="no annotated targets"):
        Trainer(cfg, tmp_path / "run", train_data=data, progress=False)


def test_run_paths_are_made_absolute(tmp_path, monkeypatch):
    from mistd.run_config import absolute_paths, build_run_config

    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = build_run_config(
        "yolox-s", {"data": {"train": "data", "val_select": "val"}, "train": {"init_weights": "x"}}
    )
    absolute_paths(cfg)
    assert cfg.data.train == str((tmp_path / "data").resolve())
    assert cfg.data.val_select == "val" and cfg.train.init_weights == "x"  # names, not paths


def test_multi_source_training_reports_each_source(tmp_path, make_dataset):
    """`data.sources`: two data sets of different frame sizes train one model; validation gives
    one row per source (frames at their own size), and the run resumes mid-way identically."""
    first = make_dataset(tmp_path / "a", num_sequences=2, num_frames=4, size=64, seed=1)
    second = make_dataset(tmp_path / "b", num_sequences=2, num_frames=4, size=96, seed=2)
    sources = [
        {"name": "a", "path": str(first), "weight": 2.0, "val": str(first)},
        {"name": "b", "path": str(second), "scale": [1.0, 1.5], "val": str(second)},
    ]
    overrides = {
        "model": {"width": 0.125, "input_size": [64, 64]},
        "data": {
            "sources": sources,
            "workers": 0,
            "source_epoch": 8,
            "min_box": 8.0,
            "val_max_frames": 4,
        },
        "train": {
            "max_steps": 4,
            "batch_size": 4,
            "eval_interval": 1,
            "seed": 3,
            "epoch_fraction": 1.0,
        },
    }
    cfg = build_run_config("yolox-s", overrides)
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    losses = record_losses(trainer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()
    # validation runs each source's frames at their own size (64 and 96 px, trained at 64)
    assert not [w for w in caught if "resized" in str(w.message)]
    rows = list(csv.DictReader((tmp_path / "run" / "results.csv").open()))
    assert len(rows) == 2 and {"mAP50_a", "mAP50_b", "f1_a", "f1_b"} <= set(rows[-1])
    assert float(rows[-1]["mAP50"]) == pytest.approx(
        (float(rows[-1]["mAP50_a"]) + float(rows[-1]["mAP50_b"])) / 2
    )
    assert cfg.data.class_names == ["target"]

    cut = build_run_config("yolox-s", overrides)
    stop_after(Trainer(cut, tmp_path / "cut", progress=False), 2).train()
    resumed = Trainer.from_checkpoint(tmp_path / "cut", progress=False)
    resumed_losses = record_losses(resumed)
    resumed.train()
    assert resumed_losses == losses[2:]


def test_a_checkpoint_with_the_old_key_names_resumes(tiny_data, tmp_path):
    """A `last.pt` written before `train.max_iters` / `train.score_threshold` were renamed
    (`max_steps` / `decode_floor`) resumes, silently where the old keys hold their defaults."""
    from mistd.checkpoint import save_checkpoint
    from mistd.config import RenamedKeyWarning

    Trainer(tiny_cfg("yolox-s", tiny_data, max_steps=2), tmp_path / "run", progress=False).train()
    path = tmp_path / "run" / "weights" / "last.pt"
    ckpt = load_checkpoint(path)
    train = ckpt["config"]["train"]
    train["score_threshold"] = train.pop("decode_floor")
    train["max_iters"] = 0
    save_checkpoint(path, ckpt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = Trainer.from_checkpoint(
            tmp_path / "run", {"train": {"max_steps": 8}}, progress=False
        )
    assert not [w for w in caught if issubclass(w.category, RenamedKeyWarning)]
    assert resumed.iteration == 2 and resumed.cfg.train.decode_floor == 0.001
    assert resumed.train()["iterations"] == 8
    stored = load_checkpoint(path)["config"]["train"]
    assert stored["max_steps"] == 8 and "max_iters" not in stored and "decode_floor" in stored
