"""Synthetic infrared video: determinism, statistics, layout, semi-synthetic mode, bad options."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from mistd.data.readers import read_dataset
from mistd.data.readers.frames import load_frame
from mistd.data.synth.background import load_backgrounds
from mistd.data.synth.config import PRESETS, preset_config
from mistd.data.synth.generate import generate_sequence, sequence_rngs
from mistd.data.synth.scr import local_background, measure_scr
from mistd.data.synth.writer import write_synthetic_dataset
from mistd.errors import InputError


def _sequence(preset: str, seed: int = 0, frames: int = 12, size: int = 96, bit_depth: int = 8):
    cfg = preset_config(preset, height=size, width=size, num_frames=frames, bit_depth=bit_depth)
    return cfg, *generate_sequence(cfg, sequence_rngs(seed, 1)[0])


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path):
    cfg = preset_config("medium", height=64, width=80, num_frames=6)
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        write_synthetic_dataset(tmp_path / name, cfg, sequences=2, seed=seed)
    files = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert len(files) == 2 * 6 + 4  # frames + coco.json, uestc.txt, synth.yaml, README.md
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    first = "images/seq000/0.png"
    assert (tmp_path / "a" / first).read_bytes() != (tmp_path / "c" / first).read_bytes()


def test_sequences_are_reproducible_on_their_own():
    cfg = preset_config("easy", height=48, width=48, num_frames=4)
    together = [generate_sequence(cfg, rng)[0] for rng in sequence_rngs(11, 3)]
    alone = generate_sequence(cfg, sequence_rngs(11, 3)[2])[0]
    np.testing.assert_array_equal(together[2], alone)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_measured_scr_follows_the_preset(preset):
    cfg, frames, truths = _sequence(preset, seed=1, frames=40, size=128)
    lo, hi = cfg.scr_range
    wanted = np.concatenate([t.scr_wanted for t in truths])
    measured = np.concatenate([t.scr for t in truths])
    plain = ~np.concatenate([t.clutter_dominated | t.saturated for t in truths])
    assert wanted.size > 5
    assert np.all((wanted >= lo) & (wanted <= hi))
    # 8-bit quantisation moves the measured SCR by at most 0.5 grey level / ring std (< 0.5 here:
    # the std floor is one grey level) plus a little PSF leakage into the ring.
    assert np.all(np.abs(measured[plain] - wanted[plain]) < 0.6)
    # Clutter-dominated targets (on a bright cloud edge) only ever come out brighter.
    assert np.all(measured[~plain] > lo - 0.6)


def test_targets_are_where_the_boxes_say():
    _, frames, truths = _sequence("medium", seed=2, frames=10)
    for frame, truth in zip(frames, truths, strict=True):
        others = truth.boxes
        for n, (box, (cx, cy)) in enumerate(zip(truth.boxes, truth.centers, strict=True)):
            assert box[0] <= cx <= box[2] and box[1] <= cy <= box[3]
            mean, std = local_background(frame, box, np.delete(others, n, axis=0))
            assert frame[int(cy), int(cx)] > mean + std


def test_presets_get_harder():
    def mean_scr(preset):
        return np.mean(np.concatenate([t.scr_wanted for t in _sequence(preset, frames=8)[2]]))

    assert mean_scr("easy") > mean_scr("medium") > mean_scr("hard")


def test_sixteen_bit_output_and_boxes_inside_the_image():
    cfg, frames, truths = _sequence("hard", seed=3, frames=20, bit_depth=16)
    assert frames.dtype == np.uint16 and frames.max() > 255
    boxes = np.concatenate([t.boxes for t in truths])
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= cfg.width)
    assert np.all(boxes[:, 3] <= cfg.height)
    assert np.all(boxes[:, 2:] - boxes[:, :2] >= cfg.min_visible_size)


def test_targets_enter_and_leave_and_empty_frames_exist():
    cfg = preset_config(
        "medium", height=64, width=64, num_frames=60, cross_border_prob=1.0, min_targets=2
    )
    counts = []
    for rng in sequence_rngs(4, 3):
        _, truths = generate_sequence(cfg, rng)
        counts.append([t.num_targets for t in truths])
    counts = np.array(counts)
    assert (counts == 0).any()
    assert (np.diff(counts, axis=1) != 0).any()  # targets appear and disappear


def test_written_layout_reads_back(tmp_path):
    cfg = preset_config("medium", height=64, width=64, num_frames=8, bit_depth=16)
    dataset = write_synthetic_dataset(tmp_path / "d", cfg, sequences=2, seed=0, preview=True)
    for name in ("coco.json", "uestc.txt", "synth.yaml", "README.md", "preview.png"):
        assert (tmp_path / "d" / name).is_file()
    back = read_dataset(tmp_path / "d")
    assert [s.name for s in back.sequences] == ["seq000", "seq001"]
    for written, read in zip(dataset.frames(), back.frames(), strict=True):
        np.testing.assert_allclose(read.boxes, written.boxes, atol=1e-4)
    frame, bit_depth = load_frame(next(back.frames()))
    assert bit_depth == 16 and frame.shape == (64, 64)
    uestc = read_dataset(tmp_path / "d" / "uestc.txt")
    assert uestc.num_frames == 16
    meta = yaml.safe_load((tmp_path / "d" / "synth.yaml").read_text())
    assert meta["seed"] == 0 and meta["config"]["preset"] == "medium"


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    cfg = preset_config("easy", height=32, width=32, num_frames=3)
    out = tmp_path / "d"
    write_synthetic_dataset(out, cfg, sequences=1, seed=0)
    before = (out / "coco.json").read_bytes()
    with pytest.raises(InputError, match="not empty"):
        write_synthetic_dataset(out, cfg, sequences=1, seed=1)
    assert (out / "coco.json").read_bytes() == before
    write_synthetic_dataset(out, cfg, sequences=1, seed=1, overwrite=True)
    assert (out / "coco.json").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temporary folders left


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "extreme"], "unknown preset 'extreme'"),
        (["--size", "64by64"], "--size: expected HxW"),
        (["--frames", "0"], "num_frames"),
        (["--bit-depth", "12"], "bit_depth"),
    ],
)
def test_bad_options_give_one_line_errors(tmp_path, args, message):
    cmd = [sys.executable, "-m", "mistd.cli", "data", "synth", "--out", str(tmp_path / "x"), *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists()


def test_semi_synthetic_masks_the_footage_target_and_adds_known_targets(tmp_path, shared_dir):
    video = shared_dir / "data" / "real" / "anti_uav" / "4.avi"
    raw = read_dataset(video)
    record = raw.sequences[0].frames[0]
    original, _ = load_frame(record)
    (box,) = record.boxes
    painted = load_backgrounds(video, num_frames=2)[0][0]
    scr_before = measure_scr(original, box)
    scr_after = measure_scr((painted * 255).round().astype(np.uint8), box)
    assert scr_before > 5 and scr_after < 2  # the drone is gone

    cfg = preset_config("medium", num_frames=6, height=0, width=0)
    dataset = write_synthetic_dataset(
        tmp_path / "semi", cfg, sequences=1, seed=0, backgrounds=video
    )
    first = next(dataset.frames())
    assert (first.width, first.height) == (640, 512)
    assert sum(r.num_targets for r in dataset.frames()) > 0
