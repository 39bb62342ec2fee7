"""`read_weights`, the one loader: zoo names only where asked, the official wrapped form."""

from __future__ import annotations

import pytest
import torch

from mistd.errors import InputError
from mistd.inference.detector import load_detector
from mistd.models.zoo import ZOO
from mistd.weights import read_weights


def test_a_zoo_name_is_random_weights_only_where_asked():
    weights = read_weights("yolox-s", zoo=True)
    assert (weights.kind, weights.state_dict, weights.name) == ("zoo", None, "yolox-s")
    model = weights.build_model(ZOO["yolox-s"][0].tiny_overrides())
    assert not model.training
    with pytest.raises(InputError, match="neither a file nor a shipped weights name"):
        read_weights("yolox-s")
    with pytest.raises(InputError, match="neither a file nor a shipped weights name"):
        load_detector("yolox-s")  # random weights would be a silent mistake here


def test_official_weights_wrapped_in_a_state_dict_key_load(shared_dir, tmp_path):
    official = torch.load(
        shared_dir / "fixtures" / "chal_official" / "official_state_dict_fp16.pt",
        weights_only=True,
    )
    torch.save({"state_dict": official}, tmp_path / "wrapped.pth")
    weights = read_weights(tmp_path / "wrapped.pth")
    assert weights.kind == "official" and weights.name == "official:wrapped.pth"
    assert weights.run_config.model_name == "chal" and len(weights.dropped) == 4
    model = weights.build_model({"input_size": [64, 64]})
    key = "head.cls_preds.0.weight"
    torch.testing.assert_close(model.state_dict()[key], weights.state_dict[key])
