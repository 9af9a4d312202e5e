import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from kexue.config import ConfigError, load_params, load_section, parse
from kexue.families import sentiment
from kexue.peers import sentiment as sentiment_peers
from kexue.stages.prepare_reviews import Params as PrepareParams
from kexue.train import FitConfig, OptimizerConfig


@dataclass(frozen=True)
class Inner:
    rate: float = field(metadata={"min": 0.0})
    name: Literal["adam", "sgd"]


@dataclass(frozen=True)
class Outer:
    epochs: int = field(metadata={"min": 1})
    flag: bool
    sizes: list[int]
    inner: Inner


GOOD = {"epochs": 3, "flag": True, "sizes": [1, 2], "inner": {"rate": 1, "name": "sgd"}}


def test_parse_good_values_and_int_to_float():
    cfg = parse(Outer, GOOD, "s")
    assert cfg.epochs == 3 and cfg.inner.rate == 1.0 and isinstance(cfg.inner.rate, float)
    assert cfg.sizes == [1, 2] and cfg.inner.name == "sgd"


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        ({**GOOD, "epoch": 3}, ["unknown key 's.epoch'", "Did you mean 'epochs'"]),
        ({k: v for k, v in GOOD.items() if k != "flag"}, ["missing key 's.flag'", "true or false"]),
        ({**GOOD, "epochs": "ten"}, ["s.epochs = 'ten'", "expected an integer"]),
        ({**GOOD, "epochs": 2.5}, ["s.epochs = 2.5", "expected an integer"]),
        ({**GOOD, "epochs": True}, ["s.epochs = True", "expected an integer"]),
        ({**GOOD, "epochs": 0}, ["s.epochs = 0", "a value >= 1"]),
        ({**GOOD, "flag": "yes"}, ["s.flag = 'yes'", "true or false"]),
        ({**GOOD, "sizes": [1, "x"]}, ["s.sizes[1] = 'x'", "an integer"]),
        ({**GOOD, "inner": {"rate": 1, "name": "adagrad"}}, ["s.inner.name = 'adagrad'", "one of adam | sgd"]),
        ({**GOOD, "inner": {"rate": -1, "name": "adam"}}, ["s.inner.rate = -1", ">= 0.0"]),
        ({**GOOD, "inner": {"name": "adam"}}, ["missing key 's.inner.rate'"]),
        ({**GOOD, "inner": 5}, ["s.inner = 5", "expected a mapping"]),
    ],
)
def test_parse_errors_name_key_value_and_expectation(data, fragments):
    with pytest.raises(ConfigError) as info:
        parse(Outer, data, "s")
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message


