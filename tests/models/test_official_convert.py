"""Official CHAL checkpoint conversion, loading and the `mistd convert-official` command."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mistd.cli import app
from mistd.errors import InputError
from mistd.models.official import convert_official, is_official_state_dict, official_to_mistd_key
from mistd.models.zoo import build_model
from mistd.weights import read_weights


@pytest.mark.parametrize(
    ("official", "ours"),
    [
        ("backbone.backbone.dark5.1.conv1.bn.weight", "backbone.dark5.1.conv1.bn.weight"),
        ("backbone.lateral_conv0.conv.weight", "neck.lateral_conv_p5.conv.weight"),
        ("backbone.C3_n4.m.0.conv2.conv.weight", "neck.bottom_up_p5.m.0.conv2.conv.weight"),
        ("mulit1.1.weight", "fold.upsample_p5.1.weight"),
        ("conv2.bias", "fold.fuse_p3.bias"),
        (
            "neck.early_fusion.align_convs.2.1.bn.running_var",
            "early_fusion.align_p5.bn.running_var",
        ),
        (
            "neck.early_fusion.attention.channel_attention.shared_MLP.2.weight",
            "early_fusion.attention.channel_attention.mlp.2.weight",
        ),
        (
            "neck.feature_modulation.3.spatial_attention.conv2d.bias",
            "gate.refine.3.spatial_attention.conv.bias",
        ),
        (
            "neck.background_field.neural_field.hidden_layers.3.weight",
            "background_field.field.layers_after_skip.0.weight",
        ),
        (
            "neck.background_field.scene_encoder.dynamics_encoder.7.bias",
            "background_field.scene_encoder.motion_branch.7.bias",
        ),
        (
            "neck.stst_processor.transformer_layers.0.mlp.fc2.weight",
            "motion_verification.layers.0.mlp.2.weight",
        ),
        ("neck.stst_processor.anomaly_processor.pos_embed", "motion_verification.token_bias"),
        ("neck.small_target_enhancer.1.running_mean", "gate.mask.1.running_mean"),
        ("head.obj_preds.0.bias", "head.obj_preds.0.bias"),
        ("neck.something_else.weight", None),
    ],
)
def test_key_mapping(official, ours):
    assert official_to_mistd_key(official) == ours


def test_unknown_key_is_an_error():
    with pytest.raises(InputError, match="not part of the official CHAL model"):
        convert_official({"mulit1.1.weight": torch.zeros(1), "neck.extra.weight": torch.zeros(1)})


def test_derived_buffers_are_checked():
    with pytest.raises(InputError, match="frequencies"):
        convert_official({"neck.background_field.pos_encoder.freq_bands": torch.ones(6)})
    key = "neck.stst_processor.transformer_layers.0.attn.relative_position_index"
    with pytest.raises(InputError, match="relative position index"):
        convert_official({key: torch.zeros(80, 80, dtype=torch.long)})


@pytest.fixture
def official_files(shared_dir: Path) -> tuple[Path, Path]:
    folder = shared_dir / "fixtures" / "chal_official"
    return folder / "official_state_dict_fp16.pt", folder / "official_io_128.pt"


def test_every_official_key_is_accounted_for(official_files):
    state_dict = torch.load(official_files[0], weights_only=True)
    assert is_official_state_dict(state_dict)
    converted, dropped = convert_official(state_dict)
    assert len(converted) + len(dropped) == len(state_dict) == 555
    assert set(dropped) == {
        "neck.background_field.neural_field.hidden_layers.2.weight",
        "neck.background_field.neural_field.hidden_layers.2.bias",
        "neck.background_field.pos_encoder.freq_bands",
        "neck.stst_processor.transformer_layers.0.attn.relative_position_index",
    }
    assert all(v.dtype == torch.float32 for v in converted.values() if v.is_floating_point())
    model, _ = build_model("chal", {})
    assert set(model.state_dict()) == set(converted)
    assert not is_official_state_dict(model.state_dict())
    # A DDP `module.` prefix is accepted.
    prefixed = {f"module.{k}": v for k, v in state_dict.items()}
    assert is_official_state_dict(prefixed)
    assert set(convert_official(prefixed)[0]) == set(converted)


@pytest.mark.slow
def test_convert_command_verifies_and_writes(official_files, tmp_path: Path):
    checkpoint, reference = official_files
    out = tmp_path / "chal.pt"
    runner = CliRunner()
    args = ["convert-official", str(checkpoint), "--out", str(out), "--verify", str(reference)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in ("fused", "background", "appearance_anomaly", "anomaly", "neck", "head"):
        assert name in result.output
    saved = torch.load(out, weights_only=True)
    assert saved["model"] == "chal" and saved["config"]["model_name"] == "chal"
    assert saved["config"]["model"]["width"] == 0.5
    assert set(saved) >= {"state_dict", "config", "mistd_version", "model"}

    converted, official = read_weights(out), read_weights(checkpoint)
    assert (converted.kind, official.kind) == ("mistd", "official")
    assert converted.run_config == official.run_config
    mistd_model, official_model = converted.build_model(), official.build_model()
    assert not mistd_model.training
    clip = torch.randn(1, 5, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(mistd_model(clip)[0], official_model(clip)[0])


@pytest.mark.slow
def test_convert_command_fails_on_a_wrong_weight(official_files, tmp_path: Path):
    checkpoint, reference = official_files
    state_dict = torch.load(checkpoint, weights_only=True)
    state_dict["neck.small_target_enhancer.3.weight"] = (
        state_dict["neck.small_target_enhancer.3.weight"] * 1.1
    )
    corrupted = tmp_path / "corrupted.pth"
    torch.save(state_dict, corrupted)
    out = tmp_path / "chal.pt"
    args = ["convert-official", str(corrupted), "--out", str(out), "--verify", str(reference)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "> tolerance" in result.output
    assert not out.exists()


def test_loader_rejects_other_files(tmp_path: Path):
    bad = tmp_path / "bad.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(InputError, match="not a mistd checkpoint"):
        read_weights(bad)
    with pytest.raises(InputError, match="not found"):
        read_weights(tmp_path / "missing.pt")
    result = CliRunner().invoke(
        app, ["convert-official", str(bad), "--out", str(tmp_path / "o.pt")]
    )
    assert isinstance(result.exception, InputError)  # the CLI's main() prints it, exit status 2
    assert "bad.pt" in str(result.exception)
