"""Starting a run from other weights (`train.init_weights`, `mistd train --init`)."""

from __future__ import annotations

import pytest
import torch

from mistd.errors import InputError
from mistd.models.official import convert_official
from mistd.models.zoo import build_model
from mistd.weights import load_initial_weights


def test_official_weights_initialise_chal_and_wrong_width_is_refused(shared_dir):
    path = shared_dir / "fixtures" / "chal_official" / "official_state_dict_fp16.pt"
    model, _ = build_model("chal", {})
    loaded, missing, unused = load_initial_weights(model, path)
    assert missing == [] and unused == [] and loaded == len(model.state_dict())
    official = torch.load(path, weights_only=True)
    expected, _ = convert_official({k: v.float() for k, v in official.items()})
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[key].to(value.dtype), rtol=0, atol=0)

    narrow, _ = build_model("chal", {"width": 0.25})
    with pytest.raises(InputError, match="do not fit the model"):
        load_initial_weights(narrow, path)


def test_backbone_of_another_detector_is_reused(tmp_path):
    from mistd import __version__

    source, _ = build_model("yolox-s", {"width": 0.125})
    path = tmp_path / "yolox.pt"
    torch.save(
        {"state_dict": source.state_dict(), "model": "yolox-s", "mistd_version": __version__},
        path,
    )
    target, _ = build_model("mf-baseline", {"width": 0.125})
    loaded, missing, _ = load_initial_weights(target, path)
    assert loaded > 0 and missing  # the backbone fits, the fusion/head layers stay new
    key = next(k for k in target.state_dict() if k.startswith("backbone.") and "conv" in k)
    torch.testing.assert_close(target.state_dict()[key], source.state_dict()[key])
