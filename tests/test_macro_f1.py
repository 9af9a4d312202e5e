"""Macro F1 in the paired bootstrap: per-label items, the mean_f1 metric, and every peer on both."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from kexue.comparison import METRICS, f1_metric, paired_bootstrap
from kexue.every_peer import every_peer_block
from kexue.macro_f1 import mean_f1_metric, per_label_counts
from kexue.metrics import line_counts, multilabel_scores


def _labels(seed: int, lines: int = 300, labels: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gold = rng.random((lines, labels)) < [0.5, 0.3, 0.1, 0.02, 0.0]  # the last label never gold
    pred = gold ^ (rng.random((lines, labels)) < 0.15)
    pred[:, 4] = False  # ... nor predicted: its F1 counts 0, as sklearn's zero_division=0
    return gold, pred


def test_summed_per_label_items_give_sklearns_macro_f1():
    gold, pred = _labels(0)
    counts = np.asarray(per_label_counts(gold, pred))
    assert counts.shape == (300, 15)
    expected = f1_score(gold, pred, average="macro", zero_division=0)
    assert mean_f1_metric(counts.sum(0), len(counts)) == pytest.approx(expected, abs=1e-12)
    # on any subset of lines too (what a bootstrap resample sums)
    subset = np.arange(0, 300, 7)
    assert mean_f1_metric(counts[subset].sum(0), len(subset)) == pytest.approx(
        f1_score(gold[subset], pred[subset], average="macro", zero_division=0), abs=1e-12)


def test_one_triple_is_plain_f1_so_one_kind_serves_micro_and_macro():
    gold, pred = _labels(1)
    micro = np.asarray(line_counts(gold, pred)).sum(0)
    assert METRICS["mean_f1"] is mean_f1_metric  # registered on import
    assert mean_f1_metric(micro, 300) == pytest.approx(f1_metric(micro, 300))
    assert mean_f1_metric(micro, 300) == pytest.approx(f1_score(gold, pred, average="micro"))


def test_items_are_checked_against_the_reported_macro_f1():
    gold, pred = _labels(2)
    macro = multilabel_scores(gold, pred, list("abcde"))["macro_f1"]
    per_label_counts(gold, pred, macro)
    with pytest.raises(AssertionError, match="macro F1"):
        per_label_counts(gold, pred, round(macro + 0.01, 4))
    with pytest.raises(ValueError, match="multiple of 3"):
        mean_f1_metric(np.ones(4), 1)
    with pytest.raises(ValueError, match=r"\(lines, labels\)"):
        per_label_counts(gold, pred[:, :3])


def test_every_peer_compares_macro_f1_on_the_per_label_items():
    gold, ours = _labels(3)
    _, theirs = _labels(4)
    theirs = theirs & (np.random.default_rng(5).random(theirs.shape) < 0.7)  # a weaker peer

    def items(pred):
        return {split: line_counts(gold, pred) for split in ("valid", "test")} | {
            "per_label": {split: per_label_counts(gold, pred) for split in ("valid", "test")}}

    mine = items(ours) | {"kind": "mean_f1", "every_peer": {
        "micro_f1": [0, 1, 2], "macro_f1": {"items": "per_label", "columns": list(range(15))}}}
    block = every_peer_block(mine, {"peer": items(theirs)}, resamples=200)
    for metric, average in (("micro_f1", "micro"), ("macro_f1", "macro")):
        result = block[metric]["peer"]["test"]
        a = f1_score(gold, ours, average=average, zero_division=0)
        b = f1_score(gold, theirs, average=average, zero_division=0)
        assert result["kexue"] == round(a, 4) and result["peer"] == round(b, 4)
        assert result["ci95"][0] <= result["delta"] <= result["ci95"][1]
    # the same interval as the bootstrap called directly on the per-label columns
    direct = paired_bootstrap(per_label_counts(gold, ours), per_label_counts(gold, theirs),
                              mean_f1_metric, 200)
    assert block["macro_f1"]["peer"]["valid"] == direct