def test_load_section_nested_and_missing(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("a:\n  b:\n    epochs: 1\n    flag: false\n    sizes: []\n    inner: {rate: 0.5, name: adam}\n")
    assert load_section("a.b", Outer, path).inner.rate == 0.5
    with pytest.raises(ConfigError, match="missing section 'a.c'"):
        load_section("a.c", Outer, path)


def test_error_tells_how_to_fix(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("s:\n  epochs: x\n  flag: true\n  sizes: []\n  inner: {rate: 1, name: adam}\n")
    with pytest.raises(ConfigError, match=r"dvc exp run -S s.epochs=<value>"):
        load_section("s", Outer, path)


def test_project_params_validate():
    """The committed params.yaml passes every schema that reads it."""
    params = Path(__file__).resolve().parents[1] / "params.yaml"
    assert load_section("prepare_reviews", PrepareParams, params).test_fraction == 0.2
    cfg = load_section("sentiment", sentiment.Config, params)
    assert isinstance(cfg.fit, FitConfig)
    load_section("baselines.sentiment", sentiment_peers.BaselineConfig, params)


@dataclass(frozen=True)
class Floats:
    rate: float = field(metadata={"min": 0.0})
    fraction: float = field(metadata={"min": 0.0, "max": 1.0})
    maybe: float | None
    grid: list[float]
    knots: dict[int, float]
    inner: Inner
    cap: float = field(metadata={"min": 1.0, "allow_nonfinite": True})  # .inf = no cap


FLOATS = {"rate": 0.1, "fraction": 0.5, "maybe": None, "grid": [0.1, 1.0], "knots": {0: 1.0},
          "inner": {"rate": 1.0, "name": "adam"}, "cap": 2.0}


@pytest.mark.parametrize(
    ("change", "key", "shown"),
    [
        ({"rate": float("inf")}, "f.rate", ".inf"),  # no max: range alone lets it through
        ({"rate": float("nan")}, "f.rate", ".nan"),  # NaN compares false with every bound
        ({"fraction": float("nan")}, "f.fraction", ".nan"),
        ({"fraction": float("-inf")}, "f.fraction", "-.inf"),
        ({"maybe": float("nan")}, "f.maybe", ".nan"),  # inside a Union with None
        ({"grid": [0.1, float("inf")]}, "f.grid[1]", ".inf"),
        ({"knots": {0: 1.0, 100: float("nan")}}, "f.knots.100", ".nan"),
        ({"inner": {"rate": float("inf"), "name": "adam"}}, "f.inner.rate", ".inf"),
        ({"rate": 10**400}, "f.rate", "1000"),  # an int too large for a float
    ],
)
def test_nonfinite_floats_are_rejected_naming_key_value_and_fix(change, key, shown):
    with pytest.raises(ConfigError) as info:
        parse(Floats, {**FLOATS, **change}, "f")
    message = str(info.value)
    assert f"{key} = {shown}" in message, message
    assert "expected a finite number (.inf, -.inf and .nan are not allowed here)" in message
    assert f"dvc exp run -S {key}=<value>" in message
    assert "\n" not in message


def test_a_field_may_allow_nonfinite_numbers():
    cfg = parse(Floats, {**FLOATS, "cap": float("inf")}, "f")
    assert cfg.cap == float("inf")


@pytest.mark.parametrize("spelling", [".inf", "-.inf", ".nan", ".NaN", "+.INF", "1.0e+400"])
def test_nonfinite_yaml_spellings_are_rejected_in_a_file(tmp_path, spelling):
    path = tmp_path / "params.yaml"
    path.write_text("s:\n  epochs: 1\n  flag: true\n  sizes: []\n"
                    f"  inner: {{rate: {spelling}, name: adam}}\n")
    with pytest.raises(ConfigError, match=r"s\.inner\.rate = -?\.(inf|nan) is not valid: "
                                          r"expected a finite number"):
        load_section("s", Outer, path)


def test_nonfinite_in_an_int_field_names_key_and_type():
    with pytest.raises(ConfigError, match=r"s\.epochs = \.nan is not valid: expected an integer"):
        parse(Outer, {**GOOD, "epochs": float("nan")}, "s")


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("s:\n  epochs: 1\n  flag: true\n  epochs: 2\n", "s.epochs", (2, 4)),
        ("s:\n  epochs: 1\nt: {}\ns: {}\n", "s", (1, 4)),  # a whole section twice
        ("s:\n  inner: {rate: 1, name: adam, rate: 2}\n", "s.inner.rate", (2, 2)),  # flow style
        ("s:\n  runs:\n    - a: 1\n      a: 2\n", "s.runs[0].a", (3, 4)),  # inside a list
        ("s:\n  knots:\n    0: 1.0\n    0: 2.0\n", "s.knots.0", (3, 4)),  # int keys
    ],
)
def test_duplicate_keys_name_the_key_and_both_lines(tmp_path, text, key, lines):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    message = str(info.value)
    where = (f"twice on line {lines[0]}" if lines[0] == lines[1]
             else f"twice, at lines {lines[0]} and {lines[1]}")
    assert f"key '{key}' appears {where}" in message, message
    assert "delete one of them" in message


