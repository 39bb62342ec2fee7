"""`mistd demo` end to end: the real clip shipped in the package (default) and a synthetic one."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from mistd.data.video import video_info
from mistd.demo import best_detector, run_demo
from mistd.weights import shipped_weights

pytestmark = pytest.mark.slow


def test_demo_on_the_real_clip_writes_video_plot_and_metrics_for_every_detector(tmp_path):
    result = run_demo(out=tmp_path, max_frames=40, echo=lambda *_: None)
    assert result.run_dir == tmp_path / "exp"
    assert result.labelled
    expected = {"tophat", "mpcm", "temporal", *shipped_weights()}
    saved = json.loads(result.metrics_json.read_text())
    assert set(saved["detectors"]) == expected
    for metrics in saved["detectors"].values():
        assert metrics["n_images"] == 40 and metrics["n_gt"] == 40
    # the video shows the best F1 at the operating point (ties: mAP50, F1, speed, name)
    best = best_detector(saved["detectors"])
    assert result.best == best and result.video.name == f"{best}.mp4"
    top = max(m["op_f1"] for m in saved["detectors"].values())
    assert saved["detectors"][best]["op_f1"] == top
    # the shipped real-data models find the drone of this held-out clip; the demo says which won
    learned = [n for n in saved["detectors"] if n in shipped_weights()]
    assert learned and max(saved["detectors"][n]["mAP50"] for n in learned) >= 0.5
    assert video_info(result.video).frames == 40
    assert result.pr_curve.stat().st_size > 1000
    legend = Image.open(result.pr_curve).text["Description"].splitlines()
    assert legend == [
        f"{name} (AP50 {100 * m['mAP50']:.1f})" for name, m in saved["detectors"].items()
    ]
    if any(name.startswith("chal") for name in shipped_weights()):
        assert result.map_videos and video_info(result.map_videos[0]).frames == 40
        pngs = sorted(p.name for p in result.map_videos[0].with_suffix("").iterdir())
        # frame numbers are 1-based in every file mistd writes
        assert pngs[:2] == ["000001.png", "000002.png"] and len(pngs) == 40


def test_demo_on_a_synthetic_clip_and_a_second_run_folder(tmp_path):
    result = run_demo(
        out=tmp_path,
        synthetic=True,
        frames=10,
        size="64x64",
        preset="easy",
        seed=1,
        echo=lambda *_: None,
    )
    saved = json.loads(result.metrics_json.read_text())
    assert all(m["n_images"] == 10 for m in saved["detectors"].values())
    # the temporal detector finds easy synthetic targets after its first frames
    assert saved["detectors"]["temporal"]["mAP50"] > 0.3
    again = run_demo(out=tmp_path, synthetic=True, frames=5, size="64x64", echo=lambda *_: None)
    assert again.run_dir == tmp_path / "exp2"
