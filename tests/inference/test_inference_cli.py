"""`mistd detect --weights` streaming (torch / onnxruntime), `mistd export`, `mistd bench`."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mistd.checkpoint import make_checkpoint, save_checkpoint
from mistd.cli import app
from mistd.config import to_dict
from mistd.models.zoo import build_model
from mistd.run_config import build_run_config, run_config_to_dict

TINY_CHAL = {"width": 0.125, "depth": 0.33, "num_frames": 3, "input_size": [64, 64]}


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model, cfg = build_model("chal", TINY_CHAL)
    # a large objectness bias so that random weights give detections above 0.001
    model.head.obj_preds[0].bias.data.fill_(4.0)
    run_config = build_run_config("chal", {"model": to_dict(cfg)})
    path = tmp_path_factory.mktemp("weights") / "tiny_chal.pt"
    checkpoint = make_checkpoint(
        state_dict=model.state_dict(), config=run_config_to_dict(run_config), model="chal"
    )
    return save_checkpoint(path, checkpoint)


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for k in range(6):
        cv2.imwrite(str(folder / f"{k}.png"), rng.integers(0, 255, (48, 64), dtype=np.uint8))
    return folder


def run_detect(tmp_path, weights, source, *extra) -> list[dict]:
    result = CliRunner().invoke(
        app,
        ["detect", "--weights", str(weights), str(source), "--out", str(tmp_path), "--no-video"]
        + list(extra),
    )
    assert result.exit_code == 0, result.output
    run_dir = sorted(p for p in tmp_path.iterdir() if p.is_dir())[-1]
    return json.loads((run_dir / "detections.json").read_text())


@pytest.mark.slow
def test_detect_streams_with_the_same_detections(tmp_path, tiny_weights, frames_dir):
    # every box above the decoding floor (random weights score under the display threshold)
    clip_mode = run_detect(tmp_path / "a", tiny_weights, frames_dir, "--no-stream", "--save-all")
    streamed = run_detect(tmp_path / "b", tiny_weights, frames_dir, "--save-all")
    # the onnxruntime backend exports its graphs at one fixed size: the frames' padded size
    onnx = run_detect(
        tmp_path / "c",
        tiny_weights,
        frames_dir,
        "--backend",
        "onnxruntime",
        "--input-size",
        "64",
        "--save-all",
    )
    assert len(clip_mode) > 0
    for other in (streamed, onnx):
        assert len(other) == len(clip_mode)
        got = sorted(d["score"] for d in other)
        want = sorted(d["score"] for d in clip_mode)
        np.testing.assert_allclose(got, want, rtol=1e-4)
        assert {d["image_id"] for d in other} == {d["image_id"] for d in clip_mode}


@pytest.mark.slow
def test_detect_runs_an_exported_onnx_file(tmp_path, tiny_weights, frames_dir):
    for extra in ([], ["--nms"]):
        out = tmp_path / f"model{len(extra)}.onnx"
        result = CliRunner().invoke(
            app, ["export", "--weights", str(tiny_weights), "--out", str(out), *extra]
        )
        assert result.exit_code == 0, result.output
        assert "relative error" in result.output
        streamed = run_detect(tmp_path / "torch", tiny_weights, frames_dir, "--save-all")
        onnx = run_detect(tmp_path / "onnx", out, frames_dir, "--save-all")
        assert len(onnx) == len(streamed) > 0
        got = sorted(d["score"] for d in onnx)
        np.testing.assert_allclose(got, sorted(d["score"] for d in streamed), rtol=1e-4)


def test_detect_rejects_an_unknown_backend(tmp_path, tiny_weights, frames_dir):
    result = CliRunner().invoke(
        app, ["detect", "--weights", str(tiny_weights), str(frames_dir), "--backend", "trt"]
    )
    assert result.exit_code != 0
    assert "backend" in str(result.exception) + result.output


@pytest.mark.slow
def test_export_and_bench_commands(tmp_path, tiny_weights):
    out = tmp_path / "chal.onnx"
    result = CliRunner().invoke(
        app,
        ["export", "--weights", str(tiny_weights), "--format", "onnx", "--raw", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert out.is_file() and (tmp_path / "chal.frame.onnx").is_file()
    assert (tmp_path / "chal.clip.onnx").is_file()
    assert "relative error" in result.output
    json_path = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "--weights",
            str(tiny_weights),
            "--size",
            "64",
            "--repeats",
            "2",
            "--warmup",
            "1",
            "--no-onnx",
            "--json",
            str(json_path),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(json_path.read_text())
    for key in ("params", "gmacs", "clip_ms", "stream_ms", "onnx_stream_ms"):
        assert key in data
    assert data["stream_rel_error"] < 1e-4
    assert data["stream_gmacs"] < data["gmacs"]
    assert "streaming (torch)" in result.output


def test_bench_and_export_reject_bad_sizes():
    from mistd.commands.inference import parse_size
    from mistd.errors import InputError

    assert parse_size("256") == (256, 256)
    assert parse_size("384x640") == (384, 640)
    for bad in ("100", "abc", "0x64"):
        with pytest.raises(InputError):
            parse_size(bad)


@pytest.mark.slow
def test_detect_maps_writes_panels(tmp_path, tiny_weights, frames_dir):
    result = CliRunner().invoke(
        app,
        ["detect", "--weights", str(tiny_weights), str(frames_dir), "--out", str(tmp_path)]
        + ["--no-video", "--maps"],
    )
    assert result.exit_code == 0, result.output
    run_dir = next(p for p in tmp_path.iterdir() if p.is_dir())
    pngs = sorted((run_dir / "maps").rglob("*.png"))
    assert len(pngs) == 6
    panel = cv2.imread(str(pngs[-1]))
    # the frame, then three maps each followed by its 44 px colour bar
    assert panel.shape[:2] == (48, 64 + 3 * (64 + 44))
    assert list((run_dir / "maps").glob("*.mp4"))
    # maps need the torch backend
    result = CliRunner().invoke(
        app,
        ["detect", "--weights", str(tiny_weights), str(frames_dir), "--out", str(tmp_path)]
        + ["--maps", "--backend", "onnxruntime", "--no-video"],
    )
    assert result.exit_code != 0


def quantized_convs(path: Path) -> set[str]:
    """Names of the Conv nodes of an ONNX graph whose weights come quantized (QDQ)."""
    import onnx

    graph = onnx.load(str(path)).graph
    made_by = {out: node.op_type for node in graph.node for out in node.output}
    return {
        n.name
        for n in graph.node
        if n.op_type == "Conv" and made_by.get(n.input[1]) == "DequantizeLinear"
    }


def test_int8_export_uses_the_weights_own_settings(tmp_path, tiny_weights, frames_dir):
    """`mistd export --precision int8` quantizes shipped weights with their own entry of
    `MODEL_INT8_SETTINGS` (yolox-gen-s: the head's box branch, logit convs and output concat
    stay fp32 besides the stem and dark2), other weights with the defaults, and --keep-fp32
    overrides both; the file's metadata says which settings were used."""
    pytest.importorskip("onnxruntime")
    from mistd.inference.onnx_runtime import read_onnx_metadata
    from mistd.inference.quantize import DEFAULT_KEEP_FP32, MODEL_INT8_SETTINGS

    def export(weights, *extra) -> tuple[set[str], dict]:
        out = tmp_path / f"{Path(str(weights)).stem}{len(extra)}.onnx"
        args = ["export", "--weights", str(weights), "--out", str(out), "--precision", "int8"]
        args += ["--calibration", str(frames_dir), "--calibration-frames", "2", "--size", "64"]
        result = CliRunner().invoke(app, [*args, *extra])
        assert result.exit_code == 0, result.output
        return quantized_convs(out), read_onnx_metadata(out)["calibration"]

    own = MODEL_INT8_SETTINGS["yolox-gen-s"]
    assert set(DEFAULT_KEEP_FP32) < set(own.keep_fp32)
    convs, calibration = export("yolox-gen-s")
    assert calibration["settings"] == "per-model settings of yolox-gen-s"
    assert all(f"'{k}'" in calibration["kept_fp32"] for k in own.keep_fp32)
    assert convs and not any(k in c for c in convs for k in own.keep_fp32)
    assert any("/head/cls_convs" in c for c in convs)  # the rest of the head is int8
    assert not any("/head/reg_convs" in c or "_preds" in c for c in convs)
    # --keep-fp32 chooses instead: the box branch is quantized like the rest
    convs, calibration = export("yolox-gen-s", "--keep-fp32", "/encoder/backbone/stem/")
    assert calibration["settings"].startswith("as given")
    assert any("/head/reg_convs" in c for c in convs)
    assert not any("/backbone/stem/" in c for c in convs)
    # weights without an entry: the defaults (stem and dark2 fp32, the head quantized)
    convs, calibration = export(tiny_weights)
    assert calibration["settings"].startswith("as given")
    assert any("/head/reg_preds" in c for c in convs)
    assert not any(k in c for c in convs for k in DEFAULT_KEEP_FP32)
