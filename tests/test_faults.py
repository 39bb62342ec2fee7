"""Fault injection: what a careful user meets (their input, their disk, their device, a crash)
ends in one line naming the file, a non-zero status and no traceback, and nothing half-written.

CLI cases run `python -m mistd.cli` in a subprocess (exit status and stderr as a user sees them);
the disk-full case sets RLIMIT_FSIZE in that subprocess, the crash case kills the training process
between the two checkpoint writes of an improving epoch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mistd.checkpoint import load_checkpoint
from mistd.config import apply_overrides, load_yaml, parse_dotted
from mistd.data.readers import read_dataset
from mistd.data.readers.uestc import read_uestc
from mistd.data.synth.config import preset_config
from mistd.data.synth.writer import write_synthetic_dataset
from mistd.data.writers import write_uestc_txt
from mistd.errors import InputError
from mistd.inference.detector import load_detector
from mistd.io import atomic_folder
from mistd.losses.simota import SimOTAAssigner
from mistd.run_config import RunConfig

pytestmark = pytest.mark.slow

TINY = [
    "model.width=0.125",
    "model.depth=0.33",
    "model.input_size=[64,64]",
    "train.batch_size=4",
    "train.epochs=1",
    "data.workers=0",
]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """A tiny synthetic data set (3 sequences x 6 frames, 64x64); its folder."""
    out = tmp_path_factory.mktemp("faults") / "synth"
    cfg = preset_config("easy", num_frames=6, height=64, width=64)
    write_synthetic_dataset(out, cfg, sequences=3, seed=0)
    return out


def mistd(*args: str, cwd: Path, fsize: int | None = None) -> subprocess.CompletedProcess:
    """Run the CLI as a user does; `fsize` caps the size of any file it writes (bytes)."""

    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    env = {**os.environ, "MISTD_DEBUG": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mistd.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=limit if fsize else None,
    )


def one_line_error(result: subprocess.CompletedProcess, status: int, *needles: str) -> str:
    """The failure contract: that status, no traceback, the last stderr line says `error:` and
    names every needle."""
    assert result.returncode == status, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def temporary_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


# ----------------------------------------------------------------------------- operating system


def test_output_under_a_regular_file_is_one_line(synth, tmp_path):
    (tmp_path / "afile").write_text("x")
    result = mistd(
        "train", "--model", "yolox-s", "--data", str(synth / "coco.json"),
        "--out", "afile", *TINY, cwd=tmp_path,
    )  # fmt: skip
    one_line_error(result, 1, "afile/exp", "not a folder")


def test_plot_to_an_unwritable_place_is_one_line(synth, tmp_path):
    dets = tmp_path / "dets.json"
    dets.write_text(
        json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "score": 1}])
    )
    result = mistd(
        "eval-dets", "--gt", str(synth / "coco.json"), "--dets", str(dets),
        "--plot", "/proc/pr.png", cwd=tmp_path,
    )  # fmt: skip
    one_line_error(result, 1, "/proc/pr.png")


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE behaviour is Linux's")
def test_disk_full_during_training_is_one_line_and_leaves_no_partial_file(synth, tmp_path):
    """Writes beyond 30 kB fail (EFBIG, as a full disk fails with ENOSPC): the checkpoint or the
    plot cannot be written; the error names it and no temporary file is left."""
    result = mistd(
        "train", "--model", "yolox-s", "--data", str(synth / "coco.json"), "--no-progress",
        *TINY, cwd=tmp_path, fsize=30_000,
    )  # fmt: skip
    line = one_line_error(result, 1, "runs/train/exp/", "too large")
    assert "write elsewhere" in line
    run = tmp_path / "runs" / "train" / "exp"
    assert not temporary_files(run)
    for checkpoint in run.glob("weights/*.pt"):  # what is there is complete
        assert "state_dict" in load_checkpoint(checkpoint)


def test_failed_command_leaves_no_empty_run_folder(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = mistd("train", "--model", "yolox-s", "--data", str(bad), *TINY, cwd=tmp_path)
    one_line_error(result, 2, "bad.json")
    assert not (tmp_path / "runs" / "train" / "exp").exists()


# ----------------------------------------------------------------------------- a crash


KILL_BETWEEN_WRITES = """
import os, sys
from mistd.engine import trainer as T
from mistd.run_config import build_run_config
from mistd.config import parse_dotted

real_save = T.save_checkpoint

def save(path, checkpoint):
    real_save(path, checkpoint)
    if checkpoint["best_map50"] > -1:  # the first of the two writes of an improving epoch
        os._exit(9)

