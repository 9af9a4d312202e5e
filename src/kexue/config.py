"""Load and validate the sections of ``params.yaml``.

Each stage declares its section as a dataclass; :func:`load_section` checks the YAML against it
and stops with a :class:`ConfigError` that names the key, the bad value and what is expected:
an unknown key (with the closest known one), a missing key, a wrong type, a value out of range,
a non-finite number (``.inf``, ``-.inf``, ``.nan``) or a key written twice in the file.

Range and help text go in the field's metadata::

    @dataclass(frozen=True)
    class Section:
        epochs: int = field(metadata={"min": 1})
        encoder: Literal["lstm", "gru"]
        max_weight: float = field(metadata={"min": 1.0, "allow_nonfinite": True})  # .inf = off

A float field (also inside a list or mapping) takes only finite numbers unless its metadata sets
``allow_nonfinite``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
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


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, first: int, second: int):
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with the same key twice (plain PyYAML keeps the
    last one silently). The check walks the composed node tree before it is constructed, so the
    error knows the full dotted key and both line numbers. Keys merged in with ``<<`` may be
    overridden, as YAML allows."""

    def construct_document(self, node):
        self._check_unique(node, "", set())
        return super().construct_document(node)

    def _check_unique(self, node, where: str, seen: set[int]) -> None:
        if id(node) in seen:  # an alias of a node checked already
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            lines: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                name = f"{where}.{key}" if where else str(key)
                line = key_node.start_mark.line + 1
                try:
                    if key in lines:
                        raise _DuplicateKey(name, lines[key], line)
                    lines[key] = line
                except TypeError:  # an unhashable (complex) key: leave it to the constructor
                    pass
                self._check_unique(value_node, name, seen)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._check_unique(item, f"{where}[{index}]", seen)


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: file not found (run the stage from the project root)")
    if not path.is_file():
        raise ConfigError(f"{path}: not a file (expected the params YAML file)")
    with open(path, encoding="utf-8") as handle:
        try:
            data = yaml.load(handle, Loader=UniqueKeyLoader) or {}
        except _DuplicateKey as err:
            where = (f"twice on line {err.first}" if err.first == err.second
                     else f"twice, at lines {err.first} and {err.second}")
            raise ConfigError(
                f"{path}: key '{err.key}' appears {where} (YAML would keep only the second): "
                f"delete one of them"
            ) from None
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path}: not valid UTF-8 at byte {err.start}: save the file as "
                              f"UTF-8") from None
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
        values[name] = _convert(hints[name], data[name], key, source,
                                bool(field.metadata.get("allow_nonfinite", False)))
        _check_range(field, values[name], key, source)
    return schema(**values)


def _show(value: Any) -> str:
    """``value`` as the error shows it: YAML's spelling for the non-finite floats."""
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _fail(source: str, key: str, value: Any, expected: str) -> typing.NoReturn:
    raise ConfigError(
        f"{source}: {key} = {_show(value)} is not valid: expected {expected}. "
        f"Fix it in {source} or run `dvc exp run -S {key}=<value>`."
    )


_FINITE = "a finite number (.inf, -.inf and .nan are not allowed here)"


def _reject_nonfinite(value: Any, key: str, source: str) -> None:
    """Fail on a non-finite float anywhere in ``value`` (for fields typed ``Any``)."""
    if isinstance(value, float) and not math.isfinite(value):
        _fail(source, key, value, _FINITE)
    if isinstance(value, dict):
        for k, v in value.items():
            _reject_nonfinite(v, f"{key}.{k}", source)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _reject_nonfinite(v, f"{key}[{i}]", source)


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


def _convert(tp: Any, value: Any, key: str, source: str, allow_nonfinite: bool = False) -> Any:
    """``value`` checked against (and converted to) the type ``tp``; a float must be finite
    unless ``allow_nonfinite`` (the field's metadata, applied to every float inside it)."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        for option in get_args(tp):
            if option is type(None):
                continue
            try:
                return _convert(option, value, key, source, allow_nonfinite)
            except ConfigError:
                continue
        if isinstance(value, float) and not math.isfinite(value) and not allow_nonfinite:
            _fail(source, key, value, _FINITE)
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
        try:
            number = float(value)
        except OverflowError:  # an integer too large for a float
            _fail(source, key, value, _FINITE)
        if not math.isfinite(number) and not allow_nonfinite:
            _fail(source, key, value, _FINITE)
        return number
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
        return [_convert(item, v, f"{key}[{i}]", source, allow_nonfinite)
                for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            _fail(source, key, value, _describe(tp))
        ktp, vtp = get_args(tp)
        return {_convert(ktp, k, f"{key}.{k}", source, allow_nonfinite):
                _convert(vtp, v, f"{key}.{k}", source, allow_nonfinite)
                for k, v in value.items()}
    if tp is Any:
        if not allow_nonfinite:
            _reject_nonfinite(value, key, source)
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
