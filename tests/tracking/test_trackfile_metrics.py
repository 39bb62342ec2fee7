"""Track files (bad input -> one-line errors), TrackEval numbers on a hand-made case, Anti-UAV
state accuracy, ground-truth identities, track-confirmed detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mistd.errors import InputError
from mistd.inference.results import Results
from mistd.structures import FrameDataset, FrameRecord, Sequence
from mistd.tracking.confirm import TrackConfirmation
from mistd.tracking.metrics import (
    gt_tracks_from_dataset,
    link_identities,
    state_accuracies,
    state_accuracy,
)
from mistd.tracking.trackfile import read_mot, read_track_files, write_mot


def _write(tmp_path: Path, text: str, name: str = "seq.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- track files


def test_mot_round_trip(tmp_path: Path):
    rows = np.array([[2, 1, 10, 11, 4, 5, 0.9], [1, 3, 1.5, 2.5, 3, 3, 0.5]])
    write_mot(tmp_path / "a.txt", rows)
    back = read_mot(tmp_path / "a.txt")
    np.testing.assert_allclose(back, rows[::-1])  # sorted by frame
    assert (tmp_path / "a.txt").read_text().splitlines()[
        0
    ] == "1,3,1.50,2.50,3.00,3.00,0.5000,-1,-1,-1"
    assert list(read_track_files(tmp_path)) == ["a"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("1,1,0,0,4,4,1\n0,1,0,0,4,4,1\n", 2, "unknown frame number 0"),
        ("1,1,0,0,4,4,1\n2.5,1,0,0,4,4,1\n", 2, "unknown frame number 2.5"),
        ("1,1,0,0,4,4,1\n9,1,0,0,4,4,1\n", 2, "unknown frame number 9: the sequence has 5"),
        ("1,1,0,0,4,4,1\n1,2,0,0,4,4,1\n1,1,5,5,4,4,1\n", 3, "duplicate id 1 in frame 1"),
        ("1,1,0,0,-4,4,1\n", 1, "negative box size"),
        ("1,1,0,0,4\n", 1, "at least 6"),
        ("1,a,0,0,4,4\n", 1, "expected numbers"),
    ],
)
def test_bad_track_files_give_one_line_errors(tmp_path: Path, text: str, line: int, message):
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as info:
        read_mot(path, num_frames=5)
    text = str(info.value)
    assert text.startswith(f"{path}:{line}: ") and message in text and "\n" not in text


def test_eval_tracks_cli_reports_bad_line(tmp_path: Path):
    from typer.testing import CliRunner

    from mistd.cli import app

    gt = _write(tmp_path, "1,1,0,0,4,4,1\n2,1,1,0,4,4,1\n", "gt.txt")
    tracks = tmp_path / "tracks"
    tracks.mkdir()
    _write(tracks, "1,7,0,0,4,4,1\n3,7,0,0,4,4,1\n", "gt.txt")
    result = CliRunner().invoke(app, ["eval-tracks", "--gt", str(gt), "--tracks", str(tracks)])
    assert isinstance(result.exception, InputError)
    assert "gt.txt:2: unknown frame number 3: the sequence has 2 frames" in str(result.exception)


# --------------------------------------------------------------------------- metrics


def test_trackeval_numbers_on_a_hand_made_case(trackeval_module):
    from mistd.tracking.metrics import trackeval_metrics

    # Two targets over 10 frames, both found in every frame; target 2's track breaks into two
    # ids at frame 6 (one id switch), and one false positive in frame 1.
    gt = [[t, 1, 10 + t, 10, 4, 4, 1] for t in range(1, 11)]
    gt += [[t, 2, 50, 50, 4, 4, 1] for t in range(1, 11)]
    tr = [[t, 7, 10 + t, 10, 4, 4, 0.9] for t in range(1, 11)]
    tr += [[t, 3 if t <= 5 else 4, 50, 50, 4, 4, 0.8] for t in range(1, 11)]
    tr += [[1, 9, 30, 30, 4, 4, 0.5]]
    m = trackeval_metrics({"s": np.array(gt, float)}, {"s": np.array(tr, float)}, {"s": 10})["all"]
    assert m["MOTA"] == pytest.approx(1 - (1 + 1) / 20)  # 1 FP + 1 IDSW over 20 targets
    assert m["IDSW"] == 1 and m["CLR_FP"] == 1 and m["CLR_FN"] == 0
    assert m["IDF1"] == pytest.approx(2 * 15 / (20 + 21))  # IDTP 10 + 5
    assert m["DetA"] == pytest.approx(20 / 21)
    # AssA: target 1 -> 1.0 (10 TPs); target 2 -> 5/10 (10 TPs) -> 0.75; HOTA = sqrt(DetA*AssA)
    assert m["AssA"] == pytest.approx(0.75)
    assert m["HOTA"] == pytest.approx(np.sqrt(20 / 21 * 0.75))


def test_state_accuracy_uses_the_exist_flag():
    box = np.array([0.0, 0, 10, 10])
    half = np.array([0.0, 0, 10, 5])  # IoU 0.5
    gt = [box, box, None, None]
    assert state_accuracy(gt, [box, half, None, box]) == pytest.approx((1 + 0.5 + 1 + 0) / 4)
    assert state_accuracy(gt, [None, None, None, None]) == pytest.approx(0.5)
    # the highest-scoring track of a frame answers; multi-target sequences are skipped
    rows = np.array([[1, 1, 0, 0, 10, 10, 1], [2, 1, 0, 0, 10, 10, 1]])
    tracks = np.array([[1, 5, 0, 0, 10, 10, 0.9], [1, 6, 50, 50, 10, 10, 0.2]])
    two = np.array([[1, 1, 0, 0, 4, 4, 1], [1, 2, 9, 9, 4, 4, 1]])
    sa = state_accuracies({"a": rows, "b": two}, {"a": tracks}, {"a": 3, "b": 1})
    assert sa["a"] == pytest.approx((1 + 0 + 1) / 3) and "b" not in sa


def test_link_identities_follows_two_targets_and_classes():
    # targets move 6 px/frame on crossing-free paths; a third box of another class appears late
    boxes, labels = [], []
    for t in range(6):
        frame = [[10 + 6 * t, 10, 14 + 6 * t, 14], [10 + 6 * t, 40, 14 + 6 * t, 44]]
        lab = [0, 0]
        if t >= 3:
            frame.append([10 + 6 * t, 12, 14 + 6 * t, 16])  # close to target 1, other class
            lab.append(1)
        boxes.append(np.array(frame, float)[::-1] if t % 2 else np.array(frame, float))
        labels.append(np.array(lab)[::-1] if t % 2 else np.array(lab))
    ids = link_identities(boxes, labels)
    for t in range(6):
        order = np.argsort(boxes[t][:, 1] + 100 * labels[t])  # by y, other class last
        assert ids[t][order].tolist()[:2] == [1, 2]
        if t >= 3:
            assert ids[t][order][2] == 3
    assert all(i.tolist() == [1] for i in link_identities([np.zeros((1, 4))] * 3, [[0]] * 3))


def test_gt_tracks_from_dataset_rows():
    frames = [
        FrameRecord("s", k, boxes=np.array([[k, 0, k + 4, 3]], np.float32), labels=np.zeros(1, int))
        for k in range(3)
    ] + [FrameRecord("s", 3)]
    gt, n = gt_tracks_from_dataset(FrameDataset([Sequence("s", frames)]))
    assert n == {"s": 4}
    np.testing.assert_allclose(
        gt["s"][:, :6], [[1, 1, 0, 0, 4, 3], [2, 1, 1, 0, 4, 3], [3, 1, 2, 0, 4, 3]]
    )


# --------------------------------------------------------------------------- confirmation


def test_track_confirmed_detection_keeps_tracks_and_drops_blips():
    per_frame = []
    for t in range(6):
        d = [[10 + 5 * t, 10, 14 + 5 * t, 14, 0.6]]
        if t == 3:
            d.append([40, 40, 44, 44, 0.9])  # a bright one-frame blip
        per_frame.append(np.array(d, float))
    stage = TrackConfirmation(unconfirmed_weight=0.1)
    scores = []
    for dets in per_frame:
        found = stage(Results(dets[:, :4], dets[:, 4], np.zeros(len(dets))))
        scores.append(found.scores)
        np.testing.assert_allclose(found.extra["raw"].scores, dets[:, 4], atol=1e-6)
    np.testing.assert_allclose([s[0] for s in scores], [0.06, 0.06, 0.6, 0.6, 0.6, 0.6], atol=1e-6)
    assert scores[3][1] == pytest.approx(0.09)  # the blip: 0.9 * 0.1
    # a new sequence restarts the tracker
    stage.reset()
    stage(Results([[10, 10, 14, 14]], [0.6], [0]))
    assert stage.tracker.num_tracks == 1 and not stage.tracks
