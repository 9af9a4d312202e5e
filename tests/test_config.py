from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from kexue.config import ConfigError, load_section, parse
from kexue.families import sentiment
from kexue.stages.prepare_reviews import Params as PrepareParams
from kexue.train import FitConfig


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
    load_section("baselines.sentiment", sentiment.BaselineConfig, params)