T.save_checkpoint = save
cfg = build_run_config("yolox-s", parse_dotted(sys.argv[2:]))
T.Trainer(cfg, sys.argv[1], progress=False).train()
"""


def test_kill_between_the_two_checkpoint_writes_keeps_best(synth, tmp_path):
    """Killed after the first checkpoint write of an epoch that improved mAP50: a last.pt that
    records the new best never exists without its best.pt, and the resumed run ends with both."""
    run = tmp_path / "run"
    args = [*TINY, "train.epochs=2", "train.eval_interval=2", f"data.train={synth / 'coco.json'}"]
    script = tmp_path / "kill.py"
    script.write_text(KILL_BETWEEN_WRITES)
    killed = subprocess.run(
        [sys.executable, str(script), str(run), *args], capture_output=True, text=True, timeout=600
    )
    assert killed.returncode == 9, killed.stderr[-2000:]
    last = load_checkpoint(run / "weights" / "last.pt")
    if last["best_map50"] > -1:
        assert (run / "weights" / "best.pt").is_file(), "last.pt records a best.pt never written"
    result = mistd("train", "--resume", str(run), "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    last = load_checkpoint(run / "weights" / "last.pt")
    best = load_checkpoint(run / "weights" / "best.pt")
    assert last["best_map50"] == best["best_map50"] > -1
    assert best["iteration"] == last["iteration"]
    assert not temporary_files(run)


def test_resume_from_best_refuses_to_rewind(tmp_path):
    weights = tmp_path / "run" / "weights"
    weights.mkdir(parents=True)
    for name in ("last.pt", "best.pt"):
        torch.save({"state_dict": {}}, weights / name)
    from mistd.engine.trainer import Trainer

    with pytest.raises(InputError, match=r"--resume .*run.*--init .*best\.pt"):
        Trainer.from_checkpoint(weights / "best.pt")


# ----------------------------------------------------------------------------- concurrent writers


def test_two_writers_of_one_folder_the_later_fails(tmp_path):
    """Both start while --out is empty; the first to finish wins, the second fails and the first
    one's data set stays."""
    out = tmp_path / "out"
    first = atomic_folder(out)
    second = atomic_folder(out)
    tmp1, tmp2 = first.__enter__(), second.__enter__()
    (tmp1 / "mine").write_text("first")
    (tmp2 / "mine").write_text("second")
    first.__exit__(None, None, None)
    with pytest.raises(InputError, match="filled by another process"):
        second.__exit__(None, None, None)
    assert (out / "mine").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("text", ["1e-4", "1E-4", "+1e-4", "1.0e-4", "0.0001"])
def test_exponent_numbers_in_overrides_and_yaml(text, tmp_path):
    cfg = apply_overrides(RunConfig(), parse_dotted([f"train.lr={text}"]))
    assert cfg.train.lr == pytest.approx(1e-4)
    path = tmp_path / "exp.yaml"
    path.write_text(f"train:\n  lr: {text}\n")
    assert apply_overrides(RunConfig(), load_yaml(path)).train.lr == pytest.approx(1e-4)


