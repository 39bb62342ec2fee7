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


# ----------------------------------------------------------------------------- renamed keys


def test_old_train_keys_are_read_under_their_new_names_with_a_warning(tmp_path):
    """`train.max_iters` is now `train.max_steps`, `train.score_threshold` (the decoding floor)
    `train.decode_floor`: an old YAML file still reads, each old key with a warning naming the
    new one, and the resolved config carries only the new names."""
    from mistd.config import RenamedKeyWarning
    from mistd.run_config import build_run_config, run_config_to_dict

    path = tmp_path / "old.yaml"
    path.write_text("train:\n  max_iters: 40\n  score_threshold: 0.01\n")
    with pytest.warns(RenamedKeyWarning) as caught:
        cfg = build_run_config("yolox-s", load_yaml(path))
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        "train.max_iters is renamed train.max_steps: read as train.max_steps=40 "
        "(write train.max_steps)",
        "train.score_threshold is renamed train.decode_floor: read as train.decode_floor=0.01 "
        "(write train.decode_floor)",
    ]
    assert issubclass(RenamedKeyWarning, FutureWarning)  # shown to command-line users
    assert cfg.train.max_steps == 40 and cfg.train.decode_floor == 0.01
    stored = run_config_to_dict(cfg)["train"]
    assert "max_iters" not in stored and "score_threshold" not in stored


def test_configs_stored_in_old_checkpoints_still_read():
    """An old checkpoint's config carries every key of its day, old names included: those at
    their default are dropped silently, a set one is used under the new name (with a warning),
    and a new key set in the same config wins over its old name."""
    import warnings

    from mistd.config import RenamedKeyWarning
    from mistd.run_config import build_run_config, run_config_from_dict, run_config_to_dict

    old = run_config_to_dict(build_run_config("yolox-s"))
    old["train"] |= {"max_iters": 0, "max_steps": 1200, "score_threshold": 0.001}
    del old["train"]["decode_floor"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = run_config_from_dict(old)
    assert cfg.train.max_steps == 1200 and cfg.train.decode_floor == 0.001

    old["train"] |= {"max_iters": 8, "max_steps": 0}  # a run cut short by the old cap
    with pytest.warns(RenamedKeyWarning, match="read as train.max_steps=8"):
        cfg = run_config_from_dict(old)
    assert cfg.train.max_steps == 8
    # resuming it with the old spelling of "no cap" lifts the cap, as it did
    assert apply_overrides(cfg, parse_dotted(["train.max_iters=0"])).train.max_steps == 0

    old["train"] |= {"max_iters": 8, "max_steps": 100}
    with pytest.warns(RenamedKeyWarning, match=r"max_iters=8 ignored.*max_steps.*\(100\)"):
        cfg = run_config_from_dict(old)
    assert cfg.train.max_steps == 100


def test_shipped_weights_configs_read_without_a_warning():
    """The shipped checkpoints were written with the old key names (at their defaults)."""
    import warnings

    from mistd.weights import read_weights, shipped_weights

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in shipped_weights():
            train = read_weights(name).run_config.train
            assert train.decode_floor == 0.001 and train.max_steps > 0, name
