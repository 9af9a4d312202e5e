"""The closed track: no external word list, CRFsuite and maximum matching as peers, per-line word
counts for the paired comparison."""

import pytest
from conftest import tiny_tagger_config

from kexue.comparison import attach
from kexue.config import ConfigError, parse
from kexue.families import segment_closed
from kexue.io import write_jsonl
from kexue.peers import segment_closed as segment_closed_peers

LINES = [["我们", "在", "北京", "工作", "。"], ["张", "三", "去", "上海", "。"],
         ["新华社", "记者", "报道", "。"], ["我们", "去", "北京", "。"]]


@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    root = tmp_path_factory.mktemp("closed")
    for split, repeat in (("train", 12), ("valid", 2), ("test", 2)):
        write_jsonl(root / f"{split}.jsonl", [{"line": i, "text": "".join(w), "words": w}
                                               for i, w in enumerate(LINES * repeat)])
    return root


def test_an_external_dictionary_is_refused(lines, tmp_path):
    cfg = parse(segment_closed.Config, {**tiny_tagger_config(16, 1, 1), "dictionary": "jieba"},
                "segment_closed")
    with pytest.raises(ConfigError, match="segment_closed.dictionary"):
        segment_closed.train(cfg, lines, tmp_path / "m", None)


def test_model_and_peers_give_aligned_counts_for_the_comparison(lines, tmp_path):
    cfg = parse(segment_closed.Config, tiny_tagger_config(16, 2, 25), "segment_closed")
    segment_closed.train(cfg, lines, tmp_path / "m", None)
    metrics, _ = segment_closed.evaluate(tmp_path / "m", lines)
    peers = segment_closed_peers.baselines(segment_closed_peers.BaselineConfig(
        crfsuite_c1=[0.0, 1.0], crfsuite_c2=[0.01], crfsuite_max_iterations=50,
        max_match_longest=4), lines)
    assert set(peers) == {"crfsuite", "max_match"} and metrics["track"] == "closed"
    assert peers["crfsuite"]["chosen"]["c1"] in (0.0, 1.0)
    assert len(peers["crfsuite"]["chosen"]["candidates"]) == 2
    assert peers["crfsuite"]["test"]["f1"] == 1.0  # the toy lines are learnt exactly
    for system in (metrics, *peers.values()):
        assert len(system["items"]["test"]) == 8 and len(system["items"]["valid"]) == 8
    attach(metrics, peers, resamples=50)
    block = metrics["comparison"]
    assert block["metric"] == "f1" and block["test"]["kexue"] == metrics["test"]["f1"]
    assert block["test"]["peer"] == peers[block["peer"]]["test"]["f1"]


def test_the_peers_module_imports_no_keras():
    """`baselines@segment_closed` runs CRFsuite and maximum matching: importing its peers module
    (which the stage does, and nothing else of the family) loads neither Keras nor TensorFlow."""
    import subprocess
    import sys

    code = ("import sys\nimport kexue.peers.segment_closed\n"
            "print('keras' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
