"""CLI: `mistd track` on a tiny generated clip, then `mistd eval-tracks` on its outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mistd.cli import app
from mistd.tracking.trackfile import read_mot

runner = CliRunner()


def _clip(root: Path, n: int = 16, size: int = 64) -> Path:
    """One sequence of PNG frames with one bright blob moving 3 px/frame + COCO json."""
    folder = root / "images" / "seq"
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    images, anns = [], []
    for k in range(n):
        cx, cy = 8.0 + 3 * k, 20.0 + k
        image = 40 + 200 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 3.0)
        cv2.imwrite(str(folder / f"{k}.png"), np.clip(image, 0, 255).astype(np.uint8))
        images.append(
            {"id": k + 1, "file_name": f"images/seq/{k}.png", "width": size, "height": size}
        )
        anns.append(
            {
                "id": k + 1,
                "image_id": k + 1,
                "category_id": 1,
                "bbox": [cx - 3, cy - 3, 6.0, 6.0],
                "area": 36.0,
                "iscrowd": 0,
            }
        )
    path = root / "instances.json"
    categories = [{"id": 1, "name": "target"}]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": categories}))
    return path


def test_track_then_eval_tracks(tmp_path: Path, trackeval_module):
    data = _clip(tmp_path)
    out = tmp_path / "runs"
    result = runner.invoke(
        app,
        ["track", "--model", "tophat", str(data), "--out", str(out), "--no-video", "min_hits=2"],
    )
    assert result.exit_code == 0, result.output
    run = out / "tophat"
    tracks = read_mot(run / "mot" / "seq.txt", num_frames=16)
    assert set(tracks[:, 1].astype(int)) == {1}  # one target, one id
    assert len(tracks) >= 13  # confirmed on the 2nd hit; tophat finds the blob in most frames
    metrics = json.loads((run / "metrics.json").read_text())
    # mean IoU of top-hat boxes (region-grown + margin) with the 6x6 label box of a ~4 px blob
    assert metrics["state_accuracy"]["all"] > 0.35
    assert metrics["boxes"]["track_confirmed"]["mAP50"] >= metrics["boxes"]["raw"]["mAP50"] - 0.05
    stats = (run / "tracks.csv").read_text().splitlines()
    assert stats[0].startswith("sequence,track_id") and len(stats) == 2
    speed = float(stats[1].split(",")[8])
    assert abs(speed - np.hypot(3, 1)) < 0.5  # px/frame of the blob
    assert json.loads((run / "tracks.json").read_text())["sequences"]["seq"][0]["id"] == 1
    assert metrics["trackeval"]["all"]["IDSW"] == 0
    assert metrics["trackeval"]["all"]["HOTA"] > 0.3  # its localisation: top-hat box size

    again = runner.invoke(
        app, ["eval-tracks", "--gt", str(run / "gt"), "--tracks", str(run / "mot")]
    )
    assert again.exit_code == 0, again.output
    assert "all" in again.output
    bad = runner.invoke(app, ["track", "--model", "tophat", str(data), "gate_probability=0.5"])
    assert bad.exit_code != 0 and "gate_probability" in str(bad.exception)


def test_eval_and_detect_confirm_tracks_option(tmp_path: Path):
    data = _clip(tmp_path)
    numbers = {}
    for flag in ([], ["--confirm-tracks"]):
        m = tmp_path / f"m{len(flag)}.json"
        args = ["eval", "--model", "tophat", "--data", str(data), "--json", str(m)]
        args += ["--out", str(tmp_path / "eval")]
        result = runner.invoke(app, args + flag)
        assert result.exit_code == 0, result.output
        numbers[len(flag)] = json.loads(m.read_text())
    # the blob is tracked: its detections keep their scores once confirmed (3rd frame on)
    assert numbers[1]["mAP50"] >= numbers[0]["mAP50"] - 0.05
    assert numbers[1]["n_gt"] == numbers[0]["n_gt"] == 16
    result = runner.invoke(
        app,
        ["detect", "--model", "tophat", str(data), "--out", str(tmp_path / "d"), "--no-video"]
        + ["--confirm-tracks"],
    )
    assert result.exit_code == 0, result.output


class _TwoClassDetector:
    """A learned-looking detector (run config with two class names) that labels its box class 1
    and adds a second box of class 0 on the same target (class-aware NMS keeps both)."""

    num_frames = 1
    config = {"data": {"class_names": ["bird", "drone"]}}

    def detect(self, frames: np.ndarray, bit_depth: int):
        from mistd.structures import Detections

        boxes = np.array([[10, 10, 16, 16], [10.5, 10, 16.5, 16]], np.float32)
        return Detections.from_numpy(boxes, np.array([0.9, 0.6]), np.array([1, 0]))


def test_multiclass_model_is_tracked_and_scored_class_agnostically(tmp_path: Path):
    """Regression: `mistd track` on merged (one-class) ground truth scored a multi-class model's
    class ids as they were, so every box not of class 0 matched no category (drone_ir: the
    drones), and the tracker saw one target's two class boxes as two detections."""
    from mistd.data.readers import read_dataset
    from mistd.inference.predictor import Predictor

    dataset = read_dataset(_clip(tmp_path), classes="target")
    predictor = Predictor(_TwoClassDetector(), keep_all=True)
    assert predictor.names == ["bird", "drone"] and predictor.merges_for(dataset.class_names)
    predictor.set_merge_classes(True)
    found = predictor(np.zeros((64, 64), np.uint8))
    assert found.labels.tolist() == [0] and found.names == ["target"]  # class-agnostic NMS
    assert float(found.scores[0]) == pytest.approx(0.9)
    # data with several classes: left as is (scored class-aware)
    assert not predictor.merges_for(["bird", "drone"])
    predictor.set_merge_classes(False)
    assert len(predictor(np.zeros((8, 8), np.uint8))) == 2


