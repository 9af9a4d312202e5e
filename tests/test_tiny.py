"""The tiny profile (kexue.tiny, `make quick`, the end-to-end test) only shrinks what exists."""

import copy

import yaml
from conftest import ROOT

from kexue import tiny


def _leaves(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip(".")


def test_every_key_the_profile_sets_is_a_default_key():
    defaults = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    shrunk = tiny.tiny_params(copy.deepcopy(defaults))
    # the mixture grid is a value (covariance type -> sizes), its keys a subset of the defaults'
    assert set(shrunk["baselines"]["generative"]["components"]) <= set(
        defaults["baselines"]["generative"]["components"])
    added = set(_leaves(shrunk)) - set(_leaves(defaults))
    assert added == set(), f"the tiny profile sets keys params.yaml does not have: {sorted(added)}"
    assert shrunk["sentiment"]["fit"]["epochs"] == 1 and shrunk != defaults


def test_a_typo_in_the_profile_would_be_caught():
    defaults = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    shrunk = tiny.tiny_params(copy.deepcopy(defaults), dropuot=0.1)
    assert set(_leaves(shrunk)) - set(_leaves(defaults)) == {"sentiment.dropuot"}


def test_the_copy_holds_the_pipeline_and_no_outputs(tmp_path):
    dest = tiny.copy_project(ROOT, tmp_path / "copy")
    assert {p.name for p in dest.iterdir()} == {*tiny.PIPELINE_FILES, "src", ".dvc"}
    assert not list(dest.rglob("__pycache__"))
    tiny.write_tiny_params(dest)
    assert yaml.safe_load((dest / "params.yaml").read_text(encoding="utf-8"))[
        "prepare_reviews"]["limit_per_label"] == 150


def test_a_non_empty_destination_is_refused(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert tiny.main([str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"
