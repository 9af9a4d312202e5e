"""Every family the pipeline trains, evaluates or compares provides the family protocol
(kexue.families.protocol), read from the stage commands in dvc.yaml."""

import dataclasses
import importlib
import shlex
import types
from pathlib import Path

from stage_deps import dvc_stages

from kexue.families import protocol

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[list[str]]:
    return [shlex.split(" ".join(stage.cmd.split())) for stage in dvc_stages(ROOT)]


def _named(module: str) -> list[tuple[str, list[str]]]:
    """(family, the rest of the command) of every stage running ``python -m <module> <family>``."""
    return [(argv[3], argv[4:]) for argv in _commands()
            if argv[:3] == ["python", "-m", module]]


def test_the_pipeline_uses_every_kind_of_stage():
    trained = {name for name, _ in _named("kexue.stages.train")}
    assert {"sentiment", "segment", "ner", "image", "vae", "nice", "gan", "word2vec", "glove",
            "ode", "center"} <= trained
    assert {name for name, _ in _named("kexue.stages.baselines")} >= {"sentiment", "image", "ode"}


def test_every_trained_family_provides_the_protocol():
    generic = {name for name, _ in _named("kexue.stages.evaluate")}
    found = []
    for name, _ in _named("kexue.stages.train"):
        family = importlib.import_module(f"kexue.families.{name}")
        found += protocol.problems(name, family, generic_evaluate=name in generic)
    assert found == []


def test_every_peers_module_provides_the_protocol():
    found = []
    for name, rest in _named("kexue.stages.baselines"):
        peers = importlib.import_module(f"kexue.peers.{name}")
        found += protocol.peer_problems(name, peers, network="--network" in rest)
    assert found == []


def test_a_module_short_of_the_protocol_is_named_with_what_it_lacks():
    @dataclasses.dataclass  # not frozen
    class Config:
        x: int = 0

    def train(cfg, data_dir, model_dir, live_dir, resume_root=None, vectors=None):
        return {}

    def evaluate(model_dir, data_dir, classifier_dir):
        return {}, []

    family = types.SimpleNamespace(Config=Config, train=train, evaluate=evaluate)
    found = protocol.problems("toy", family)
    assert any("Config" in p and "frozen" in p for p in found)
    assert any("toy.evaluate" in p and "classifier_dir" in p for p in found)
    assert not any("toy.train" in p for p in found)  # its extra input has a default
    assert protocol.problems("toy", family, generic_evaluate=False) == [found[0]]

    def late_train(cfg, data_dir, model_dir, live_dir, resume_root):  # no default
        return {}

    family.train = late_train
    assert any("resume_root" in p for p in protocol.problems("toy", family))
    peers = types.SimpleNamespace(BaselineConfig=dataclasses.dataclass(frozen=True)(type("B", (), {})),
                                  baselines=lambda cfg, data_dir: {})
    assert protocol.peer_problems("toy", peers) == []
    assert len(protocol.peer_problems("toy", peers, network=True)) == 2
