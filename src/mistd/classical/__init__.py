"""Classical (non-learned) detectors: white top-hat, MPCM, temporal background subtraction.

All implement `detect(frames [T, H, W] uint8|uint16, bit_depth) -> Detections` (boxes in original
pixels, key frame = last) and have `num_frames`. `CLASSICAL` is the one explicit table of them:
name -> constructor (call with no arguments for the defaults); `CLASSICAL_CONFIGS` maps the same
names to (config dataclass, builder), and `build_classical("tophat", ["rule.k=5"])` applies typed
dotted config keys (unknown keys fail with a suggestion).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mistd.classical.base import BoxRule, OverlayConfig, OverlaySuppressor, response_to_detections
from mistd.classical.mpcm import MPCMConfig, MPCMDetector, mpcm_response
from mistd.classical.temporal import TemporalConfig, TemporalDetector
from mistd.classical.tophat import TopHatConfig, TopHatDetector

ClassicalDetector = TopHatDetector | MPCMDetector | TemporalDetector

CLASSICAL: dict[str, Callable[..., ClassicalDetector]] = {
    "tophat": TopHatDetector,
    "mpcm": MPCMDetector,
    "temporal": TemporalDetector,
}

CLASSICAL_CONFIGS: dict[str, tuple[type, Callable[[Any], ClassicalDetector]]] = {
    "tophat": (TopHatConfig, TopHatDetector.from_config),
    "mpcm": (MPCMConfig, MPCMDetector.from_config),
    "temporal": (TemporalConfig, TemporalDetector.from_config),
}


def classical_config(name: str, overrides: list[str] | dict | None = None) -> Any:
    """The config dataclass of detector `name` with config keys applied, e.g. `["rule.k=5",
    "overlay.enabled=false", "kernel_sizes=[5,9]"]` or the same as a nested dict."""
    from mistd.config import apply_overrides, parse_dotted

    config_class, _ = CLASSICAL_CONFIGS[name]
    if isinstance(overrides, list):
        overrides = parse_dotted(overrides)
    return apply_overrides(config_class(), overrides or {})


def build_classical(name: str, overrides: list[str] | dict | None = None) -> ClassicalDetector:
    """The detector `name` with config keys applied (see `classical_config`)."""
    return CLASSICAL_CONFIGS[name][1](classical_config(name, overrides))


def classical_settings(items: list[str] | None) -> dict:
    """Trailing `key=value` settings of a classical detector -> nested dict. Keys are its config
    keys (`mistd.classical.CLASSICAL_CONFIGS`), bare or `model.`-prefixed as in `mistd train`:
    `kernel_sizes=[5,9]`, `model.rule.k=5`, `overlay.enabled=false`."""
    from mistd.config import parse_dotted
    from mistd.errors import InputError

    parsed = parse_dotted(list(items or []))
    nested = parsed.pop("model", {})
    if not isinstance(nested, dict):
        raise InputError("'model=...' is not a setting: give model.<key>=value (model.rule.k=5)")

    def merge(into: dict, items: dict, where: str) -> None:
        for key, value in items.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value, f"{where}{key}.")
            elif key in into:
                raise InputError(
                    f"setting '{where}{key}' given both bare and as 'model.{where}{key}'"
                )
            else:
                into[key] = value

    merge(parsed, nested, "")
    return parsed


__all__ = [
    "CLASSICAL",
    "CLASSICAL_CONFIGS",
    "classical_settings",
    "BoxRule",
    "MPCMConfig",
    "MPCMDetector",
    "OverlayConfig",
    "OverlaySuppressor",
    "TemporalConfig",
    "TemporalDetector",
    "TopHatConfig",
    "TopHatDetector",
    "build_classical",
    "classical_config",
    "mpcm_response",
    "response_to_detections",
]
