"""One configuration system: typed dataclasses hold defaults, YAML files hold overrides, the CLI
takes dotted `key=value` overrides.

    cfg = RunConfig()                                   # defaults
    cfg = apply_overrides(cfg, load_yaml("exp.yaml"))   # YAML holds only what differs
    cfg = apply_overrides(cfg, parse_dotted(["train.epochs=3", "model.width=0.25"]))

Unknown keys are rejected with a "did you mean" suggestion; values are parsed with safe YAML and
checked against the field's type, and against the field's valid range where its dataclass lists
one in a `VALID_RANGES` class attribute (`{"ema_decay": "[0, 1)", "epochs": ">= 1"}`, see
`mistd.errors.in_range`). A renamed key stays readable (old YAML files, the configs stored in
old checkpoints) where its dataclass lists it in a `RENAMED_KEYS` class attribute
(`{"old_name": "new_name"}`, see `renamed_keys`). Nothing is ever `eval`-ed; YAML text is bounded
in size and in alias expansion (an "alias bomb" of a few lines cannot expand into gigabytes).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
import warnings
from pathlib import Path
from typing import Any

import yaml

from mistd.errors import InputError, check_range, short

# Largest YAML text read, and most nodes it may reach through aliases (`*name`): an "alias bomb"
# of ten lines, each list repeating the previous one nine times, would expand to 9^9 values.
MAX_YAML_BYTES = 1_000_000
MAX_YAML_ALIAS_NODES = 10_000


class _Loader(yaml.SafeLoader):
    """Safe YAML with three fixes: `1e-4` is a number (YAML 1.2; PyYAML's 1.1 rules want
    `1.0e-4`), a key given twice in one mapping is an error (PyYAML silently keeps the last), and
    aliases may reach at most `MAX_YAML_ALIAS_NODES` nodes in all."""

    def compose_node(self, parent, index):  # noqa: ANN001, ANN201 (PyYAML's signature)
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if node is not None:
                self._alias_nodes = getattr(self, "_alias_nodes", 0) + self._size(node)
                if self._alias_nodes > MAX_YAML_ALIAS_NODES:
                    raise yaml.composer.ComposerError(
                        None,
                        None,
                        f"aliases (*name) expand to more than {MAX_YAML_ALIAS_NODES} values: "
                        "refused (an alias bomb?)",
                        event.start_mark,
                    )
        return super().compose_node(parent, index)

    def _size(self, node: yaml.Node) -> int:
        """Values in `node` once every alias in it is expanded (memoised per node)."""
        sizes = self.__dict__.setdefault("_sizes", {})
        if id(node) not in sizes:
            if isinstance(node, yaml.SequenceNode):
                sizes[id(node)] = 1 + sum(self._size(child) for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                sizes[id(node)] = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
            else:
                sizes[id(node)] = 1
        return sizes[id(node)]

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
    """`yaml.safe_load` with YAML 1.2 exponent numbers (`1e-4`), duplicate keys refused and
    alias expansion bounded; text longer than `MAX_YAML_BYTES` is refused."""
    if len(text) > MAX_YAML_BYTES:
        raise yaml.YAMLError(f"YAML text of {len(text)} characters (at most {MAX_YAML_BYTES})")
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (_Loader is a SafeLoader)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML override file (safe loader); an empty file is `{}`."""
    from mistd.io import read_text

    path = Path(path)
    try:
        text = read_text(path, "config file", limit=MAX_YAML_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read config file ({exc.strerror})", path) from None
    try:
        data = safe_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        problem = getattr(exc, "problem", None) or exc
        raise InputError(f"invalid YAML ({problem})", path, line) from None
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
                f"override {short(item)} is not of the form key=value (e.g. train.epochs=10)"
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
        raise InputError(errors[0] if errors else f"{where}: invalid value {short(value)}")
    if origin is typing.Literal:
        if isinstance(value, bool) and value not in args:
            # YAML reads a bare off/no/false (on/yes/true) as a bool: `train.amp=off` means "off"
            spellings = ("on", "yes", "true") if value else ("off", "no", "false")
            value = next((a for a in args if isinstance(a, str) and a in spellings), value)
        if value not in args:
            raise InputError(f"{where}: expected one of {list(args)}, got {short(value)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise InputError(f"{where}: expected a list, got {short(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise InputError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
        item_type = args[0] if args else Any
        items = [_coerce(v, item_type, where) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a mapping, got {short(value)}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise InputError(f"{where}: expected true/false, got {short(value)}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise InputError(f"{where}: expected an integer, got {short(value)}")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise InputError(f"{where}: expected a finite number, got {short(value)}")
            return float(value)
        raise InputError(f"{where}: expected a number, got {short(value)}")
    if annotation is str:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise InputError(f"{where}: expected a string, got {short(value)}")
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a mapping, got {short(value)}")
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
    overrides = renamed_keys(cfg, overrides, prefix)
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        where = f"{prefix}{key}"
        if key not in fields:
            raise InputError(f"unknown config key '{where}'" + _suggest(key, sorted(fields)))
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise InputError(
                    f"{where}: expected a mapping of keys (e.g. {where}.<key>=...), got "
                    f"{short(value)}"
                )
            changes[key] = apply_overrides(current, value, prefix=where + ".")
        else:
            changes[key] = _coerce(value, hints[key], where)
            check_field_range(cfg, key, changes[key], where)
    return dataclasses.replace(cfg, **changes)


class RenamedKeyWarning(FutureWarning):
    """A config gives a key by its old name (shown by default: config files are user input)."""


def renamed_keys(cfg: Any, overrides: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`overrides` with the old names of `type(cfg).RENAMED_KEYS` (`{old: new}`) read as the new.

    An old key whose value is the new key's default changes nothing and is dropped silently (the
    configs stored in old checkpoints carry every key); any other value is used under the new
    name with a `RenamedKeyWarning` naming both, unless the same mapping also gives the new key a
    value of its own, which wins (a warning says the old one is ignored)."""
    renamed = getattr(type(cfg), "RENAMED_KEYS", {})
    if not renamed or not renamed.keys() & overrides.keys():
        return overrides
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    out = dict(overrides)
    for old, new in renamed.items():
        if old not in out:
            continue
        value = out.pop(old)
        field = fields[new]
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        if new in out and out[new] != default:
            if value not in (default, out[new]):
                warnings.warn(
                    f"{prefix}{old}={short(value)} ignored: it is the old name of {prefix}{new}, "
                    f"which is also given ({short(out[new])})",
                    RenamedKeyWarning,
                    stacklevel=3,
                )
            continue
        out[new] = value
        if value != default:
            warnings.warn(
                f"{prefix}{old} is renamed {prefix}{new}: read as {prefix}{new}={short(value)} "
                f"(write {prefix}{new})",
                RenamedKeyWarning,
                stacklevel=3,
            )
    return out


def check_field_range(cfg: Any, key: str, value: Any, where: str | None = None) -> None:
    """Raise `InputError` if `value` lies outside the range `type(cfg).VALID_RANGES` gives `key`
    (no range listed: any value of the right type)."""
    interval = getattr(type(cfg), "VALID_RANGES", {}).get(key)
    if interval is None or value is None:
        return
    values = value if isinstance(value, list | tuple) else [value]
    for item in values:
        check_range(where or key, item, interval)


def check_ranges(cfg: Any, prefix: str = "") -> None:
    """Check every field of dataclass `cfg` (and nested dataclasses) against `VALID_RANGES`."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_ranges(value, prefix=f"{prefix}{f.name}.")
        else:
            check_field_range(cfg, f.name, value, f"{prefix}{f.name}")


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


# The coarsest feature stride of the models: input sides must be multiples of it.
MAX_STRIDE = 32
# Largest input side accepted (a 8192x8192 clip of 5 frames is already ~4 GB of features).
MAX_INPUT_SIDE = 8192


def check_input_size(size: Any, name: str = "input_size") -> tuple[int, int]:
    """`(h, w)` if `size` (an int or a pair) is a valid model input size: each side a multiple of
    `MAX_STRIDE` from 32 to `MAX_INPUT_SIDE`; else `InputError` naming `name`."""
    pair = (size, size) if isinstance(size, int) and not isinstance(size, bool) else size
    try:
        h, w = (int(v) for v in pair)
        ok = all(int(v) == v for v in pair)
    except (TypeError, ValueError):
        ok = False
    if not ok or not all(MAX_STRIDE <= v <= MAX_INPUT_SIDE and v % MAX_STRIDE == 0 for v in (h, w)):
        raise InputError(
            f"{name} must be (height, width), positive multiples of {MAX_STRIDE} up to "
            f"{MAX_INPUT_SIDE}, got {short(size)}"
        )
    return h, w
