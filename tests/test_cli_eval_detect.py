"""CLI: `mistd eval-dets` on the fixture, `mistd detect` / `mistd eval` on tiny generated data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from mistd.cli import app
from mistd.errors import InputError

# The official-protocol fixture (a copy of ../shared/fixtures/metrics, 128 KB) lives in the
# repository so a clone without ../shared runs the protocol test.
METRICS_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "metrics"

runner = CliRunner()


def _write_sequence(folder: Path, n: int = 6, size: int = 48) -> list[tuple[float, float]]:
    """PNG frames with one bright moving blob; returns its centres (x, y)."""
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    centres = []
    for k in range(n):
        cx, cy = 12.0 + 3 * k, 20.0 + k
        image = 60 + 10 * np.sin(xx / 9) + 120 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 2.5)
        cv2.imwrite(str(folder / f"{k}.png"), np.clip(image, 0, 255).astype(np.uint8))
        centres.append((cx, cy))
    return centres


def _coco_dataset(root: Path) -> Path:
    images, anns = [], []
    for s in ("a", "b"):
        for k, (cx, cy) in enumerate(_write_sequence(root / "images" / s)):
            image_id = len(images) + 1
            images.append(
                {"id": image_id, "file_name": f"images/{s}/{k}.png", "width": 48, "height": 48}
            )
            anns.append(
                {
                    "id": image_id,
                    "image_id": image_id,
                    "category_id": 1,
                    # the blob (sigma ~1.1 px) labelled 8x8: the classical boxes add a 2 px margin
                    "bbox": [cx - 4, cy - 4, 8.0, 8.0],
                    "area": 64.0,
                    "iscrowd": 0,
                }
            )
    path = root / "instances.json"
    path.write_text(
        json.dumps(
            {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "target"}]}
        )
    )
    return path


def test_eval_dets_fixture_json(tmp_path: Path) -> None:
    folder = METRICS_FIXTURE
    out, plot = tmp_path / "m.json", tmp_path / "pr.png"
    result = runner.invoke(
        app,
        [
            "eval-dets",
            "--gt",
            str(folder / "gt.json"),
            "--dets",
            str(folder / "dets.json"),
            "--json",
            str(out),
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    expected = json.loads((folder / "expected.json").read_text())
    for key in ("mAP50", "precision", "recall", "f1"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-9)
    assert "mAP50" in result.output and "all" in result.output
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_eval_dets_empty_and_bad(tmp_path: Path) -> None:
    gt = tmp_path / "gt.json"
    gt.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a/0.png"}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4]}],
            }
        )
    )
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    out = tmp_path / "m.json"
    result = runner.invoke(
        app, ["eval-dets", "--gt", str(gt), "--dets", str(empty), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["mAP50"] == 0.0
    assert "warning" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps([{"image_id": 9, "category_id": 1, "bbox": [1, 1, 4, 4], "score": 0.5}])
    )
    result = runner.invoke(app, ["eval-dets", "--gt", str(gt), "--dets", str(bad)])
    assert isinstance(result.exception, InputError)
    assert "bad.json" in str(result.exception) and "image_id 9" in str(result.exception)


def test_model_option_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "--model", "tophatt", "--data", str(tmp_path)])
    assert isinstance(result.exception, InputError)
    assert "did you mean 'tophat'" in str(result.exception)
    result = runner.invoke(app, ["detect", str(tmp_path)])
    assert isinstance(result.exception, InputError) and "exactly one" in str(result.exception)
    result = runner.invoke(app, ["detect", "--model", "tophat", "--weights", "w.pt", str(tmp_path)])
    assert isinstance(result.exception, InputError)
    result = runner.invoke(
        app, ["eval", "--weights", str(tmp_path / "no.pt"), "--data", str(tmp_path)]
    )
    assert isinstance(result.exception, InputError)
    result = runner.invoke(app, ["detect", "--model", "tophat", "--compile", str(tmp_path)])
    assert isinstance(result.exception, InputError) and "not to tophat" in str(result.exception)


def test_detect_on_image_folder(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "frames")

    def detect_frames(*options: str):
        """`mistd detect --model tophat FRAMES --out RUNS OPTIONS...`."""
        frames, runs = str(tmp_path / "frames"), str(tmp_path / "runs")
        return runner.invoke(app, ["detect", "--model", "tophat", frames, "--out", runs, *options])

    result = detect_frames("--display-threshold", "0.3")
    assert result.exit_code == 0, result.output
    out_dir = tmp_path / "runs" / "tophat"
    results = json.loads((out_dir / "detections.json").read_text())
    assert {r["image_id"] for r in results} == set(range(1, 7))
    assert all(r["score"] >= 0.001 for r in results)
    with (out_dir / "detections.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    header = ["frame", "sequence", "x1", "y1", "x2", "y2", "score", "label", "class_name"]
    assert rows and list(rows[0]) == header and rows[0]["class_name"] == "target"
    assert all(float(r["score"]) >= 0.3 for r in rows)
    videos = list(out_dir.glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0
    assert str(out_dir) in result.output
    # a second run gets a new folder
    result = detect_frames("--no-video")
    assert result.exit_code == 0 and (tmp_path / "runs" / "tophat2" / "detections.json").exists()


def test_eval_on_coco_dataset_matches_eval_dets(tmp_path: Path) -> None:
    data = _coco_dataset(tmp_path / "data")
    out = tmp_path / "m.json"
    result = runner.invoke(
        app,
        [
            "eval",
            "--model",
            "temporal",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "runs"),
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert metrics["n_images"] == 12 and metrics["n_gt"] == 12
    assert set(metrics["per_sequence"]) == {"a", "b"}
    # the first frame of each sequence has no history, the rest are found
    assert metrics["recall"] == pytest.approx(10 / 12)
    run = tmp_path / "runs" / "temporal"
    assert (run / "pr_curve.png").exists()
    # the written files reproduce the numbers through eval-dets
    out2 = tmp_path / "m2.json"
    result = runner.invoke(
        app,
        [
            "eval-dets",
            "--gt",
            str(run / "ground_truth.json"),
            "--dets",
            str(run / "detections.json"),
            "--json",
            str(out2),
        ],
    )
    assert result.exit_code == 0, result.output
    again = json.loads(out2.read_text())
    for key in ("mAP50", "precision", "recall", "f1"):
        assert again[key] == pytest.approx(metrics[key], abs=1e-9)


def test_detect_on_coco_dataset_one_video_per_sequence(tmp_path: Path) -> None:
    data = _coco_dataset(tmp_path / "data")
    result = runner.invoke(
        app, ["detect", "--model", "mpcm", str(data), "--out", str(tmp_path / "runs")]
    )
    assert result.exit_code == 0, result.output
    out_dir = tmp_path / "runs" / "mpcm"
    assert sorted(p.name for p in out_dir.glob("*.mp4")) == ["a.mp4", "b.mp4"]
    results = json.loads((out_dir / "detections.json").read_text())
    assert {r["image_id"] for r in results} <= set(range(1, 13))  # the data set's COCO ids


def test_classical_settings_from_the_command_line(tmp_path: Path) -> None:
    """Trailing key=value settings reach a classical detector's config (bare or model.-prefixed),
    in eval and detect, and the resolved config is written beside the results."""
    data = _coco_dataset(tmp_path / "data")

    def run_eval(name: str, *settings: str):
        out = tmp_path / f"{name}.json"
        args = ["eval", "--model", "tophat", "--data", str(data), "--name", name]
        result = runner.invoke(
            app, [*args, "--out", str(tmp_path / "runs"), "--json", str(out), *settings]
        )
        return result, out

    def widths(name: str) -> list[float]:
        dets = json.loads((tmp_path / "runs" / name / "detections.json").read_text())
        return [d["bbox"][2] for d in dets]

    result, out = run_eval("default")
    assert result.exit_code == 0, result.output
    assert max(widths("default")) < 12  # the ~3 px blob + 2 px a side
    result, out = run_eval("wide", "rule.margin=10", "model.rule.max_box=64", "smooth_sigma=0")
    assert result.exit_code == 0, result.output
    assert min(widths("wide")) >= 20  # 10 px a side
    config = (tmp_path / "runs" / "wide" / "config.yaml").read_text()
    assert "model: tophat" in config and "margin: 10.0" in config and "max_box: 64.0" in config
    assert "smooth_sigma: 0.0" in config
    result, out = run_eval("none", "rule.k=1000")
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["n_dets"] == 0

    frames = tmp_path / "data" / "images" / "a"
    runs = tmp_path / "detect"
    args = ["detect", "--model", "mpcm", str(frames), "--out", str(runs), "--no-video"]
    result = runner.invoke(app, [*args, "model.rule.margin=10", "rule.max_box=64"])
    assert result.exit_code == 0, result.output
    results = json.loads((runs / "mpcm" / "detections.json").read_text())
    assert results and min(r["bbox"][2] for r in results) >= 20
    assert "margin: 10.0" in (runs / "mpcm" / "config.yaml").read_text()

    for bad, message in (
        ("rule.kk=5", "did you mean"),
        ("kernel_sizes=[4]", "odd"),
        ("model=tophat", "model.<key>=value"),
    ):
        result, _ = run_eval("bad", bad)
        assert isinstance(result.exception, InputError), (bad, result.output)
        assert message in str(result.exception), (bad, str(result.exception))
    result = runner.invoke(app, ["eval", "--weights", "w.pt", "--data", str(data), "rule.k=5"])
    assert isinstance(result.exception, InputError) and "classical" in str(result.exception)


def test_eval_and_track_take_the_precision_a_deployment_runs(tmp_path: Path) -> None:
    """`mistd eval --precision bf16` scores the mode `detect` runs; bad values and `--compile`
    where it cannot apply are refused by name."""
    import mistd

    demo = Path(mistd.__file__).parent / "assets" / "demo"
    out = tmp_path / "m.json"
    args = ["eval", "--weights", "yolox-ir-s", "--data", str(demo), "--max-frames", "4"]
    result = runner.invoke(
        app, [*args, "--precision", "bf16", "--out", str(tmp_path / "runs"), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "mAP50" in json.loads(out.read_text())
    result = runner.invoke(app, [*args, "--precision", "fp16"])
    assert isinstance(result.exception, InputError)
    assert "expected fp32 or bf16, got 'fp16'" in str(result.exception)
    result = runner.invoke(app, ["track", "--model", "tophat", "--compile", str(demo)])
    assert isinstance(result.exception, InputError) and "not to tophat" in str(result.exception)
    result = runner.invoke(
        app, ["eval", "--model", "tophat", "--data", str(demo), "--precision", "bf16"]
    )
    assert isinstance(result.exception, InputError) and "not to tophat" in str(result.exception)