def test_track_select_and_input_size_options(tmp_path: Path):
    data = _clip(tmp_path)
    out = tmp_path / "runs"
    args = ["track", "--model", "tophat", str(data), "--out", str(out), "--no-video"]
    args.append("--no-track-metrics")
    result = runner.invoke(app, [*args, "--select", "seq"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "tophat" / "metrics.json").read_text())["sequences"] == ["seq"]
    bad = runner.invoke(app, [*args, "--input-size", "512x512"])
    assert bad.exit_code != 0 and "trained models" in str(bad.exception)
    # --split is the old spelling of --select (one way to pick sequences)
    old = runner.invoke(app, [*args, "--split", "seq", "--name", "old"])
    assert old.exit_code == 0, old.output
    assert json.loads((out / "old" / "metrics.json").read_text())["sequences"] == ["seq"]
    both = runner.invoke(app, [*args, "--split", "seq", "--select", "seq"])
    assert both.exit_code != 0 and "--select only" in str(both.exception)


def test_input_size_reaches_the_streaming_predictor(tmp_path: Path):
    """Regression: `mistd track --weights W --input-size native` built the streaming predictor
    before the size was set, so the model ran at its trained size (Anti-UAV: box mAP50 0.0 where
    `mistd eval --input-size native` gives 5.1)."""
    from mistd.inference.detector import ClipDetector
    from mistd.inference.predictor import Predictor
    from mistd.models.zoo import ZOO, build_model

    model, _ = build_model("yolox-s", ZOO["yolox-s"][0].tiny_overrides())
    detector = ClipDetector(model, num_frames=1, input_size=(64, 64))
    predictor = Predictor(detector, input_size="96x128")
    predictor(np.zeros((64, 64), np.uint8))
    assert predictor.detector.predictor.input_size == (96, 128)
    native = Predictor(detector, input_size="native")
    native(np.zeros((70, 100), np.uint8))
    assert native.detector.predictor.input_size == (96, 128)  # 70x100 padded to x32


