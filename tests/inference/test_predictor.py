"""`Predictor` and `Results`: frames of any kind in, numpy detections out (issues 21 and 22)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import mistd
from mistd.errors import InputError
from mistd.inference.predictor import Predictor, native_input_size, parse_input_size
from mistd.inference.results import Results
from mistd.thresholds import CLASSICAL_DEFAULTS, LEARNED_DEFAULTS, Thresholds


def blob_frame(height: int = 60, width: int = 80, x: int = 30, y: int = 20) -> np.ndarray:
    frame = np.full((height, width), 40, np.uint8)
    frame[y : y + 4, x : x + 4] = 220
    return frame


def tiny_detector(name: str = "yolox-s", num_frames: int = 1, **config):
    from mistd.inference.detector import ClipDetector
    from mistd.models.zoo import ZOO, build_model

    torch.manual_seed(0)
    overrides = {**ZOO[name][0].tiny_overrides(), "num_frames": num_frames}
    model, _ = build_model(name, overrides)
    return ClipDetector(model, num_frames=num_frames, input_size=(64, 64), **config)


# ------------------------------------------------------------------------------- frames
def test_gray_bgr_and_16_bit_frames_give_the_same_boxes():
    predictor = Predictor("tophat")
    gray = blob_frame()
    boxes = predictor(gray).boxes
    assert boxes.shape == (1, 4) and boxes.dtype == np.float32
    np.testing.assert_allclose(predictor(np.dstack([gray] * 3)).boxes, boxes)
    np.testing.assert_allclose(predictor(gray[..., None]).boxes, boxes)
    sixteen = gray.astype(np.uint16) * 257
    np.testing.assert_allclose(predictor(sixteen).boxes, boxes, atol=1.0)


@pytest.mark.parametrize(
    "frame, message",
    [
        (np.zeros((8, 8), np.float32), "uint8 or uint16"),
        (np.zeros((2, 8, 8), np.uint8), r"gray \[H, W\] or BGR"),
        (np.zeros((8, 8, 5), np.uint8), r"gray \[H, W\] or BGR"),
        (np.zeros((8,), np.uint8), r"gray \[H, W\] or BGR"),
    ],
)
def test_bad_frames_are_refused_with_what_was_given(frame, message):
    with pytest.raises(ValueError, match=message):
        Predictor("tophat")(frame)


def test_consecutive_frames_continue_a_sequence_until_reset():
    predictor = Predictor("temporal")
    first = predictor(blob_frame())
    second = predictor(blob_frame(x=33))
    assert (first.frame_index, second.frame_index) == (0, 1)
    predictor.reset()
    assert predictor(blob_frame()).frame_index == 0


# ------------------------------------------------------------------------------- results
def test_results_index_filter_and_export(tmp_path: Path):
    results = Results(
        [[0, 0, 4, 4], [40, 40, 44, 46], [20, 20, 22, 22]],
        [0.9, 0.2, 0.6],
        [1, 0, 1],
        ["bird", "drone"],
        frame=np.zeros((64, 64), np.uint8),
        display_threshold=0.5,
    )
    strong = results[results.scores > 0.5]
    assert len(strong) == 2 and strong.class_names == ["drone", "drone"]
    assert len(results[1]) == 1 and len(results[:2]) == 2 and len(results.above()) == 2
    assert [len(r) for r in results] == [1, 1, 1]
    listed = json.loads(results.to_json())
    assert listed[1] == {"frame": 1, "box": [40.0, 40.0, 44.0, 46.0], "score": 0.2, "label": 0,
                         "name": "bird"}  # fmt: skip
    image = results.plot()
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert image[0, 0].tolist() == [0, 255, 0]  # the 0.9 box drawn in green
    assert image[40, 40].tolist() == [0, 0, 0]  # the 0.2 box is below the display threshold
    path = results.save(tmp_path / "out" / "frame.png")
    assert cv2.imread(str(path)).shape == (64, 64, 3)
    with pytest.raises(ValueError, match="differ in length"):
        Results([[0, 0, 1, 1]], [0.5, 0.6], [0, 0])


def test_to_supervision_where_installed():
    sv = pytest.importorskip("supervision")
    detections = Results([[0, 0, 4, 4]], [0.9], [0]).to_supervision()
    assert isinstance(detections, sv.Detections) and detections.confidence.tolist() == [
        pytest.approx(0.9)
    ]


def test_display_threshold_filters_and_keep_all_keeps_the_floor():
    frame = blob_frame()
    shown = Predictor("tophat", display_threshold=0.99)(frame)
    everything = Predictor("tophat", keep_all=True)(frame)
    assert len(shown) == 0 and len(everything) >= 1
    assert Predictor("tophat").thresholds == CLASSICAL_DEFAULTS


# ------------------------------------------------------------------------------- sources
def test_image_file_folder_and_dataset_sources(tmp_path: Path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(3):
        cv2.imwrite(str(folder / f"{k}.png"), blob_frame(x=20 + 3 * k))
    predictor = Predictor("tophat")
    one = list(predictor(folder / "1.png"))
    assert len(one) == 1 and one[0].sequence == "1" and one[0].boxes[0, 0] < 23 + 1
    seq = list(predictor(folder))
    assert [r.frame_index for r in seq] == [0, 1, 2]
    assert all(r.record is not None and r.sequence == "frames" for r in seq)
    np.testing.assert_allclose(seq[1].boxes, one[0].boxes)
    assert len(list(predictor(folder, max_frames=2))) == 2
    with pytest.raises(InputError, match="cannot open the camera"):
        list(predictor("rtsp://127.0.0.1:1/none"))


# ------------------------------------------------------------------------------- input size
def test_input_size_rules():
    assert parse_input_size(None) == parse_input_size("native") == "native"
    assert parse_input_size("trained") == "trained"
    assert parse_input_size("256x320") == parse_input_size((256, 320)) == (256, 320)
    assert parse_input_size(512) == (512, 512)
    for bad in ("250x320", "x", (0, 32)):
        with pytest.raises(InputError, match="input size"):
            parse_input_size(bad)
    assert native_input_size(512, 640) == (512, 640)
    assert native_input_size(70, 100) == (96, 128)
    with pytest.raises(InputError, match="trained models"):
        Predictor("tophat", input_size="256x256")


def test_trained_models_run_at_the_frame_size_by_default(tmp_path: Path):
    """A checkpoint trained at 64x64 runs a 70x100 frame at 96x128, padded, not resized (no
    warning); a fixed size that resizes the frame warns."""
    path = checkpoint(tmp_path)
    predictor = Predictor(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictor(blob_frame(70, 100))
    info = predictor.detector.predictor.letterbox
    assert info.input_size == (96, 128) and info.scale == 1.0
    fixed = Predictor(path, input_size="trained")
    with pytest.warns(UserWarning, match="resized"):
        fixed(blob_frame(70, 100))
    assert fixed.detector.predictor.letterbox.input_size == (64, 64)


def checkpoint(tmp_path: Path, thresholds: dict | None = None, scores: bool = False) -> Path:
    """A tiny yolox-s checkpoint trained at 64x64 (`scores`: every anchor scores 0.25)."""
    from mistd.checkpoint import save_checkpoint
    from mistd.models.zoo import ZOO, build_model
    from mistd.run_config import build_run_config, run_config_to_dict

    torch.manual_seed(0)
    overrides = {**ZOO["yolox-s"][0].tiny_overrides(), "input_size": [64, 64]}
    model, _ = build_model("yolox-s", overrides)
    if scores:
        with torch.no_grad():
            for conv in [*model.head.obj_preds, *model.head.cls_preds]:
                conv.weight.zero_()
                conv.bias.zero_()
    cfg = build_run_config("yolox-s", {"model": overrides})
    data = {"state_dict": model.state_dict(), "model": "yolox-s", "config": run_config_to_dict(cfg)}
    if thresholds is not None:
        data["thresholds"] = thresholds
    return save_checkpoint(tmp_path / "model.pt", data)


# ------------------------------------------------------------------------------- thresholds
def test_thresholds_come_from_the_checkpoint(tmp_path: Path):
    from mistd.weights import read_weights

    assert read_weights(checkpoint(tmp_path)).thresholds == LEARNED_DEFAULTS
    path = checkpoint(tmp_path, {"display": 0.2, "operating": 0.35, "track": 0.25})
    predictor = Predictor(path)
    assert predictor.thresholds == Thresholds(display=0.2, operating=0.35, track=0.25)
    config = predictor.tracker_config()
    assert config.high_threshold == config.birth_threshold == 0.25
    assert Predictor(path, display_threshold=0.7).thresholds.display == 0.7
    for bad, message in (
        ({"display": 2.0}, "number in \\[0, 1\\]"),
        ({"shown": 0.2}, "unknown key"),
        ([0.2], "must be a dict"),
    ):
        with pytest.raises(InputError, match=message):
            read_weights(checkpoint(tmp_path, bad))


def test_eval_uses_the_model_operating_threshold(tmp_path: Path):
    from typer.testing import CliRunner

    from mistd.cli import app

    data = tmp_path / "data"
    data.mkdir()
    for k in range(3):
        cv2.imwrite(str(data / f"{k}.png"), blob_frame())
    runner = CliRunner()
    path = checkpoint(tmp_path, {"operating": 0.35})
    out = tmp_path / "m.json"
    args = ["eval", "--weights", str(path), "--data", str(data), "--json", str(out)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert metrics["operating_threshold"] == 0.35 and metrics["thresholds"]["operating"] == 0.35
    assert 0.0 <= metrics["best_f1_threshold"] <= 1.0 and 0.0 <= metrics["best_f1"] <= 1.0
    assert len(metrics["f1_curve"]["f1"]) == len(metrics["f1_curve"]["score"]) == 101


def test_detect_writes_boxes_below_the_display_threshold_only_with_save_all(tmp_path: Path):
    from typer.testing import CliRunner

    from mistd.cli import app

    frames = tmp_path / "frames"
    frames.mkdir()
    for k in range(2):
        cv2.imwrite(str(frames / f"{k}.png"), blob_frame())
    path = checkpoint(tmp_path, {"display": 0.5}, scores=True)
    runner = CliRunner()
    written = {}
    for flag in ([], ["--save-all"]):
        name = f"run{len(flag)}"
        args = ["detect", "--weights", str(path), str(frames), "--no-video", "--name", name]
        result = runner.invoke(app, [*args, "--out", str(tmp_path / "runs"), *flag])
        assert result.exit_code == 0, result.output
        written[len(flag)] = json.loads((tmp_path / "runs" / name / "detections.json").read_text())
    # every anchor scores 0.25: nothing reaches the display threshold 0.5, all pass 0.001
    assert written[0] == []
    assert written[1] and all(d["score"] == pytest.approx(0.25) for d in written[1])


# ------------------------------------------------------------------------------- stages
def test_stages_and_callbacks_run_in_order_and_reset_per_sequence(tmp_path: Path):
    calls = []

    class Halve:
        def reset(self):
            calls.append("reset")

        def __call__(self, results):
            results.scores = results.scores / 2
            return results

    predictor = Predictor("tophat", keep_all=True)
    raw = predictor(blob_frame()).scores
    predictor.add_stage(Halve())
    predictor.add_callback("on_results", lambda p, r: calls.append(r.frame_index))
    predictor.add_callback("on_sequence_start", lambda p, name: calls.append(name))
    np.testing.assert_allclose(predictor(blob_frame()).scores, raw / 2)
    folder = tmp_path / "seq"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.png"), blob_frame())
    list(predictor(folder))
    assert calls == [1, "reset", "seq", 0]
    with pytest.raises(ValueError, match="unknown event"):
        predictor.add_callback("on_nothing", print)


def test_merge_classes_is_class_agnostic_nms():
    class TwoBoxes:
        num_frames = 1
        config = {"data": {"class_names": ["bird", "drone"]}}

        def detect(self, frames, bit_depth):
            from mistd.structures import Detections

            boxes = [[10, 10, 16, 16], [10.5, 10, 16.5, 16], [40, 40, 44, 44]]
            return Detections.from_numpy(np.array(boxes), np.array([0.9, 0.6, 0.4]), [1, 0, 1])

    kept = Predictor(TwoBoxes(), keep_all=True)(np.zeros((64, 64), np.uint8))
    merged = Predictor(TwoBoxes(), keep_all=True, merge_classes=True)(np.zeros((64, 64), np.uint8))
    assert len(kept) == 3 and kept.names == ["bird", "drone"]
    assert merged.labels.tolist() == [0, 0] and merged.names == ["target"]
    np.testing.assert_allclose(merged.scores, [0.9, 0.4])


def test_chal_maps_reach_the_results_and_the_panels(tmp_path: Path):
    """Regression: `mistd demo` drew CHAL's map panels as "n/a" (the maps were lost in a stack of
    wrappers); the predictor keeps them on the results, and the panels show them."""
    from mistd.inference.panels import COLOUR_BAR_WIDTH, MapPanelWriter

    detector = tiny_detector("chal", num_frames=3)
    predictor = Predictor(detector, maps=True)
    with MapPanelWriter(tmp_path / "maps", 10) as panels:
        for k in range(3):
            results = predictor(blob_frame(64, 64, x=20 + k))
            panels.write(results, results.plot())
    assert {"background", "anomaly", "gate"} <= set(results.maps)
    # frames pushed one by one have no sequence name: their files go under "video"
    panel = cv2.imread(str(tmp_path / "maps" / "video" / "000003.png"))  # 3rd frame, 1-based
    bar = COLOUR_BAR_WIDTH
    assert panel.shape == (64, 64 + 3 * (64 + bar), 3)
    for tile in range(3):  # background, anomaly, gate: drawn, not black "n/a" tiles
        start = 64 + tile * (64 + bar)
        assert panel[20:, start : start + 64].any(), tile
    with pytest.raises(InputError, match="CHAL"):
        Predictor(tiny_detector("yolox-s"), maps=True)


# ------------------------------------------------------------------------------- onnx, front door
def test_onnx_files_go_to_the_one_dispatch_point(tmp_path: Path):
    with pytest.raises(InputError, match="ONNX file not found"):
        Predictor(tmp_path / "missing.onnx")
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not onnx")
    with pytest.raises(InputError, match="not a readable ONNX file"):
        Predictor(path)


def test_threads_are_checked_and_set(tmp_path: Path):
    import torch

    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(InputError, match="threads must be a whole number >= 1"):
            Predictor("tophat", threads=bad)
    before = torch.get_num_threads()
    try:
        Predictor(tiny_detector("yolox-s"), threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_predictor_module_imports_no_torch():
    code = (
        "import sys, mistd, mistd.inference.predictor, mistd.inference.results; "
        "mistd.Predictor; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_three_lines_of_python():
    predictor = mistd.Predictor("tophat")
    results = predictor(blob_frame())
    assert isinstance(results, mistd.Results) and len(results) == 1


FAKE_ONNX_RUNTIME = '''
import sys, types
import numpy as np

fake = types.ModuleType("mistd.inference.onnx_runtime")


class OnnxDetector:
    """Stands in for the onnxruntime detector: the contract `Predictor` dispatches .onnx to."""

    names = ["drone"]
    num_frames = 1
    frame_stride = 1
    metadata = {"thresholds": {"display": 0.25}, "frame_check": {"regrow": True},
                "dynamic_size": False}
    input_size = (32, 32)
    min_input_size = (32, 32)

    def __init__(self, path, input_size=None, threads=None):
        self.seen = 0

    def reset(self):
        self.seen = 0

    def push(self, frame, bit_depth=None):
        self.seen += 1
        return (np.array([[10, 12, 20, 22], [1, 1, 3, 3]], np.float32),
                np.array([0.6, 0.1], np.float32), np.array([0]*2))


fake.OnnxDetector = OnnxDetector
sys.modules["mistd.inference.onnx_runtime"] = fake
'''


def test_detect_and_python_run_an_onnx_file_without_torch(tmp_path: Path):
    """`mistd detect --weights model.onnx` and `Predictor("model.onnx")` go through the one
    dispatch point and never import torch (a stand-in runtime keeps the test to the predictor's
    side of the contract; tests/inference/test_onnx_runtime.py runs real graphs)."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for k in range(2):
        cv2.imwrite(str(frames / f"{k}.png"), blob_frame())
    model = tmp_path / "model.onnx"
    model.write_bytes(b"")
    code = (
        FAKE_ONNX_RUNTIME
        + f"""
from typer.testing import CliRunner
from mistd import Predictor
from mistd.cli import app

predictor = Predictor({str(model)!r})
assert predictor.frame_check is not None  # the file's metadata turns it on
results = predictor(np.zeros((32, 32), np.uint8))
assert results.names == ["drone"] and len(results) == 1, results  # 0.1 < display 0.25
assert predictor.thresholds.display == 0.25
out = CliRunner().invoke(app, ["detect", "--weights", {str(model)!r}, {str(frames)!r},
                               "--out", {str(tmp_path / "runs")!r}])
assert out.exit_code == 0, out.output
assert "torch" not in sys.modules, "torch was imported"
"""
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    rows = (tmp_path / "runs" / "model" / "detections.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].endswith(",0.6000,0,drone")
    assert rows[1].startswith("1,frames,") and rows[2].startswith("2,frames,")  # 1-based numbers


def test_one_name_per_option_and_the_old_spellings_still_work(tmp_path: Path):
    """--display-threshold (detect), --operating-threshold (eval, eval-dets, track), --out (every
    command writing a run folder), --select (sequences); --score-threshold, --project and
    --split are kept as old spellings."""
    from typer.testing import CliRunner

    from mistd.cli import app

    frames = tmp_path / "frames"
    frames.mkdir()
    for k in range(3):
        cv2.imwrite(str(frames / f"{k}.png"), blob_frame(x=20 + 2 * k))
    runner = CliRunner()

    def run(*args: str) -> dict:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result

    runs = tmp_path / "runs"
    for option in ("--display-threshold", "--score-threshold"):
        name = option.strip("-")
        result = run("detect", "--model", "tophat", str(frames), "--out", str(runs), "--name",
                     name, "--no-video", option, "0.99")  # fmt: skip
        assert (runs / name / "detections.csv").read_text().count("\n") == 1  # header only
        old = "note: --score-threshold is now --display-threshold" in result.output
        assert old == (option == "--score-threshold")
    for out, option in (("--out", "--operating-threshold"), ("--project", "--score-threshold")):
        m = tmp_path / f"{out.strip('-')}.json"
        result = run("eval", "--model", "tophat", "--data", str(frames), out, str(runs / "eval"),
                     option, "0.4", "--json", str(m))  # fmt: skip
        assert json.loads(m.read_text())["operating_threshold"] == 0.4
        old = "note: --score-threshold is now --operating-threshold" in result.output
        assert old == (option == "--score-threshold")
    assert len(list((runs / "eval").iterdir())) == 2
    # the old name is hidden from the help, and giving both names is refused
    help_text = runner.invoke(app, ["detect", "--help"]).output
    assert "--display-threshold" in help_text and "--score-threshold" not in help_text
    both = ["eval-dets", "--gt", "g.json", "--dets", "d.json", "--operating-threshold", "0.3"]
    both = runner.invoke(app, [*both, "--score-threshold", "0.3"])
    assert both.exit_code != 0 and "--operating-threshold only" in str(both.exception)
    result = runner.invoke(app, ["detect", "--model", "tophat", str(frames),
                                 "--display-threshold", "2"])  # fmt: skip
    assert "--display-threshold must be" in str(result.exception)
    with pytest.warns(DeprecationWarning, match="mistd.create_model is renamed mistd.build_model"):
        assert mistd.create_model is mistd.build_model


def test_an_exported_graph_runs_like_the_torch_model_through_the_predictor(tmp_path: Path):
    """A real deployable graph (`mistd export`, dynamic size, thresholds in its metadata) behind
    `Predictor("model.onnx")`: the frame's own size (padded to x32), the weights' thresholds,
    the class names, and the detections of the torch model streamed at that size."""
    pytest.importorskip("onnxruntime")
    from mistd.inference.detector import ClipDetector
    from mistd.inference.export import export_deploy_onnx
    from mistd.models.zoo import ZOO, build_model

    torch.manual_seed(0)
    cfg = dict(ZOO["mf-baseline"][0].tiny_overrides(), input_size=[64, 96], num_classes=2)
    model, _ = build_model("mf-baseline", cfg)
    with torch.no_grad():  # scores near 0.25 that differ from anchor to anchor: boxes to compare
        for conv in [*model.head.obj_preds, *model.head.cls_preds]:
            conv.bias.zero_()
    path = export_deploy_onnx(
        model.eval(),
        tmp_path / "m.onnx",
        (64, 96),
        class_names=["bird", "drone"],
        dynamic=True,
        thresholds={"display": 0.2, "operating": 0.4, "track": 0.25},
    )
    graph = Predictor(path, keep_all=True)
    config = {"data": {"class_names": ["bird", "drone"]}}
    torch_model = Predictor(
        ClipDetector(model, num_frames=model.num_frames, input_size=(64, 96), config=config),
        input_size="native",
        keep_all=True,
    )
    assert graph.thresholds == Thresholds(display=0.2, operating=0.4, track=0.25)
    assert graph.names == torch_model.names == ["bird", "drone"]
    for k in range(3):
        frame = blob_frame(70, 100, x=30 + 2 * k)
        got, want = graph(frame), torch_model(frame)
        assert graph.detector.runtime.input_size == (96, 128)  # 70x100 padded to x32
        strong = want.scores >= 0.01
        assert (got.scores >= 0.01).sum() == strong.sum() >= 5

        # order-free: anchors over a flat background tie in score
        def rows(r, keep):
            table = np.round(np.column_stack([r.scores[keep], r.boxes[keep]]), 2)
            return table[np.lexsort(table.T[::-1])]

        np.testing.assert_allclose(rows(got, got.scores >= 0.01), rows(want, strong), atol=0.011)
        assert got.letterbox is None and want.letterbox.scale == 1.0  # padded, not resized
    # clip mode (the sampled evaluation) runs at the frame's own size too: the key frame's
    # detections equal those of the same frames streamed
    clip = np.stack([blob_frame(70, 100, x=30 + 2 * k) for k in range(model.num_frames)])
    fresh = Predictor(path, keep_all=True)
    assert fresh.detector.runtime.input_size == (64, 96)  # the export size until a frame comes
    (clipped,) = fresh.detector.detect_clips([clip], [8])
    assert fresh.detector.runtime.input_size == (96, 128)
    graph.reset()
    streamed = [graph(frame) for frame in clip][-1]
    np.testing.assert_allclose(np.sort(clipped.scores), np.sort(streamed.scores), atol=1e-5)


# ------------------------------------------------------------------------------- frame check
def test_frame_check_comes_from_the_checkpoint_and_the_switch(tmp_path: Path):
    from mistd.checkpoint import load_checkpoint, save_checkpoint
    from mistd.frame_check import FrameCheck, FrameCheckStage

    plain = checkpoint(tmp_path, scores=True)
    assert Predictor(plain).frame_check is None
    assert Predictor(plain, frame_check="on").frame_check.check == FrameCheck(regrow=True)
    data = load_checkpoint(plain)
    data["frame_check"] = {"regrow": True, "contrast_scale": 20.0}
    checked = save_checkpoint(tmp_path / "checked.pt", data)
    predictor = Predictor(checked, keep_all=True)
    assert isinstance(predictor.stages[0], FrameCheckStage)
    assert predictor.frame_check.check == FrameCheck(True, 20.0)
    assert Predictor(checked, frame_check="off").stages == []
    # every anchor scores 0.25 on a blank frame: the check leaves none of them there
    frame = np.full((64, 64), 50, np.uint8)
    raw = Predictor(plain, keep_all=True)(frame)
    assert len(raw) > 0 and raw.scores.max() == pytest.approx(0.25, abs=1e-3)
    assert predictor(frame).scores.max(initial=0.0) < 0.01
    # shown boxes only (not keep_all): the check skips boxes under the display threshold, and
    # what is shown is the same as checking every box, then filtering
    shown = Predictor(checked, display_threshold=0.05)(blob_frame(64, 64))
    every = Predictor(checked, keep_all=True)(blob_frame(64, 64))
    kept = every[every.scores >= 0.05]
    assert 0 < len(kept) < len(every)
    np.testing.assert_allclose(np.sort(shown.scores), np.sort(kept.scores), rtol=1e-6)
    data["frame_check"] = {"contrast_scale": "high"}
    with pytest.raises(InputError, match="contrast_scale"):
        Predictor(save_checkpoint(tmp_path / "bad.pt", data))


def test_sampled_clips_run_at_each_frames_own_size_also_when_streaming(tmp_path: Path):
    """`predict_clips` (training's sampled evaluation, cross_camera's drone_ir column) fits the
    clip detector to each clip's frames, as `push` does, whether or not the predictor streams;
    clips of several sizes in one call each get their own."""
    from mistd.structures import Clip

    path = checkpoint(tmp_path)  # trained at 64x64
    rng = np.random.default_rng(0)
    clips = [
        Clip((rng.random((1, h, w)) * 255).astype(np.uint8), 8, None, [0])
        for h, w in ((64, 96), (96, 128), (64, 96))
    ]
    for stream in (True, False):
        predictor = Predictor(path, stream=stream, keep_all=True)
        found = predictor.predict_clips(clips, batch=3)
        assert len(found) == 3
        assert predictor.detector.clip_detector.input_size in ((64, 96), (96, 128))
        pushed = Predictor(path, stream=stream, keep_all=True)
        for clip, got in zip(clips, found, strict=True):
            pushed.reset()
            want = pushed(clip.frames[-1])
            np.testing.assert_allclose(np.sort(got.scores), np.sort(want.scores), atol=1e-5)
