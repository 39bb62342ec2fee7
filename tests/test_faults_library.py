"""Fault injection at the library level, one test per class of fault: outputs that would destroy
inputs or earlier outputs, half-written or stale files, concurrent writers, stale caches, text in
another encoding, numbers out of range, frames no model can take, YAML bombs and long echoes.

Each test names the class it covers; the CLI's side of the same contract (one line, exit status)
is in `tests/test_faults.py`.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mistd.config import apply_overrides, load_yaml, parse_dotted, safe_yaml
from mistd.data.synth.config import preset_config
from mistd.data.synth.writer import write_synthetic_dataset
from mistd.errors import InputError, check_range, in_range, short
from mistd.io import (
    atomic_folder,
    atomic_path,
    check_disjoint,
    check_overwrite,
    lock_folder,
    read_text,
    remove_stale_temporaries,
    temporary_prefix,
)
from mistd.run_config import RunConfig, build_run_config


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faults_lib") / "synth"
    write_synthetic_dataset(out, preset_config("easy", num_frames=4, height=32, width=32), 2, 0)
    return out


# ------------------------------------------------------------------ outputs that destroy inputs


def test_an_output_that_is_holds_or_lies_in_an_input_is_refused(synth, tmp_path):
    from mistd.data.convert import convert_dataset
    from mistd.data.readers import read_dataset

    dataset = read_dataset(synth)
    for out in (synth, synth.parent, synth / "images" / "seq000" / "x"):
        with pytest.raises(InputError, match="--out .*input"):
            convert_dataset(dataset, out, overwrite=True, progress=False)
    with pytest.raises(InputError, match="lies inside the input folder"):
        check_disjoint(synth / "sub", [synth])
    assert sorted(p.name for p in synth.iterdir()) == sorted(
        ["README.md", "coco.json", "images", "synth.yaml", "uestc.txt"]
    )
    check_disjoint(tmp_path / "elsewhere", [synth])  # no error


def test_an_existing_output_file_is_kept_without_overwrite(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_text("precious")
    with pytest.raises(InputError, match="--out exists; pass --overwrite"):
        check_overwrite(target, overwrite=False)
    assert check_overwrite(target, overwrite=True) == target
    with pytest.raises(InputError, match="is a folder"):
        check_overwrite(tmp_path, overwrite=True)
    assert target.read_text() == "precious"


# ------------------------------------------------------------------ half-written or stale files


def test_a_video_that_cannot_be_encoded_leaves_no_file(tmp_path):
    from mistd.data.video import VideoWriter

    for fps in (float("nan"), float("inf"), 0.0, -5.0):
        with pytest.raises(InputError, match="fps must be in"):
            VideoWriter(tmp_path / "a.mp4", fps, (32, 32))
    with pytest.raises(RuntimeError), VideoWriter(tmp_path / "b.mp4", 10, (32, 32)) as writer:
        writer.write(np.zeros((32, 32), np.uint8))
        raise RuntimeError("crash mid-video")
    assert list(tmp_path.iterdir()) == []


KILLED_WRITER = """
import os, sys
from mistd.io import atomic_folder, atomic_path
with atomic_folder(sys.argv[1]) as tmp:
    (tmp / "big").write_bytes(b"x" * 1000)
    with atomic_path(sys.argv[2]) as part:
        part.write_bytes(b"y" * 1000)
        os.kill(os.getpid(), 9)