def test_eval_relabels_a_streamed_multiclass_model_on_one_class_data(tmp_path: Path):
    """Regression: `mistd eval` wrapped a multi-class model class-agnostically and then streamed
    it; the streaming predictor, built from the wrapped model, bypassed the wrapper, so only
    class-0 boxes could match one-class ground truth (Anti-UAV: 5.1 mAP50 instead of ~78)."""
    from mistd.data.readers import read_dataset
    from mistd.evaluation.runner import as_predictor, evaluate_with_breakdown
    from mistd.inference.detector import ClipDetector
    from mistd.models.zoo import ZOO, build_model

    torch.manual_seed(0)
    model, _ = build_model("yolox-s", {**ZOO["yolox-s"][0].tiny_overrides(), "num_classes": 3})
    with torch.no_grad():  # the model never calls anything class 0
        for conv in model.head.cls_preds:
            conv.bias[0] = -20.0
    config = {"data": {"class_names": ["airplane", "bird", "drone"]}}
    detector = ClipDetector(
        model, num_frames=1, input_size=(64, 64), config=config, decode_floor=0.0
    )
    dataset = read_dataset(_clip(tmp_path), classes="target")
    _, found = evaluate_with_breakdown(detector, dataset, progress=False)
    labels = np.concatenate([d.labels for d in found])
    assert labels.size > 0 and set(labels.tolist()) == {0}
    predictor = as_predictor(detector)
    assert as_predictor(predictor) is predictor  # a predictor is not re-wrapped
    assert predictor.detector.stream  # streamed, and still merged (the stage is the predictor's)


def test_learned_models_default_to_their_track_threshold(tmp_path: Path):
    """Learned models start tracks from 0.3 (their scores on unseen cameras stay low), classical
    detectors from the tracker's 0.5; settings on the command line win."""
    from mistd.inference.detector import ClipDetector
    from mistd.inference.predictor import Predictor
    from mistd.models.zoo import ZOO, build_model
    from mistd.tracking import Tracker

    model, _ = build_model("yolox-s", ZOO["yolox-s"][0].tiny_overrides())
    learned = Predictor(ClipDetector(model, num_frames=1, input_size=(64, 64)))
    for stream in (True, False):
        config = Predictor(learned.detector.clip_detector, stream=stream).tracker_config()
        assert config.high_threshold == config.birth_threshold == 0.3
    assert learned.tracker_config(["birth_threshold=0.4"]).birth_threshold == 0.4
    assert Tracker(learned.tracker_config()).config.high_threshold == 0.3
    classical = Predictor("tophat").tracker_config()
    assert classical.high_threshold == classical.birth_threshold == 0.5


def test_confirm_tracks_streams_a_strided_model(tmp_path: Path):
    """Under track confirmation a trained model still streams frame by frame (its own window,
    any frame_stride), and gives the boxes clip mode gives (scores raw or x0.1)."""
    from mistd.data.readers import read_dataset
    from mistd.evaluation.runner import detect_sequences
    from mistd.inference.detector import ClipDetector
    from mistd.inference.predictor import Predictor
    from mistd.models.zoo import ZOO, build_model

    torch.manual_seed(0)
    overrides = {**ZOO["mf-residual"][0].tiny_overrides(), "num_frames": 3, "frame_stride": 2}
    model, _ = build_model("mf-residual", overrides)
    torch.nn.init.normal_(model.temporal.out.weight, std=0.1)
    detector = ClipDetector(model, num_frames=3, input_size=(64, 64), decode_floor=1e-3)
    dataset = read_dataset(_clip(tmp_path))
    confirmed = Predictor(detector, confirm_tracks=True)
    assert confirmed.detector.stream and confirmed.track_confirmation is not None
    streamed = list(detect_sequences(confirmed, dataset, progress=False))
    expected = list(detect_sequences(detector, dataset, progress=False, stream=False))
    assert len(streamed) == len(expected) == 16
    for got, raw in zip(streamed, expected, strict=True):
        # scores are the raw ones or x0.1 (off a confirmed track), boxes the same
        assert len(got) == len(raw)
        np.testing.assert_allclose(np.sort(got.boxes, 0), np.sort(raw.boxes, 0), atol=1e-3)
        ratio = got.scores / np.maximum(got.extra["raw"].scores, 1e-12)
        assert np.all(np.isclose(ratio, 1.0, atol=1e-5) | np.isclose(ratio, 0.1, atol=1e-5))


# ------------------------------------------------------------------ without TrackEval


@pytest.fixture
def no_trackeval(monkeypatch):
    """`import trackeval` fails, as on an install without it (whether or not it is here)."""
    monkeypatch.setitem(sys.modules, "trackeval", None)  # None in sys.modules: ImportError


