"""Checkpoints, RNG states, `load_detector` (interface 3), and the `mistd train` command."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mistd.boxes import clip_to_frame
from mistd.checkpoint import get_rng_states, load_checkpoint, save_checkpoint, set_rng_states
from mistd.cli import app
from mistd.data.clips import ClipSampler
from mistd.data.readers import read_dataset
from mistd.data.transforms import to_model_input
from mistd.errors import InputError
from mistd.inference.detector import ClipDetector, load_detector
from mistd.models.zoo import ZOO, build_model


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    # The legacy global numpy RNG is the state being saved, hence np.random.* here.
    random.seed(1)
    np.random.seed(2)  # noqa: NPY002
    torch.manual_seed(3)
    np.random.standard_normal()  # noqa: NPY002  (leaves a cached gaussian in the state)
    save_checkpoint(tmp_path / "c.pt", {"rng_states": get_rng_states()})
    expected = (random.random(), np.random.standard_normal(3), torch.rand(3))  # noqa: NPY002
    random.seed(9)
    np.random.seed(9)  # noqa: NPY002
    torch.manual_seed(9)
    set_rng_states(load_checkpoint(tmp_path / "c.pt")["rng_states"])
    got = (random.random(), np.random.standard_normal(3), torch.rand(3))  # noqa: NPY002
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1], expected[1])
    assert torch.equal(got[2], expected[2])


def test_checkpoint_is_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "weights" / "last.pt"
    save_checkpoint(path, {"a": torch.ones(2)})

    def broken_save(obj, f):
        if hasattr(f, "write"):  # save_checkpoint serialises to memory first
            f.write(b"half")
        else:
            with open(f, "wb") as fh:
                fh.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(path, {"a": torch.zeros(2)})
    assert torch.equal(load_checkpoint(path)["a"], torch.ones(2))  # the old one is intact
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(InputError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(InputError, match="neither a file nor a shipped weights name"):
        load_detector("no-such-weights")


@pytest.fixture(scope="module")
def trained_run(tiny_data, tmp_path_factory):
    """`mistd train` through the CLI: 1 epoch of a tiny multi-frame baseline."""
    root = tmp_path_factory.mktemp("cli")
    tiny = ZOO["mf-baseline"][0].tiny_overrides()
    args = [
        "train", "--model", "mf-baseline", "--data", str(tiny_data), "--out", str(root),
        "--name", "tiny", "--no-progress", "model.width=0.125", "model.num_frames=2",
        f"model.input_size=[{tiny['input_size'][0]},{tiny['input_size'][1]}]",
        "data.workers=0", "train.epochs=1", "train.batch_size=4", "train.epoch_fraction=1.0",
        "train.eval_interval=1",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return root / "tiny", result.output


@pytest.mark.slow
def test_cli_train_writes_a_run(trained_run):
    run, output = trained_run
    assert "Training summary" in output and "best mAP50" in output
    for name in ("config.yaml", "results.csv", "curves.png", "weights/last.pt", "weights/best.pt"):
        assert (run / name).is_file(), name
    text = (run / "config.yaml").read_text()
    assert "model_name: mf-baseline" in text and "epoch_fraction: 1.0" in text
    ckpt = load_checkpoint(run / "weights" / "last.pt")
    assert {"state_dict", "config", "model", "mistd_version", "epoch", "iteration", "optimizer",
            "scheduler", "ema", "scaler", "rng_states", "best_map50"} <= set(ckpt)  # fmt: skip
    # official AdamW grouping: BN weights + biases at 0.01, other weights at 0.05
    decays = [g["weight_decay"] for g in ckpt["optimizer"]["param_groups"]]
    assert decays == [0.01, 0.05]


def test_cli_errors_exit_2_without_traceback(tiny_data):
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--model", "mf-baseline", "--data", str(tiny_data),
                                 "train.epoch=3"])  # fmt: skip
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError) and "did you mean 'epochs'" in str(
        result.exception
    )
    result = runner.invoke(app, ["train", "--data", str(tiny_data)])
    assert isinstance(result.exception, InputError) and "--model" in str(result.exception)


@pytest.mark.slow
def test_load_detector_maps_detections_to_original_pixels(trained_run, tiny_data):
    run, _ = trained_run
    detector = load_detector(run / "weights" / "best.pt", decode_floor=0.0, nms_iou=0.65)
    assert isinstance(detector, ClipDetector)
    assert detector.num_frames == 2 and detector.input_size == (64, 64)
    assert detector.config["model_name"] == "mf-baseline"
    # The EMA weights are the ones deployed.
    ckpt = load_checkpoint(run / "weights" / "best.pt")
    for name, value in ckpt["ema"]["state_dict"].items():
        assert torch.equal(detector.model.state_dict()[name], value), name

    clip = ClipSampler(read_dataset(tiny_data), num_frames=2)[5]
    big = np.kron(clip.frames, np.ones((2, 2), dtype=clip.frames.dtype))  # 128x128 originals
    dets = detector.detect(big, clip.bit_depth)
    x, info = to_model_input(big, clip.bit_depth, (64, 64))
    with torch.no_grad():
        ref = detector.model.predict(x[None], decode_floor=0.0, nms_iou=0.65)[0]
    # input 64 px -> original 128 px, clipped to the frame (a box wholly outside it goes)
    expected, inside = clip_to_frame((ref.boxes * 2.0).numpy(), 128, 128)
    assert len(dets) == int(inside.sum()) > 0
    torch.testing.assert_close(dets.boxes, torch.from_numpy(expected[inside]))
    torch.testing.assert_close(dets.scores, ref.scores[torch.from_numpy(inside)])
    # A single frame is padded by repeating it (sequence-start rule); batches agree with singles.
    single = detector.detect(big[-1], clip.bit_depth)
    padded = detector.detect(np.stack([big[-1], big[-1]]), clip.bit_depth)
    torch.testing.assert_close(single.boxes, padded.boxes)
    batch = detector.detect_batch([big, big[-1:]], clip.bit_depth)
    torch.testing.assert_close(batch[0].scores, dets.scores, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batch[1].scores, single.scores, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_resume_through_the_cli_continues_the_run(trained_run):
    run, _ = trained_run
    result = CliRunner().invoke(
        app, ["train", "--resume", str(run), "--no-progress", "train.epochs=2"]
    )
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(run / "weights" / "last.pt")
    assert ckpt["epoch"] == 2 and [r["epoch"] for r in ckpt["history"]] == [1, 2]


@pytest.mark.slow
def test_load_detector_accepts_an_official_chal_checkpoint(shared_dir):
    """A plain official CHAL state dict goes through `mistd.models.official` (key conversion)."""
    path = shared_dir / "fixtures" / "chal_official" / "official_state_dict_fp16.pt"
    detector = load_detector(path)
    assert detector.name.startswith("official:") and detector.num_frames == 5
    assert type(detector.model) is type(build_model("chal", {"width": 0.125})[0])
    frames = np.random.default_rng(0).integers(0, 255, (5, 48, 64)).astype(np.uint8)
    dets = detector.detect(frames, 8)
    assert dets.boxes.shape == (len(dets), 4) and dets.scores.min() >= 0.001


def test_width_mismatched_checkpoint_names_the_tensor(tmp_path):
    """A checkpoint whose config says another width: one error that shows which tensor differs."""
    from mistd.checkpoint import make_checkpoint, save_checkpoint
    from mistd.errors import InputError
    from mistd.inference.detector import load_detector
    from mistd.models.zoo import build_model
    from mistd.run_config import build_run_config, run_config_to_dict

    small = {"width": 0.125, "depth": 0.33, "input_size": [64, 64]}
    model, _ = build_model("yolox-s", small)
    config = run_config_to_dict(build_run_config("yolox-s", {"model": {**small, "width": 0.25}}))
    path = tmp_path / "w.pt"
    save_checkpoint(
        path, make_checkpoint(state_dict=model.state_dict(), model="yolox-s", config=config)
    )
    with pytest.raises(InputError, match=r"w.pt: checkpoint does not fit model 'yolox-s'.*size"):
        load_detector(path)