"""


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_run(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path / "out"), str(tmp_path / "f.json")],
        capture_output=True,
    )
    assert result.returncode == -9
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and all(".mistd-" in name for name in left), left
    # Another process's live temporaries are never touched; the dead one's go at the next write.
    live = tmp_path / f"{temporary_prefix('out')}abc.tmp"
    live.mkdir()
    with atomic_folder(tmp_path / "out") as tmp:
        (tmp / "data").write_text("ok")
    with atomic_path(tmp_path / "f.json") as part:
        part.write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["f.json", "out", live.name])
    assert remove_stale_temporaries(tmp_path, "out") == []  # this process is alive


def test_written_folders_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_folder(tmp_path / "data") as tmp:
            (tmp / "x").write_text("1")
    finally:
        os.umask(old)
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o755


# ------------------------------------------------------------------ concurrent writers


def test_a_locked_run_folder_refuses_a_second_process(tmp_path):
    script = "import sys\nfrom mistd.io import lock_folder\nwith lock_folder(sys.argv[1]): pass\n"
    with lock_folder(tmp_path / "run"):
        other = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / "run")], capture_output=True, text=True
        )
        assert other.returncode == 1 and "in use by another mistd process" in other.stderr
    again = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run")])
    assert again.returncode == 0  # released with its holder


# ------------------------------------------------------------------ stale caches


def test_frame_cache_follows_content_and_survives_a_corrupt_entry(tmp_path, monkeypatch):
    from mistd.data import frame_cache
    from mistd.data.video import VideoWriter

    monkeypatch.setenv("MISTD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(frame_cache, "_OPEN", type(frame_cache._OPEN)())

    def write(path: Path, level: int) -> None:
        with VideoWriter(path, 10, (32, 32)) as writer:
            for _ in range(3):
                writer.write(np.full((32, 32), level, np.uint8))

    video = tmp_path / "v.mp4"
    write(video, 40)
    first = frame_cache.decoded_frames(video)
    stat = video.stat()
    write(tmp_path / "w.mp4", 200)
    os.replace(tmp_path / "w.mp4", video)
    if video.stat().st_size != stat.st_size:
        pytest.skip("the encoder gave the two videos different sizes")
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # size and mtime restored
    second = frame_cache.decoded_frames(video)
    assert abs(float(first.mean()) - 40) < 5 and abs(float(second.mean()) - 200) < 5
    # A truncated cache file is decoded again, with one warning.
    target = frame_cache.cache_path(video)
    frame_cache._OPEN.clear()
    target.write_bytes(target.read_bytes()[:100])
    monkeypatch.setattr(frame_cache, "_WARNED_CORRUPT", False)
    with pytest.warns(UserWarning, match="unreadable decoded-frame cache"):
        again = frame_cache.decoded_frames(video)
    assert again.shape == (3, 32, 32) and abs(float(again.mean()) - 200) < 5


# ------------------------------------------------------------------ text in another encoding


@pytest.mark.parametrize(
    ("data", "found"),
    [
        ("train:\n  lr: 0.1\n".encode("utf-16"), "UTF-16 text"),
        ("train:\n  lr: 0.1\n".encode("utf-32"), "UTF-32 text"),
        ("# caf\xe9\ntrain:\n  lr: 0.1\n".encode("latin-1"), "not UTF-8 text"),
    ],
)
def test_text_in_another_encoding_is_one_line_naming_it(tmp_path, data, found):
    path = tmp_path / "exp.yaml"
    path.write_bytes(data)
    with pytest.raises(InputError, match=f"exp.yaml.*{found}.*save it as UTF-8"):
        load_yaml(path)
    with pytest.raises(InputError, match=found):
        read_text(path)


# ------------------------------------------------------------------ numbers out of range


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.num_frames=0", r"model.num_frames must be in \[1, 64\], got 0"),
        ("data.workers=-3", r"data.workers must be in \[0, 256\]"),
        ("model=5", "model: expected a mapping"),
        ("train.max_steps=-5", "train.max_steps must be >= 0"),
        ("train.ema_decay=2", r"train.ema_decay must be in \[0, 1\)"),
        ("train.lr=.nan", "train.lr: expected a finite number"),
        ("train.seed=-1", "train.seed must be in"),
        ("model.input_size=[63,64]", "input_size must be .*multiples of 32"),
    ],
)
def test_config_values_out_of_range_name_the_key_and_the_range(override, message):
    with pytest.raises(InputError, match=message):
        build_run_config("mf-baseline", parse_dotted([override]))


def test_tracker_and_detector_settings_out_of_range():
    from mistd.classical.tophat import TopHatConfig
    from mistd.tracking.tracker import TrackerConfig

    for key, value in (("high_threshold", 2.0), ("acceleration_std", -3.0), ("min_hits", 0)):
        with pytest.raises(InputError, match=f"{key} must be"):
            TrackerConfig(**{key: value})
    with pytest.raises(InputError, match=r"smooth_sigma must be in \[0, 20\]"):
        apply_overrides(TopHatConfig(), {"smooth_sigma": -1})


def test_check_range_refuses_nan_and_inf_unless_the_interval_says_inf():
    assert in_range(1, ">= 1") and not in_range(float("nan"), ">= 0")
    assert not in_range(math.inf, "> 0") and in_range(math.inf, "[0, inf]")
    assert not in_range(True, ">= 0")
    with pytest.raises(InputError, match=r"--fps must be in \(0, 1000\], got nan"):
        check_range("--fps", float("nan"), "(0, 1000]")


def test_library_entry_points_check_their_numbers(tmp_path):
    from mistd.data.synth.writer import write_synthetic_dataset
    from mistd.inference.bench import benchmark
    from mistd.inference.predictor import Predictor
    from mistd.tracking.confirm import TrackConfirmation

    cfg = preset_config("easy", num_frames=2, height=32, width=32)
    with pytest.raises(InputError, match="--seed must be in"):
        write_synthetic_dataset(tmp_path / "s", cfg, sequences=1, seed=-1)
    assert not (tmp_path / "s").exists()
    with pytest.raises(InputError, match="--threads must be in"):
        benchmark(None, (64, 64), threads=0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="--unconfirmed-weight must be in"):
        TrackConfirmation(unconfirmed_weight=2.0)
    with pytest.raises(InputError, match="--unconfirmed-weight must be in"):
        Predictor("tophat", confirm_tracks=True, unconfirmed_weight=-0.5)


# ------------------------------------------------------------------ frames no model can take


def test_frames_no_model_can_take_are_refused():
    from mistd.data.transforms import check_input_size, to_model_input

    for frame, message in (
        (np.zeros((0, 64), np.uint8), "empty"),
        (np.full((8, 8), np.nan, np.float32), "NaN"),
        (np.full((8, 8), 70000, np.int32), "outside 0..65535"),
        (np.full((8, 8), -1, np.int32), "outside 0..65535"),
    ):
        with pytest.raises(InputError, match=message):
            to_model_input(frame[None], 16, (64, 64))
    for size in ((63, 64), (0, 64), (100000, 64), "a"):
        with pytest.raises(InputError, match="multiples of 32"):
            check_input_size(size)
    assert check_input_size(64) == (64, 64)


# ------------------------------------------------------------------ YAML bombs and long echoes


def test_yaml_alias_bombs_and_huge_texts_are_refused(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    previous = "a"
    for name in "bcdefghi":
        bomb += f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    with pytest.raises(Exception, match="alias bomb"):
        safe_yaml(bomb)
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb)
    with pytest.raises(InputError, match=r"bomb.yaml:\d+: invalid YAML .*alias bomb"):
        load_yaml(path)
    path.write_text("x: " + "a" * 2_000_000)
    with pytest.raises(InputError, match="more than the 1000000 accepted"):
        load_yaml(path)
    assert safe_yaml("base: &b 1\nother: *b\n") == {"base": 1, "other": 1}


def test_echoed_values_are_cut_to_a_readable_length():
    long_value = "x" * 7000
    assert len(short(long_value)) < 120 and "7002 characters" in short(long_value)
    with pytest.raises(InputError) as info:
        apply_overrides(RunConfig(), {"model_name": ["x" * 7000]})
    assert len(str(info.value)) < 300
    error = InputError("a\nb " + "y" * 5000, path="f.txt")
    assert "\n" not in str(error) and len(str(error)) <= 600


# ------------------------------------------------------------------ data sets: ambiguous or bad


def _clip(path: Path, frames: int = 3) -> None:
    from mistd.data.video import VideoWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, 10, (32, 24)) as writer:
        for _ in range(frames):
            writer.write(np.zeros((24, 32), np.uint8))


LABELS = "frame,label,x,y,width,height\n0,DRONE,2,2,4,4\n"


@pytest.fixture
def clips(tmp_path) -> Path:
    """A video-csv folder: two clips with labels and a clips.csv."""
    folder = tmp_path / "clips"
    for name in ("A", "B"):
        _clip(folder / "videos" / f"{name}.mp4")
        (folder / "labels").mkdir(parents=True, exist_ok=True)
        (folder / "labels" / f"{name}_LABELS.csv").write_text(LABELS)
    (folder / "clips.csv").write_text("clip,split\nA,train\nB,val\n")
    return folder


def test_ambiguous_data_sets_are_refused_naming_both_files(clips):
    from mistd.data.readers import read_dataset

    assert read_dataset(clips).num_frames == 6
    (clips / "videos" / "A.csv").write_text(LABELS)  # a stray second label file
    with pytest.raises(InputError, match=r"two label files .*A\.csv and .*A_LABELS\.csv"):
        read_dataset(clips)
    (clips / "videos" / "A.csv").unlink()
    (clips / "clips.csv").write_text("clip,split\nA,train\nB,val\nA,val\n")
    with pytest.raises(InputError, match=r"clips\.csv:4: clip 'A' is listed twice \(lines 2 and 4"):
        read_dataset(clips, select="train")
    (clips / "clips.csv").write_text("clip,split\nA,train\nB,val\n")
    _clip(clips / "videos" / "A.avi")
    with pytest.raises(InputError, match=r"two videos named 'A': A\.avi and A\.mp4"):
        read_dataset(clips)
    (clips / "videos" / "A.avi").unlink()
    (clips / "labels" / "A_LABELS.csv").write_text(
        "frame,label,x,y,width,height,x\n0,a,1,1,2,2,5\n"
    )
    with pytest.raises(InputError, match=r"A_LABELS\.csv:1: column 'x' appears twice"):
        read_dataset(clips)


def test_suspicious_data_is_warned_about_naming_the_file(clips):
    from mistd.data.readers import read_dataset

    (clips / "labels" / "C_LABELS.csv").write_text(LABELS)  # no video C
    (clips / "labels" / "A_LABELS.csv").write_text(LABELS + "0,DRONE,2,2,4,4\n")
    with pytest.warns(UserWarning) as caught:
        dataset = read_dataset(clips)
    messages = " | ".join(str(w.message) for w in caught)
    assert "C_LABELS.csv: label file(s) without a video" in messages
    assert "A_LABELS.csv:3: the same box as line 2" in messages
    assert dataset.sequences[0].frames[0].num_targets == 1


@pytest.mark.parametrize("target", ["labels/B_LABELS.csv", "clips.csv", "names.txt"])
def test_data_set_files_in_another_encoding_are_one_line(clips, target):
    from mistd.data.readers import read_dataset

    path = clips / target
    text = path.read_text() if path.exists() else "A\n"
    path.write_bytes(text.encode("utf-16"))
    # B is not selected: its label file is still read for the class list, and named.
    with pytest.raises(InputError, match=f"{path.name}: .*UTF-16 text .*save it as UTF-8"):
        read_dataset(clips, select=str(clips / "names.txt") if target == "names.txt" else "A")


def test_one_ground_truth_check_for_readers_and_eval_dets(tmp_path):
    import json

    from mistd.data.readers import read_dataset
    from mistd.evaluation.coco import evaluate_coco_files

    image = {"id": 1, "file_name": "a/0.png", "width": 32, "height": 32}
    dets = tmp_path / "dets.json"
    dets.write_text(
        json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "score": 1}])
    )
    cases = {
        "negative.json": (
            {"images": [image], "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, -4, 4]}]},
            "width or height that is not positive",
        ),
        "no_annotations.json": ({"images": [image]}, r"no 'annotations' list: add .*\[\]"),
    }  # fmt: skip
    for name, (data, message) in cases.items():
        gt = tmp_path / name
        gt.write_text(json.dumps(data))
        for read in (lambda gt=gt: read_dataset(gt), lambda gt=gt: evaluate_coco_files(gt, dets)):
            with pytest.raises(InputError, match=f"{name}: .*{message}"):
                read()


def test_frames_of_different_sizes_are_different_sequences(tmp_path):
    import json

    import cv2

    from mistd.data.readers import read_dataset

    images = []
    for i, (h, w) in enumerate([(64, 64), (48, 80), (64, 64)]):
        cv2.imwrite(str(tmp_path / f"Misc_{i}.png"), np.zeros((h, w), np.uint8))
        images.append({"id": i + 1, "file_name": f"Misc_{i}.png", "width": w, "height": h})
    (tmp_path / "gt.json").write_text(json.dumps({"images": images, "annotations": []}))
    dataset = read_dataset(tmp_path / "gt.json")
    sizes = {s.name: {(r.width, r.height) for r in s.frames} for s in dataset.sequences}
    assert all(len(v) == 1 for v in sizes.values()) and len(sizes) == 2, sizes


def test_class_list_orders_any_format(tmp_path):
    import json

    from mistd.data.readers import read_dataset

    gt = {
        "images": [{"id": 1, "file_name": "s/0.png", "width": 32, "height": 32}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4]}],
        "categories": [{"id": 1, "name": "drone"}],
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    dataset = read_dataset(tmp_path / "gt.json", classes="bird,drone")
    assert dataset.class_names == ["bird", "drone"]
    assert dataset.sequences[0].frames[0].labels.tolist() == [1]
    with pytest.raises(InputError, match="lacks the data's class 'drone'"):
        read_dataset(tmp_path / "gt.json", classes="a,b")


# ------------------------------------------------------------------ paths leaving the data root


def test_index_paths_that_leave_the_data_folder_are_refused(tmp_path):
    import json

    import cv2

    from mistd.data.readers import read_dataset

    outside = tmp_path / "outside"
    outside.mkdir()
    cv2.imwrite(str(outside / "0.png"), np.full((8, 8), 7, np.uint8))
    data = tmp_path / "data"
    data.mkdir()
    indexes = {
        "up.json": {"images": [{"id": 1, "file_name": "../outside/0.png"}], "annotations": []},
        "abs.json": {"images": [{"id": 1, "file_name": str(outside / "0.png")}],
                     "annotations": []},
    }  # fmt: skip
    for name, content in indexes.items():
        (data / name).write_text(json.dumps(content))
    (data / "up.txt").write_text("../outside/0.png 1,1,4,4,0\n")
    for name in ("up.json", "abs.json", "up.txt"):
        # the echoed entry is cut to a readable length on long temporary paths: match around it
        with pytest.raises(InputError, match=f"{name}: entry 1 '.* lies outside the data "):
            read_dataset(data / name)
    # The user's own --root allows files under it.
    assert read_dataset(data / "abs.json", root=tmp_path).num_frames == 1


# ------------------------------------------------------------------ messages for wrong files


def test_wrong_model_files_say_what_they_are(tmp_path):
    from mistd.checkpoint import load_checkpoint
    from mistd.inference.onnx_backend import OnnxClipModel

    fake = tmp_path / "model.onnx"
    fake.write_text("not a graph")
    with pytest.raises(InputError, match="an ONNX graph, not a PyTorch checkpoint"):
        load_checkpoint(fake)
    with pytest.raises(InputError, match="model.onnx: not an ONNX graph"):
        OnnxClipModel(fake)


def test_track_files_with_huge_ids_or_a_bom_are_one_line(tmp_path):
    from mistd.tracking.trackfile import read_mot

    path = tmp_path / "seq.txt"
    for ident in ("1e20", "9007199254740993"):
        path.write_text(f"1,{ident},1,1,4,4,1\n")
        with pytest.raises(InputError, match="track id must be a whole number from 0 to"):
            read_mot(path)
    path.write_bytes("\ufeff1,1,1,1,4,4,1\n".encode())
    assert read_mot(path).shape == (1, 7)
    path.write_text("1,1,\u200b1,1,4,4\n")
    with pytest.raises(InputError, match="zero-width space"):
        read_mot(path)


# ------------------------------------------------------------------ failures after a run folder


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 120000000000"), 1),
        (KeyError("a bug"), None),
    ],
)
def test_any_failure_removes_the_empty_run_folder(tmp_path, monkeypatch, capsys, error, status):
    """Out of memory ends in one line (exit 1); any other failure (a bug's traceback) still
    leaves no empty run folder behind."""
    from mistd import cli
    from mistd.io import increment_path

    def command() -> None:
        increment_path(tmp_path / "runs", "exp")
        raise error

    monkeypatch.setattr(cli, "app", command)
    monkeypatch.setenv("MISTD_DEBUG", "0")
    with pytest.raises(SystemExit if status else KeyError) as info:
        cli.main()
    if status:
        assert info.value.code == status
        assert capsys.readouterr().err.strip() == cli.OUT_OF_MEMORY
    assert not (tmp_path / "runs" / "exp").exists()