def _main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """Run the console entry point (exit status and stderr, as a user sees them)."""
    from mistd.cli import main

    monkeypatch.setattr(sys, "argv", ["mistd", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


def test_track_on_labelled_data_without_trackeval_stops_before_running(
    tmp_path: Path, no_trackeval, monkeypatch, capsys
):
    from mistd.tracking.metrics import TRACKEVAL_INSTALL, trackeval_available

    assert not trackeval_available()
    data = _clip(tmp_path)
    out = tmp_path / "runs"
    args = ["track", "--model", "tophat", str(data), "--out", str(out), "--no-video"]
    status, err = _main(monkeypatch, capsys, *args)
    assert status == 2
    assert "HOTA / MOTA / IDF1 need TrackEval" in err and TRACKEVAL_INSTALL in err
    assert "--no-track-metrics" in err
    assert not (out / "tophat").exists()  # stopped before the detector ran: no run folder

    # --no-track-metrics: tracks and the metrics that need no TrackEval, exit 0
    result = runner.invoke(app, [*args, "--no-track-metrics"])
    assert result.exit_code == 0, result.output
    assert "not computed (--no-track-metrics)" in result.output
    metrics = json.loads((out / "tophat" / "metrics.json").read_text())
    assert metrics["trackeval"] is None
    assert metrics["state_accuracy"]["all"] > 0.35
    # box scores need no TrackEval either (top-hat's loose boxes: IoU < 0.5 here, so 0.0)
    assert all(isinstance(metrics["boxes"]["raw"][k], float) for k in ("mAP50", "f1", "op_f1"))


def test_eval_tracks_without_trackeval_exits_non_zero(
    tmp_path: Path, no_trackeval, monkeypatch, capsys
):
    from mistd.tracking.trackfile import write_mot

    rows = np.array([[1, 1, 10, 10, 4, 4, 1.0], [2, 1, 11, 10, 4, 4, 1.0]])
    write_mot(tmp_path / "gt" / "seq.txt", rows)
    write_mot(tmp_path / "mot" / "seq.txt", rows)
    args = ["eval-tracks", "--gt", str(tmp_path / "gt"), "--tracks", str(tmp_path / "mot")]
    status, err = _main(monkeypatch, capsys, *args)
    assert status == 2
    assert err.startswith("error: HOTA / MOTA / IDF1 need TrackEval") and "--no-deps" in err
    assert "-" not in err.split("need TrackEval")[0]  # no table of dashes before it


def test_trackeval_import_is_quiet(trackeval_module, capsys):
    """TrackEval prints a line when an optional requirement of a class mistd never uses is
    missing; importing it through mistd keeps stdout clean."""
    from mistd.tracking.metrics import require_trackeval, trackeval_available

    capsys.readouterr()
    assert trackeval_available() and require_trackeval() is trackeval_module
    assert capsys.readouterr().out == ""


def test_tracking_is_a_library_function(tmp_path: Path):
    """What `mistd track` does, from Python: `track_dataset`, `write_tracks`, `score_tracks`."""
    from mistd.data.readers import read_dataset
    from mistd.inference.predictor import Predictor
    from mistd.track import score_tracks, track_dataset, write_tracks

    dataset = read_dataset(_clip(tmp_path))
    predictor = Predictor("tophat")
    config = predictor.tracker_config(["min_hits=2"])
    assert config.min_hits == 2 and config.high_threshold == 0.5  # classical: 0.5
    run = track_dataset(predictor, dataset, config, tmp_path / "out", video=False)
    assert predictor.stages == []  # the confirmation stage belonged to the run
    paths = write_tracks(run, config, tmp_path / "out")
    assert paths["json"].is_file() and (paths["mot"] / "seq.txt").is_file()
    assert set(run.tracks["seq"][:, 1].astype(int)) == {1} and len(run.tracks["seq"]) >= 13
    assert run.tracks["seq"][0, 0] >= 1  # MOT frame numbers are 1-based
    seen, result = score_tracks(run, dataset, tmp_path / "out", trackeval=False)
    assert seen == {"seq": 16} and result["state_accuracy"]["all"] > 0.35
    assert run.raw_metrics["n_gt"] == run.confirmed_metrics["n_gt"] == 16
