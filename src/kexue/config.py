"""Load and validate the sections of ``params.yaml``.

Each stage declares its section as a dataclass; :func:`load_section` checks the YAML against it
and stops with a :class:`ConfigError` that names the key, the bad value and what is expected:
an unknown key (with the closest known one), a missing key, a wrong type or a value out of range.

Range and help text go in the field's metadata::

    @dataclass(frozen=True)
    class Section:
        epochs: int = field(metadata={"min": 1})
        encoder: Literal["lstm", "gru"]
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")
PARAMS_FILE = "params.yaml"


class ConfigError(ValueError):
    """A params.yaml value is missing, unknown or of the wrong type or range."""


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: file not found (run the stage from the project root)")
    with open(path, encoding="utf-8") as handle:
        try:
            data = yaml.safe_load(handle) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def require_network(network: T | None, section: str) -> T:
    """The network section a peer retrains (read by the stage from ``--network``), or a clear
    error when the caller gave none."""
    if network is None:
        raise ConfigError(f"this peer retrains the '{section}' network: pass its params section "
                          f"(stage baselines: --network {section})")
    return network


def load_section(section: str, schema: type[T], path: str | Path = PARAMS_FILE) -> T:
    """Read ``section`` of the params file and return it as a validated ``schema`` instance.

    Raises the audit event ``kexue.params`` with the section name, so a test can check that a stage
    reads only the params sections it declares in dvc.yaml."""
    sys.audit("kexue.params", section)
    node: Any = load_params(path)
    parts = section.split(".")  # "baselines.sentiment" names a nested section
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(
                f"{path}: missing section '{'.'.join(parts[: depth + 1])}' (expected keys: "
                f"{', '.join(f.name for f in dataclasses.fields(schema))})"
            )
        node = node[part]
    return parse(schema, node, section, source=str(path))


def parse(schema: type[T], data: Any, where: str, source: str = PARAMS_FILE) -> T:
    """Build a ``schema`` dataclass from ``data``; ``where`` is the dotted key used in errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where} = {data!r}: expected a mapping with keys "
                          f"{', '.join(f.name for f in dataclasses.fields(schema))}")
    hints = get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"{source}: unknown key '{where}.{key}'.{hint} "
                f"Known keys of '{where}': {', '.join(fields)}."
            )
    values = {}
    for name, field in fields.items():
        key = f"{where}.{name}"
        if name not in data:
            raise ConfigError(
                f"{source}: missing key '{key}' (expected {_describe(hints[name])}). "
                f"Add it to the '{where}' section."
            )
        values[name] = _convert(hints[name], data[name], key, source)
        _check_range(field, values[name], key, source)
    return schema(**values)


def _fail(source: str, key: str, value: Any, expected: str) -> typing.NoReturn:
    raise ConfigError(
        f"{source}: {key} = {value!r} is not valid: expected {expected}. "
        f"Fix it in {source} or run `dvc exp run -S {key}=<value>`."
    )


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + " | ".join(str(a) for a in get_args(tp))
    if origin in (list, tuple):
        return f"a list of {_describe(get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping of {_describe(get_args(tp)[0])} to {_describe(get_args(tp)[1])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in get_args(tp))
    if dataclasses.is_dataclass(tp):
        return "a mapping with keys " + ", ".join(f.name for f in dataclasses.fields(tp))
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, key: str, source: str) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        for option in get_args(tp):
            if option is type(None):
                continue
            try:
                return _convert(option, value, key, source)
            except ConfigError:
                continue
        _fail(source, key, value, _describe(tp))
    if dataclasses.is_dataclass(tp):
        return parse(tp, value, key, source)
    if tp is bool:
        if not isinstance(value, bool):
            _fail(source, key, value, "true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(source, key, value, "an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            _fail(source, key, value, "a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            _fail(source, key, value, "a string")
        return value
    if origin is Literal:
        if value not in get_args(tp):
            _fail(source, key, value, _describe(tp))
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            _fail(source, key, value, _describe(tp))
        (item,) = get_args(tp)[:1]
        return [_convert(item, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            _fail(source, key, value, _describe(tp))
        ktp, vtp = get_args(tp)
        return {_convert(ktp, k, f"{key}.{k}", source): _convert(vtp, v, f"{key}.{k}", source)
                for k, v in value.items()}
    if tp is Any:
        return value
    raise TypeError(f"config: unsupported type {tp!r} for {key}")


def _check_range(field: dataclasses.Field, value: Any, key: str, source: str) -> None:
    low, high = field.metadata.get("min"), field.metadata.get("max")
    if value is None or not isinstance(value, int | float) or isinstance(value, bool):
        return
    if low is not None and value < low:
        _fail(source, key, value, f"a value >= {low}")
    if high is not None and value > high:
        _fail(source, key, value, f"a value <= {high}")
