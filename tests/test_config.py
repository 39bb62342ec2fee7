"""The one configuration system: dataclass defaults, YAML overrides, dotted CLI overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from mistd.config import apply_overrides, dump_yaml, from_dict, load_yaml, parse_dotted, to_dict
from mistd.errors import InputError


@dataclass
class Inner:
    lr: float = 1e-3
    optimizer: Literal["adamw", "sgd"] = "adamw"
    input_size: tuple[int, int] = (512, 512)


@dataclass
class Outer:
    name: str = "exp"
    epochs: int = 10
    amp: bool = False
    root: str | None = None
    train: Inner = field(default_factory=Inner)


def test_dotted_overrides_are_parsed_with_safe_yaml_and_type_checked():
    overrides = parse_dotted(
        ["train.lr=0.01", "epochs=3", "amp=true", "train.input_size=[256, 320]"]
    )
    cfg = apply_overrides(Outer(), overrides)
    assert cfg.train.lr == 0.01 and cfg.epochs == 3 and cfg.amp is True
    assert cfg.train.input_size == (256, 320)
    assert Outer().epochs == 10  # defaults untouched


def test_unknown_key_names_the_dotted_key_and_suggests():
    with pytest.raises(InputError, match=r"unknown config key 'train\.lrr'.*did you mean 'lr'"):
        apply_overrides(Outer(), parse_dotted(["train.lrr=1"]))


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("epochs=ten", "epochs: expected an integer"),
        ("amp=maybe", "amp: expected true/false"),
        ("train.optimizer=adam", r"train.optimizer: expected one of \['adamw', 'sgd'\]"),
        ("train.input_size=[1, 2, 3]", "expected 2 values"),
    ],
)
def test_bad_values_say_what_was_expected(item, message):
    with pytest.raises(InputError, match=message):
        apply_overrides(Outer(), parse_dotted([item]))


def test_yaml_booleans_spelled_as_a_choice_are_that_choice():
    # YAML reads a bare `off` as False: `train.amp=off` must still mean the choice "off"
    @dataclass
    class Mixed:
        amp: Literal["off", "bf16", "fp16"] = "bf16"

    assert apply_overrides(Mixed(), parse_dotted(["amp=off"])).amp == "off"
    with pytest.raises(
        InputError, match=r"amp: expected one of \['off', 'bf16', 'fp16'\], got True"
    ):
        apply_overrides(Mixed(), parse_dotted(["amp=on"]))


def test_override_without_equals_sign_is_rejected():
    with pytest.raises(InputError, match="key=value"):
        parse_dotted(["train.lr"])


def test_yaml_round_trip_and_errors(tmp_path):
    cfg = apply_overrides(Outer(), {"train": {"lr": 0.5}, "root": "/data"})
    path = tmp_path / "cfg.yaml"
    path.write_text(dump_yaml(cfg))
    assert from_dict(Outer, load_yaml(path)) == cfg
    assert to_dict(cfg)["train"]["input_size"] == [512, 512]
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: [1,\n")
    with pytest.raises(InputError, match=r"bad\.yaml:\d+: invalid YAML"):
        load_yaml(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(InputError, match="expected a mapping"):
        load_yaml(scalar)


def test_yaml_never_constructs_python_objects(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(InputError, match="invalid YAML"):
        load_yaml(path)
