"""`mistd demo` end to end on a tiny synthetic clip."""

from __future__ import annotations

import json

import pytest

from mistd.data.video import video_info
from mistd.demo import run_demo
from mistd.engine.checkpoint import shipped_weights

pytestmark = pytest.mark.slow


def test_demo_writes_video_plot_and_metrics_for_every_detector(tmp_path):
    result = run_demo(
        out=tmp_path, frames=10, size="64x64", preset="easy", seed=1, echo=lambda *_: None
    )
    assert result.run_dir == tmp_path / "exp"
    assert result.labelled
    expected = {"tophat", "mpcm", "temporal", *shipped_weights()}
    saved = json.loads(result.metrics_json.read_text())
    assert set(saved["detectors"]) == expected
    for metrics in saved["detectors"].values():
        assert 0.0 <= metrics["mAP50"] <= 1.0 and metrics["n_images"] == 10
    best = max(saved["detectors"], key=lambda n: saved["detectors"][n]["mAP50"])
    assert result.best == best
    assert video_info(result.video).frames == 10
    assert result.pr_curve.stat().st_size > 1000
    if any(name.startswith("chal") for name in shipped_weights()):
        assert result.map_videos and video_info(result.map_videos[0]).frames == 10
    # A second demo gets its own folder.
    again = run_demo(out=tmp_path, frames=5, size="64x64", echo=lambda *_: None)
    assert again.run_dir == tmp_path / "exp2"