def test_duplicate_yaml_key_is_an_error(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("train:\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n")
    with pytest.raises(InputError, match=r"exp\.yaml:4: .*'lr' is given twice"):
        load_yaml(path)


def test_non_finite_predictions_assign_nothing_and_give_a_nan_loss():
    from mistd.losses.criterion import YOLOXCriterion

    assigner = SimOTAAssigner(num_classes=1)
    centres = torch.tensor([[4.0, 4.0], [12.0, 4.0]])
    gt = torch.tensor([[5.0, 5.0, 6.0, 6.0]])
    boxes = torch.tensor([[5.0, 5.0, 6.0, 6.0], [float("nan")] * 4])
    assignment = assigner.assign(
        pred_boxes=boxes,
        cls_logits=torch.zeros(2, 1),
        obj_logits=torch.tensor([0.0, float("inf")]),
        anchor_centres=centres,
        anchor_strides=torch.tensor([8.0, 8.0]),
        gt_boxes=gt,
        gt_labels=torch.tensor([0]),
    )
    assert assignment.num_fg == 0
    criterion = YOLOXCriterion(num_classes=1, strides=(8,))
    maps = torch.zeros(1, 6, 4, 4, requires_grad=True)
    outputs = [maps * torch.tensor(float("nan"))]
    losses = criterion(outputs, [torch.tensor([[0.0, 10.0, 10.0, 4.0, 4.0]])])
    assert torch.isnan(losses["total"]) and losses["total"].requires_grad


def test_nan_weights_are_refused_by_detect(synth, tmp_path):
    from mistd.models.zoo import build_model

    model, _ = build_model("yolox-s", {"width": 0.125, "input_size": [64, 64]})
    state = {k: v.clone().fill_(float("nan")) if v.is_floating_point() else v
             for k, v in model.state_dict().items()}  # fmt: skip
    torch.save(
        {
            "state_dict": state,
            "model": "yolox-s",
            "config": {"width": 0.125, "input_size": [64, 64]},
        },
        tmp_path / "nan.pt",
    )
    with pytest.raises(InputError, match="NaN or inf"):
        load_detector(tmp_path / "nan.pt")
    result = mistd("detect", "--weights", "nan.pt", str(synth / "images" / "seq000"), cwd=tmp_path)
    one_line_error(result, 2, "nan.pt", "NaN or inf")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.*"))


@pytest.mark.parametrize(
    "device", ["foo", "cuda:99"] + ([] if torch.cuda.is_available() else ["cuda"])
)
def test_unusable_device_is_an_input_error(device):
    with pytest.raises(InputError, match=f"--device.*'{device}'"):
        load_detector("yolox-ir-s", device=device)


def test_pickled_objects_are_refused_in_one_line(tmp_path):
    torch.save({"state_dict": {}, "model": "yolox-s", "extra": Path("x")}, tmp_path / "p.pt")
    with pytest.raises(InputError) as info:
        load_checkpoint(tmp_path / "p.pt")
    assert "\n" not in str(info.value) and "weights_only=False" not in str(info.value)
    assert "pickled Python objects" in str(info.value)


# ----------------------------------------------------------------------------- written data sets


def test_written_paths_resolve_from_anywhere(tmp_path, monkeypatch):
    """`data synth` and `data convert` with relative --out: the written indexes name files that
    exist relative to the index itself, read back from another directory, and read by json."""
    monkeypatch.chdir(tmp_path)
    cfg = preset_config("easy", num_frames=3, height=32, width=32)
    write_synthetic_dataset(Path("a/synth"), cfg, sequences=1, seed=0)
    result = mistd("data", "convert", "a/synth/coco.json", "--out", "b/conv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for folder in (tmp_path / "a" / "synth", tmp_path / "b" / "conv"):
        coco = json.loads((folder / "coco.json").read_text())
        names = [image["file_name"] for image in coco["images"]]
        assert all((folder / name).is_file() and ".tmp" not in name for name in names), names
        lines = (folder / "uestc.txt").read_text().splitlines()
        assert all((folder / line.split()[0]).is_file() for line in lines), lines
    monkeypatch.chdir(tmp_path / "a")
    assert read_dataset(tmp_path / "b" / "conv" / "uestc.txt").num_frames == 3


def test_uestc_paths_with_spaces_and_a_bom_read_back(synth, tmp_path):
    dataset = read_dataset(synth / "coco.json")
    root = tmp_path / "with space"
    for record in dataset.frames():
        target = root / "my images" / record.sequence / Path(record.path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(record.path).read_bytes())
        record.path = target
    index = write_uestc_txt(dataset, root / "uestc.txt", root)
    index.write_text("\ufeff" + index.read_text())
    back = read_uestc(index)
    assert back.num_frames == dataset.num_frames
    assert all(" " in str(r.path) and Path(r.path).is_file() for r in back.frames())
    boxes = [r.boxes.tolist() for r in dataset.frames()]
    assert [r.boxes.tolist() for r in back.frames()] == [
        [[round(v) for v in box] for box in frame] for frame in boxes
    ]


def test_nan_threshold_and_negative_max_frames_are_refused(synth, tmp_path):
    images = str(synth / "images" / "seq000")
    result = mistd("detect", "--model", "tophat", images, "--max-frames", "-3", cwd=tmp_path)
    one_line_error(result, 2, "--max-frames")
    # --score-threshold is the old spelling of --display-threshold; the message names the option
    result = mistd("detect", "--model", "tophat", images, "--score-threshold", "nan", cwd=tmp_path)
    one_line_error(result, 2, "--display-threshold")
    assert not (tmp_path / "runs").exists()


def test_frames_larger_than_the_model_input_warn(synth, tmp_path):
    """Shipped weights (a small input) on 640x640 frames run at the frames' size by default; at
    the trained size a warning says the frames are resized and how to choose."""
    big = tmp_path / "big"
    cfg = preset_config("easy", num_frames=2, height=640, width=640)
    write_synthetic_dataset(big, cfg, sequences=1, seed=0)
    args = ("detect", "--weights", "yolox-ir-s", str(big / "coco.json"), "--no-video")
    result = mistd(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resized" not in result.stderr
    result = mistd(*args, "--input-size", "trained", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resized x0.40" in result.stderr and "--input-size native" in result.stderr


def test_format_images_on_a_video_file_is_one_line(tmp_path):
    import numpy as np

    from mistd.data.video import VideoWriter

    video = tmp_path / "clip.mp4"
    with VideoWriter(video, 10, (32, 32)) as writer:
        for _ in range(3):
            writer.write(np.zeros((32, 32), np.uint8))
    result = mistd("data", "info", str(video), "--format", "images", cwd=tmp_path)
    one_line_error(result, 1, "clip.mp4")


def test_eval_dets_refuses_non_finite_scores_and_negative_sizes(tmp_path):
    gt = {
        "images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 32}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 6, 6], "area": 36,
             "iscrowd": 0}
        ],
        "categories": [{"id": 1, "name": "target"}],
    }  # fmt: skip
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    cases = {
        "nan.json": '[{"image_id": 1, "category_id": 1, "bbox": [4, 4, 6, 6], "score": NaN}]',
        "neg.json": '[{"image_id": 1, "category_id": 1, "bbox": [4, 4, -6, 6], "score": 0.9}]',
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        result = mistd("eval-dets", "--gt", "gt.json", "--dets", name, cwd=tmp_path)
        one_line_error(result, 2, name)


def test_data_synth_refuses_absurd_frame_sizes(tmp_path):
    result = mistd("data", "synth", "--out", "s", "--size", "100000x100000", cwd=tmp_path)
    one_line_error(result, 2, "--size", "at most 8192x8192")
    assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------- issue 24 classes


def test_outputs_that_would_destroy_data_are_refused_in_one_line(synth, tmp_path):
    """An output folder that is or lies in its input, and existing files without --overwrite."""
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "coco.json").write_text((synth / "coco.json").read_text())
    result = mistd("data", "convert", "copy", "--out", "copy", "--overwrite", cwd=tmp_path)
    one_line_error(result, 2, "copy", "input")
    result = mistd("data", "convert", "copy", "--out", "copy/sub", cwd=tmp_path)
    one_line_error(result, 2, "copy/sub", "lies inside the input folder")
    assert sorted(p.name for p in copy.iterdir()) == ["coco.json"]
    for args in (("export", "--model", "yolox-s"), ("convert-official", "x.pt")):
        (tmp_path / "keep.onnx").write_text("precious")
        (tmp_path / "x.pt").write_text("precious")
        out = "keep.onnx" if args[0] == "export" else "x.pt"
        result = mistd(*args, "--out", out, cwd=tmp_path)
        one_line_error(result, 2, out, "--overwrite")
        assert (tmp_path / out).read_text() == "precious"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("detect", "--model", "tophat", "IMAGES", "--fps", "nan"), "--fps must be in"),
        (("track", "--model", "tophat", "IMAGES", "--unconfirmed-weight", "2"), "[0, 1]"),
        (("track", "--model", "tophat", "IMAGES", "tracker.high_threshold=2"), "high_threshold"),
        (("bench", "--model", "yolox-s", "--threads", "0"), "--threads must be in"),
        (("data", "synth", "--out", "s", "--seed", "-1"), "--seed must be in"),
        (("export", "--model", "yolox-s", "--size", "100000"), "up to 8192"),
        (("train", "--model", "yolox-s", "--data", "DATA", "model=5"), "model: expected a mapping"),
        (("train", "--model", "yolox-s", "--data", "DATA", "train.max_steps=-5"), "max_steps"),
        (("demo", "--max-frames", "0"), "--max-frames must be >= 1"),
    ],
)
def test_numbers_out_of_range_are_one_line_before_any_work(synth, tmp_path, args, needle):
    args = [
        {"IMAGES": str(synth / "images" / "seq000"), "DATA": str(synth)}.get(a, a) for a in args
    ]
    result = mistd(*args, cwd=tmp_path)
    one_line_error(result, 2, needle)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "s").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE behaviour is Linux's")
def test_disk_full_during_data_synth_is_exit_1_with_advice(tmp_path):
    result = mistd(
        "data", "synth", "--out", "s", "--size", "512x512", "--frames", "5", "--sequences", "1",
        "--preset", "hard", cwd=tmp_path, fsize=20_000,
    )  # fmt: skip
    one_line_error(result, 1, ".png", "write elsewhere")
    assert not (tmp_path / "s").exists() and not temporary_files(tmp_path)


def test_a_second_training_of_one_run_folder_is_refused(synth, tmp_path):
    """As two `train --resume RUN` at once: the run folder is locked by the first."""
    from mistd.engine.trainer import Trainer
    from mistd.io import lock_folder
    from mistd.run_config import build_run_config

    cfg = build_run_config("yolox-s", parse_dotted([*TINY, f"data.train={synth / 'coco.json'}"]))
    run = tmp_path / "run"
    trainer = Trainer(cfg, run, progress=False)
    with lock_folder(run), pytest.raises(InputError, match="in use by another mistd process"):
        trainer.train()
    assert not (run / "weights").exists()