def test_same_key_in_different_mappings_and_merge_overrides_are_fine(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("a: {seed: 1}\nb: {seed: 2}\nbase: &base {x: 1, y: 2}\n"
                    "c:\n  <<: *base\n  x: 3\n")
    assert load_params(path)["c"] == {"x": 3, "y": 2}


def test_params_file_that_is_a_directory_or_not_utf8(tmp_path):
    with pytest.raises(ConfigError, match="not a file"):
        load_params(tmp_path)
    path = tmp_path / "params.yaml"
    path.write_bytes(b"s:\n  name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_params(path)


def _walk_floats(node, where=""):
    if isinstance(node, float):
        yield where, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _walk_floats(v, f"{where}.{k}" if where else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk_floats(v, f"{where}[{i}]")


def test_every_section_of_the_project_params_validates():
    """The committed params.yaml has no duplicate key nor a non-finite number, and every section
    (and every baselines subsection) passes the schema of the code that reads it."""
    params_file = Path(__file__).resolve().parents[1] / "params.yaml"
    params = load_params(params_file)
    assert [k for k, v in _walk_floats(params) if v != v or v in (float("inf"), float("-inf"))] == []

    def schema(module: str, name: str):
        return getattr(importlib.import_module(module), name)

    stages = {name: ("kexue.stages." + name, "Params") for name in (
        "prepare_reviews", "prepare_people_daily", "prepare_articles", "prepare_cloze", "split",
        "compare_validation", "downstream_sentiment", "tokenize")}
    others = {"augment": ("kexue.text.augment", "AugmentConfig"),
              "saliency": ("kexue.text.saliency", "Config"),
              "finetune": ("kexue.families.finetune", "FinetuneConfig")}
    checked = []
    for section in params:
        if section == "baselines":
            continue
        if section == "optimizer_defaults":  # merged into each optimizer, which adds the mappings
            parse(OptimizerConfig, {**params[section], "schedule": {}, "lr_multipliers": {}}, section)
            checked.append(section)
            continue
        module, name = stages.get(section) or others.get(section) or (f"kexue.families.{section}",
                                                                      "Config")
        load_section(section, schema(module, name), params_file)
        checked.append(section)
    for family in params["baselines"]:
        load_section(f"baselines.{family}", schema(f"kexue.peers.{family}", "BaselineConfig"),
                     params_file)
        checked.append(f"baselines.{family}")
    assert len(checked) == len(params) - 1 + len(params["baselines"])



def _differences(a, b, where=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a.keys() | b.keys():
            yield from _differences(a.get(key), b.get(key), f"{where}.{key}" if where else str(key))
    elif a != b:
        yield where


def test_a_sweep_of_one_sections_optimizer_changes_that_section_only(tmp_path):
    """The optimizer defaults are written once and merged (`<<: *optimizer`) into every section;
    `dvc exp run -S` rewrites params.yaml through DVC's own override code, which must change the
    swept keys and leave the shared defaults, and so every other section, as they were."""
    from dvc.utils.hydra import apply_overrides

    params_file = tmp_path / "params.yaml"
    params_file.write_text((Path(__file__).resolve().parents[1] / "params.yaml").read_text(
        encoding="utf-8"), encoding="utf-8")
    before = load_params(params_file)
    assert before["segment"]["fit"]["optimizer"]["learning_rate"] == before["ner"]["fit"][
        "optimizer"]["learning_rate"] == before["optimizer_defaults"]["learning_rate"]
    apply_overrides(params_file, ["segment.fit.optimizer.learning_rate=0.01",
                                  "++ner.fit.optimizer.lr_multipliers={crf: 10}"])
    after = load_params(params_file)
    assert set(_differences(before, after)) == {"segment.fit.optimizer.learning_rate",
                                                "ner.fit.optimizer.lr_multipliers.crf"}
    assert after["segment"]["fit"]["optimizer"]["learning_rate"] == 0.01
