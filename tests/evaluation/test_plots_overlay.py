"""viz helpers used by the evaluation commands: PR / training curves (PNG) and overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mistd.errors import InputError
from mistd.viz.overlay import DET_COLOR, GT_COLOR, overlay, to_display
from mistd.viz.plots import plot_curves, plot_pr_curve


def test_plot_pr_curve_and_curves(tmp_path: Path) -> None:
    path = plot_pr_curve(
        {"a": ([0.0, 0.5, 1.0], [1.0, 0.8, 0.5]), "empty": ([], [])}, tmp_path / "pr.png"
    )
    assert path.read_bytes()[:4] == b"\x89PNG"
    csv_path = tmp_path / "log.csv"
    csv_path.write_text("epoch,loss,mAP50\n1,2.0,\n2,1.5,0.3\n3,1.2,0.4\n")
    assert plot_curves(csv_path, tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert plot_curves({"loss": [3, 2, 1]}, tmp_path / "d.png").exists()
    csv_path.write_text("epoch,loss\n1,abc\n")
    with pytest.raises(InputError, match=r"log\.csv:2.*loss"):
        plot_curves(csv_path, tmp_path / "e.png")
    assert not (tmp_path / "e.png").exists()
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_overlay_colours_and_16bit() -> None:
    frame = np.full((40, 50), 1000, dtype=np.uint16)
    frame[20, 20] = 60000  # a hot pixel must not squash the display range
    frame[:, 25:] = 3000
    shown = to_display(frame)
    assert shown.dtype == np.uint8 and shown.shape == (40, 50, 3)
    assert shown[5, 5, 0] == 0 and shown[5, 40, 0] == 255
    image = overlay(
        np.zeros((40, 50), dtype=np.uint8),
        boxes=np.array([[5.0, 5.0, 15.0, 15.0], [30.0, 20.0, 40.0, 30.0]]),
        scores=np.array([0.9, 0.1]),
        gt_boxes=np.array([[2.0, 25.0, 12.0, 35.0]]),
        display_threshold=0.5,
    )
    assert tuple(image[10, 5]) == DET_COLOR  # left edge of the shown detection
    assert tuple(image[30, 2]) == GT_COLOR
    assert not image[25, 30:40].any()  # the 0.1 detection is below the display threshold


def test_pr_curve_legend_carries_each_curves_ap(tmp_path: Path) -> None:
    """The AP in the legend is the run's mAP50: computed from the protocol's interpolated curve
    as COCO averages it (101 recall thresholds), or given by the caller."""
    from PIL import Image

    from mistd.evaluation.coco import evaluate_coco_files
    from mistd.viz.plots import curve_ap, pr_curve_label

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "metrics"
    metrics, curve = evaluate_coco_files(fixtures / "gt.json", fixtures / "dets.json")
    assert curve_ap(curve.recall, curve.precision) == pytest.approx(metrics["mAP50"], abs=1e-9)
    assert pr_curve_label("dets", curve.recall, curve.precision) == "dets (AP50 26.1)"
    assert pr_curve_label("x", [], [], ap=0.5) == "x (AP50 50.0)"
    assert pr_curve_label("x", [], []) == "x (no recall)"
    # a perfect detector up to recall 0.5: AP = 51 of the 101 thresholds reached at precision 1
    half = np.linspace(0, 0.5, 51)
    assert curve_ap(half, np.ones(51)) == pytest.approx(51 / 101)

    path = plot_pr_curve(
        {"dets": (curve.recall, curve.precision), "other": ([0.0, 1.0], [1.0, 1.0])},
        tmp_path / "pr.png",
        ap={"other": 0.9},
    )
    legend = Image.open(path).text["Description"].splitlines()
    assert legend == ["dets (AP50 26.1)", "other (AP50 90.0)"]
