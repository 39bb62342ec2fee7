"""The shipped paper-benchmark configs (`mistd/configs/*.yaml`): each one is found by name the way
the CLI finds it, resolves to the official recipe, and trains one iteration on a tiny data set laid
out exactly as that benchmark's official files (`datasets/<NAME>/...`, run from the parent folder
with the config's own default paths)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mistd.checkpoint import load_checkpoint
from mistd.commands.train import load_cfg, shipped_configs
from mistd.data.readers import read_dataset
from mistd.data.writers import uestc_lines, write_coco_json
from mistd.engine.trainer import Trainer
from mistd.errors import InputError
from mistd.run_config import build_run_config
from mistd.structures import FrameDataset, FrameRecord, Sequence

# name -> (data set folder, train index, test index, frame suffix, frame (w, h), recorded prefix,
# targets per frame). The prefixes are what the authors' index files hold: absolute paths from
# their machine, or paths relative to their working folder (CHAL's utils_coco/coco_to_txt.py).
LAYOUTS = {
    "daub-h": (
        "DAUB-H",
        "coco_train_DAUBH.txt",
        "coco_val_DAUBH.txt",
        ".bmp",
        (32, 32),
        "/home/public/DAUB-H/",
        1,
    ),
    "irdst-r": (
        "IRDST-R",
        "coco_train_IRDST.txt",
        "coco_val_IRDST.txt",
        ".bmp",
        (40, 28),
        "datasets/IRDST-R/",
        1,
    ),
    "nudt-mirsdt": (
        "NUDT-MIRSDT",
        "coco_train_NUDT.txt",
        "coco_val_NUDT.txt",
        ".png",
        (32, 32),
        "/data1/NUDT-MIRSDT/",
        1,
    ),
    "itsdt-15k": (
        "ITSDT",
        "coco_train.txt",
        "coco_val.txt",
        ".bmp",
        (40, 30),
        "/home/dww/datasets/ITSDT/",
        3,
    ),
}
TINY = {
    "model": {"width": 0.125, "input_size": [64, 64]},
    "data": {"workers": 0},
    "train": {"batch_size": 2, "max_steps": 1, "eval_interval": 0, "device": "cpu"},
}


def _sequences(
    folder: Path, names: list[str], suffix: str, size: tuple[int, int], targets: int, seed: int
) -> FrameDataset:
    """Frames `folder/images/<seq>/<k><suffix>` of noise with bright 3x3 blobs; their records."""
    rng = np.random.default_rng(seed)
    width, height = size
    sequences = []
    for name in names:
        records = []
        for k in range(4):
            image = rng.integers(40, 80, (height, width), dtype=np.uint8)
            boxes = []
            for _ in range(targets):
                x, y = int(rng.integers(4, width - 7)), int(rng.integers(4, height - 7))
                image[y : y + 3, x : x + 3] = 250
                boxes.append([x, y, x + 3, y + 3])
            path = folder / "images" / name / f"{k}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), image)
            records.append(
                FrameRecord(
                    name,
                    k,
                    path,
                    boxes=np.asarray(boxes, np.float32),
                    labels=np.zeros(targets, np.int64),
                    width=width,
                    height=height,
                )
            )
        sequences.append(Sequence(name, records))
    return FrameDataset(sequences)


def make_official_layout(workdir: Path, config: str) -> FrameDataset:
    """`workdir/datasets/<NAME>/` as released: two index files (foreign paths), images, and the
    test split's COCO json; returns the test split."""
    folder_name, train_txt, val_txt, suffix, size, prefix, targets = LAYOUTS[config]
    folder = workdir / "datasets" / folder_name
    train = _sequences(folder, ["1", "2"], suffix, size, targets, seed=0)
    test = _sequences(folder, ["3"], suffix, size, targets, seed=1)
    for dataset, index in ((train, train_txt), (test, val_txt)):
        lines = [prefix + line for line in uestc_lines(dataset, folder)]
        (folder / index).write_text("\n".join(lines) + "\n")
    write_coco_json(test, folder / "instances_test2017.json", folder)
    return test


def test_every_benchmark_is_shipped():
    assert set(LAYOUTS) <= set(shipped_configs())


