"""One configuration system: typed dataclasses hold defaults, YAML files hold overrides, the CLI
takes dotted `key=value` overrides.

    cfg = RunConfig()                                   # defaults
    cfg = apply_overrides(cfg, load_yaml("exp.yaml"))   # YAML holds only what differs
    cfg = apply_overrides(cfg, parse_dotted(["train.epochs=3", "model.width=0.25"]))

Unknown keys are rejected with a "did you mean" suggestion; values are parsed with safe YAML and
checked against the field's type. Nothing is ever `eval`-ed.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from mistd.errors import InputError


class _Loader(yaml.SafeLoader):
    """Safe YAML with two fixes: `1e-4` is a number (YAML 1.2; PyYAML's 1.1 rules want `1.0e-4`)
    and a key given twice in one mapping is an error (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key '{key_node.value}' is given twice", key_node.start_mark
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


# A copy of the resolver table, so that plain `yaml.safe_load` elsewhere is unchanged.
_Loader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def safe_yaml(text: str) -> Any:
    """`yaml.safe_load` with YAML 1.2 exponent numbers (`1e-4`) and duplicate keys refused."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (_Loader is a SafeLoader)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML override file (safe loader); an empty file is `{}`."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"cannot read config file ({exc.strerror})", path) from None
    try:
        data = safe_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        raise InputError(f"invalid YAML ({getattr(exc, 'problem', exc)})", path, line) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("expected a mapping of config keys at the top level", path)
    return data


def parse_dotted(items: list[str]) -> dict[str, Any]:
    """Turn `["a.b=1", "c=[1, 2]"]` into `{"a": {"b": 1}, "c": [1, 2]}` (values via safe YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise InputError(
                f"override '{item}' is not of the form key=value (e.g. train.epochs=10)"
            )
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise InputError(f"override '{item}' has an empty key")
        try:
            value = safe_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(
                    f"override '{item}' conflicts with an earlier override of '{part}'"
                )
        node[parts[-1]] = value
    return out


def _suggest(key: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(choices)}"


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check/convert `value` to the field type `annotation` (a resolved typing object)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except InputError as exc:
                errors.append(str(exc))
        raise InputError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is typing.Literal:
        if isinstance(value, bool) and value not in args:
            # YAML reads a bare off/no/false (on/yes/true) as a bool: `train.amp=off` means "off"
            spellings = ("on", "yes", "true") if value else ("off", "no", "false")
            value = next((a for a in args if isinstance(a, str) and a in spellings), value)
        if value not in args:
            raise InputError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise InputError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise InputError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
        item_type = args[0] if args else Any
        items = [_coerce(v, item_type, where) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise InputError(f"{where}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise InputError(f"{where}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise InputError(f"{where}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise InputError(f"{where}: expected a string, got {value!r}")
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a mapping, got {value!r}")
        return apply_overrides(annotation(), value, prefix=where + ".")
    return value


def apply_overrides(cfg: Any, overrides: dict[str, Any], prefix: str = "") -> Any:
    """Return a copy of dataclass `cfg` with `overrides` (nested dict) applied, type-checked.

    Raises `InputError` naming the dotted key for unknown keys (with a suggestion) or bad values.
    """
    if not dataclasses.is_dataclass(cfg):
        raise TypeError(f"apply_overrides needs a dataclass instance, got {type(cfg).__name__}")
    hints = typing.get_type_hints(type(cfg))
    fields = {f.name: f for f in dataclasses.fields(cfg) if f.init}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        where = f"{prefix}{key}"
        if key not in fields:
            raise InputError(f"unknown config key '{where}'" + _suggest(key, sorted(fields)))
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = apply_overrides(current, value, prefix=where + ".")
        else:
            changes[key] = _coerce(value, hints[key], where)
    return dataclasses.replace(cfg, **changes)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a dataclass config (tuples become lists: YAML/JSON friendly)."""

    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value

    return convert(cfg)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build dataclass `cls` from a (possibly partial) nested dict, e.g. from a checkpoint."""
    return apply_overrides(cls(), data)


def dump_yaml(cfg: Any) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
