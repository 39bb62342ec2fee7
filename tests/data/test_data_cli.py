"""`mistd data info` and `mistd data convert` through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mistd.cli import app
from mistd.data.readers import read_dataset
from mistd.data.readers.frames import load_frame

runner = CliRunner()


def _info(*args, tmp_path):
    out = tmp_path / "info.json"
    result = runner.invoke(app, ["data", "info", *map(str, args), "--json", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), result.output


def test_info_daub_uestc_index(shared_dir, tmp_path):
    summary, output = _info(
        shared_dir / "data" / "real" / "daub_index" / "coco_val_DAUB.txt", tmp_path=tmp_path
    )
    assert summary["format"] == "uestc"
    assert (summary["frames"], summary["sequences"]) == (4795, 7)
    assert summary["image_sizes"] == {"unknown": 4795}
    assert summary["box_width"]["p50"] == 8 and summary["box_height"]["p50"] == 8
    assert summary["box_width"]["p5"] == 8 and summary["box_height"]["p95"] == 8
    assert summary["targets"]["per_frame"] == {"mean": 1.0, "min": 1.0, "max": 1.0}
    assert "no known size" in output


def test_info_daub_coco_has_sizes(shared_dir, tmp_path):
    summary, _ = _info(
        shared_dir / "data" / "real" / "daub_index" / "DAUB_instances_test2017.json",
        tmp_path=tmp_path,
    )
    assert (summary["frames"], summary["sequences"]) == (4795, 7)
    assert summary["image_sizes"] == {"256x256": 4795}


def test_info_anti_uav(shared_dir, tmp_path):
    summary, _ = _info(shared_dir / "data" / "real" / "anti_uav" / "4.avi", tmp_path=tmp_path)
    assert summary["format"] == "anti-uav"
    assert summary["frames"] == 501 and summary["image_sizes"] == {"640x512": 501}
    assert summary["bit_depth"] == {"8": 1}
    assert 13 < summary["box_width"]["p50"] < 17 and 8 < summary["box_height"]["p50"] < 12


@pytest.mark.parametrize("sample", ["sirst_v1", "irdst_example"])
def test_info_mask_samples(shared_dir, tmp_path, sample):
    summary, _ = _info(shared_dir / "data" / "real" / sample, tmp_path=tmp_path)
    assert summary["format"] == "masks"
    assert summary["targets"]["total"] == {"sirst_v1": 13, "irdst_example": 3}[sample]


def test_convert_anti_uav_round_trip(shared_dir, tmp_path):
    source = shared_dir / "data" / "real" / "anti_uav" / "4.avi"
    out = tmp_path / "antiuav"
    result = runner.invoke(
        app, ["data", "convert", str(source), "--out", str(out), "--max-frames", "12"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["coco.json", "images", "uestc.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["antiuav"]  # no temp folder left
    original = read_dataset(source)
    for path in (out, out / "uestc.txt"):
        converted = read_dataset(path)
        assert converted.num_frames == 12
        records = list(converted.frames())
        assert records[0].path == out / "images" / "4" / "0.png"
        assert (records[0].width, records[0].height) == (640, 512)
    coco_records = list(read_dataset(out).frames())
    originals = list(original.frames())[:12]
    for a, b in zip(coco_records, originals, strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)
        assert a.index == b.index
    # Pixels are the decoded video frames, losslessly stored.
    np.testing.assert_array_equal(load_frame(coco_records[5])[0], load_frame(originals[5])[0])
    # A second convert into the same folder is refused, then allowed with --overwrite.
    again = runner.invoke(
        app, ["data", "convert", str(source), "--out", str(out), "--max-frames", "3"]
    )
    assert again.exit_code != 0 and "--overwrite" in str(again.exception)
    again = runner.invoke(
        app, ["data", "convert", str(source), "--out", str(out), "--max-frames", "3", "--overwrite"]
    )
    assert again.exit_code == 0, again.output
    assert read_dataset(out).num_frames == 3


def test_convert_sirst_keeps_sequences(shared_dir, tmp_path):
    out = tmp_path / "sirst"
    result = runner.invoke(
        app, ["data", "convert", str(shared_dir / "data" / "real" / "sirst_v1"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    converted = read_dataset(out)
    assert len(converted.sequences) == 12
    assert sum(r.num_targets for r in converted.frames()) == 13


def test_convert_keeps_16_bit(tmp_path):
    import cv2

    frames = tmp_path / "frames"
    frames.mkdir()
    for k in range(3):
        cv2.imwrite(str(frames / f"{k}.png"), np.full((6, 9), 1000 * (k + 1), np.uint16))
    out = tmp_path / "out"
    result = runner.invoke(app, ["data", "convert", str(frames), "--out", str(out)])
    assert result.exit_code == 0, result.output
    records = list(read_dataset(out).frames())
    image, depth = load_frame(records[2])
    assert depth == 16 and image.dtype == np.uint16 and int(image[0, 0]) == 3000