@pytest.mark.parametrize("config", sorted(LAYOUTS))
def test_config_is_the_official_recipe(config):
    """The shipped file resolves (with no other override) to the official CHAL recipe."""
    cfg = build_run_config("chal", load_cfg(config))
    assert tuple(cfg.model.input_size) == (512, 512) and cfg.model.num_frames == 5
    t = cfg.train
    assert (t.optimizer, t.lr, t.weight_decay, t.batch_size, t.epochs) == (
        "adamw",
        8e-5,
        0.05,
        4,
        100,
    )
    assert (t.schedule, t.warmup_epochs, t.ema, t.epoch_fraction) == ("cosine", 3.0, True, 0.5)
    loss = cfg.model.loss
    assert (loss.reg_weight, loss.obj_weight, loss.cls_weight) == (4.0, 1.0, 1.2)
    assert (loss.nwd_weight, loss.ciou_weight) == (0.5, 0.5)
    folder = LAYOUTS[config][0]
    assert cfg.data.train == f"datasets/{folder}/{LAYOUTS[config][1]}"
    assert cfg.data.val == f"datasets/{folder}/{LAYOUTS[config][2]}"
    # NUDT-MIRSDT auto-detects: the CHAL index (UESTC txt) or the DTUM split lists.
    expected_format = "auto" if config == "nudt-mirsdt" else "uestc"
    assert cfg.data.root == f"datasets/{folder}" and cfg.data.format == expected_format
    paper = build_run_config("chal-paper", load_cfg(config))
    assert (paper.model.loss.nwd_weight, paper.model.loss.ciou_weight) == (1.0, 0.0)


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted(LAYOUTS))
def test_one_iteration_on_official_layout(config, tmp_path, monkeypatch):
    """Run from the folder holding `datasets/`: the config's own paths find every frame."""
    test_split = make_official_layout(tmp_path, config)
    monkeypatch.chdir(tmp_path)
    cfg = build_run_config("chal", load_cfg(config), TINY)
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    # The indexes were remapped onto this machine's files, boxes intact.
    val = trainer.val_data
    assert val is not None and val.num_frames == 4
    assert [r.path.resolve() for r in val.frames()] == [r.path for r in test_split.frames()]
    for got, want in zip(val.frames(), test_split.frames(), strict=True):
        np.testing.assert_array_equal(got.boxes, want.boxes)
    assert trainer.train_data.num_frames == 8
    result = trainer.train()
    assert result["iterations"] == 1 and not result["stopped"]
    assert math.isfinite(trainer.last_losses["total"]) and trainer.last_losses["total"] > 0
    ckpt = load_checkpoint(tmp_path / "run" / "weights" / "last.pt")
    assert ckpt["model"] == "chal" and ckpt["iteration"] == 1
    weights = [v for v in ckpt["state_dict"].values() if v.is_floating_point()]
    assert all(torch.isfinite(v).all() for v in weights)
    # The test split's COCO json (used by `mistd eval`) holds the same frames and boxes.
    coco = read_dataset(Path("datasets") / LAYOUTS[config][0] / "instances_test2017.json")
    assert [len(r.boxes) for r in coco.frames()] == [len(r.boxes) for r in val.frames()]


def test_cli_trains_a_shipped_config_by_name(tmp_path, monkeypatch):
    """`mistd train --model chal --cfg daub-h` plus tiny overrides: one command, one run."""
    from typer.testing import CliRunner

    from mistd.cli import app

    make_official_layout(tmp_path, "daub-h")
    monkeypatch.chdir(tmp_path)
    tiny = [f"{s}.{k}={v}" for s, section in TINY.items() for k, v in section.items()]
    args = ["train", "--model", "chal", "--cfg", "daub-h", "--no-progress", *tiny]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "train" / "exp" / "weights" / "last.pt").is_file()
    # `mistd.cli.main` prints an InputError in one line and exits 2.
    bad = CliRunner().invoke(app, ["train", "--model", "chal", "--cfg", "daub"])
    assert isinstance(bad.exception, InputError) and "shipped: daub-h" in str(bad.exception)


def test_cli_lookup_by_name_file_and_unknown(tmp_path):
    own = tmp_path / "mine.yaml"
    own.write_text("train:\n  epochs: 7\n")
    assert load_cfg(own) == {"train": {"epochs": 7}}
    assert load_cfg("daub-h.yaml") == load_cfg("daub-h")
    with pytest.raises(InputError, match="daub-h, irdst-r, itsdt-15k, nudt-mirsdt"):
        load_cfg("daub")


# --------------------------------------------------------------------------- DTUM release


def make_dtum_release(folder: Path, sequences: dict[str, int], size=(36, 28)) -> None:
    """NUDT-MIRSDT as released with DTUM: `Sequence<N>/Mix/<00001>.mat` frame stacks `[t, H, W]`
    (float, the last slice is the frame), `Sequence<N>/masks/<00001>.png`, `train.txt`/`test.txt`.
    The frame's target is a 3x3 blob at (x, y) = (5 + 2k, 6 + k); older slices are decoys."""
    import scipy.io

    width, height = size
    rng = np.random.default_rng(0)
    splits: dict[str, list[str]] = {"train": [], "test": []}
    for name, split in sequences.items():
        for k in range(1, 5):
            stack = rng.uniform(60.0, 140.0, (3, height, width))
            x, y = 5 + 2 * k, 6 + k
            stack[-1, y : y + 3, x : x + 3] = 254.6
            stack[0, 20:23, 20:23] = 250.0  # not the current frame: must not be read
            mask = np.zeros((height, width), np.uint8)
            mask[y : y + 3, x : x + 3] = 255
            (folder / name / "Mix").mkdir(parents=True, exist_ok=True)
            (folder / name / "masks").mkdir(parents=True, exist_ok=True)
            scipy.io.savemat(folder / name / "Mix" / f"{k:05d}.mat", {"Mix": stack})
            assert cv2.imwrite(str(folder / name / "masks" / f"{k:05d}.png"), mask)
            splits[split].append(f"{name}/Mix/{k:05d}.mat")
    for split, lines in splits.items():
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")


def test_nudt_mirsdt_dtum_release_trains(tmp_path, monkeypatch):
    """The config's documented alternative: the DTUM release's own split lists."""
    from mistd.data.readers.frames import load_frame

    folder = tmp_path / "datasets" / "NUDT-MIRSDT"
    make_dtum_release(folder, {"Sequence1": "train", "Sequence2": "train", "Sequence85": "test"})
    monkeypatch.chdir(tmp_path)
    lists = {
        "data": {
            "train": "datasets/NUDT-MIRSDT/train.txt",
            "val": "datasets/NUDT-MIRSDT/test.txt",
        }
    }
    cfg = build_run_config("chal", load_cfg("nudt-mirsdt"), lists, TINY)
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    val = trainer.val_data
    assert val.format == "mirsdt" and [s.name for s in val.sequences] == ["Sequence85"]
    assert [s.name for s in trainer.train_data.sequences] == ["Sequence1", "Sequence2"]
    frame = val.sequences[0].frames[1]  # 00002.mat
    assert frame.index == 1 and (frame.width, frame.height) == (36, 28)
    np.testing.assert_array_equal(frame.boxes, [[9, 8, 12, 11]])
    image, depth = load_frame(frame)
    assert depth == 8 and image.dtype == np.uint8 and image.shape == (28, 36)
    assert image[8, 9] == 255 and image[21, 21] < 141  # the last slice, rounded
    result = trainer.train()
    assert result["iterations"] == 1 and math.isfinite(trainer.last_losses["total"])
    assert (tmp_path / "run" / "weights" / "last.pt").is_file()


def test_dtum_release_errors(tmp_path):
    folder = tmp_path / "NUDT-MIRSDT"
    make_dtum_release(folder, {"Sequence1": "train", "Sequence85": "test"})
    (folder / "Sequence1" / "masks" / "00003.png").unlink()
    with pytest.raises(InputError, match=r"train.txt:3.*missing file .*masks/00003.png"):
        read_dataset(folder / "train.txt")
    (folder / "Sequence85" / "Mix" / "00002.mat").unlink()
    (folder / "Sequence85" / "masks" / "00002.png").unlink()
    lines = (folder / "test.txt").read_text().splitlines()
    (folder / "test.txt").write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    with pytest.raises(InputError, match="frame 2 is missing"):
        read_dataset(folder / "test.txt")
    (folder / "bad.txt").write_text("Sequence1/Mix/00001.mat\nSequence1/img/00002.png\n")
    with pytest.raises(InputError, match=r"bad.txt:2.*expected Sequence<N>/Mix/<k>.mat"):
        read_dataset(folder / "bad.txt")
    from mistd.data.readers.frames import read_image

    broken = folder / "Sequence1" / "Mix" / "00001.mat"
    broken.write_bytes(b"not a mat file")
    with pytest.raises(InputError, match="cannot read MATLAB file"):
        read_image(broken)
