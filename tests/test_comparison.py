"""The paired bootstrap against cases whose answer is known."""

import numpy as np
import pytest

from kexue.comparison import attach, comparison_block, f1_metric, paired_bootstrap


def test_accuracy_difference_and_its_interval_match_the_binomial_answer():
    n = 2000
    ours = np.ones(n)  # always right
    theirs = np.arange(n) % 2  # right on half the items
    got = paired_bootstrap(ours, theirs, resamples=2000, seed=1)
    assert (got["kexue"], got["peer"], got["delta"], got["n"]) == (1.0, 0.5, 0.5, n)
    # the per-item differences are 0 or 1 with p = 1/2: the mean's standard error is 0.5 / sqrt(n)
    half_width = 1.96 * 0.5 / np.sqrt(n)
    assert got["ci95"][0] == pytest.approx(0.5 - half_width, abs=0.004)
    assert got["ci95"][1] == pytest.approx(0.5 + half_width, abs=0.004)


def test_identical_systems_differ_by_exactly_zero():
    stats = np.random.default_rng(0).random(300)
    assert paired_bootstrap(stats, stats)["ci95"] == [0.0, 0.0]


def test_pairing_removes_the_variance_the_items_share():
    """A system 0.01 better on every item: unpaired intervals would overlap, the paired one is
    exactly [0.01, 0.01]."""
    values = np.random.default_rng(0).random(500)
    got = paired_bootstrap(values + 0.01, values)
    assert got["ci95"] == [0.01, 0.01] and got["delta"] == 0.01


def test_f1_is_recomputed_from_the_summed_counts_not_averaged_per_item():
    # item 1: 1 of 1 right (F1 1.0); item 2: 0 of 9 predicted right, 9 gold (F1 0.0)
    ours = np.array([[1, 1, 1], [0, 9, 9]])
    theirs = np.array([[0, 1, 1], [9, 9, 9]])
    got = paired_bootstrap(ours, theirs, f1_metric, resamples=200)
    assert got["kexue"] == pytest.approx(2 * 1 / 20, abs=1e-4)  # not the per-item mean 0.5
    assert got["peer"] == pytest.approx(2 * 9 / 20, abs=1e-4)
    assert float(f1_metric(np.array([0, 0, 0]), 1)) == 0.0  # nothing predicted, nothing expected


def test_the_peer_is_chosen_on_valid_even_when_another_wins_on_test():
    rng = np.random.default_rng(0)
    ours = {"valid": rng.random(100), "test": rng.random(100)}
    peers = {"a": {"valid": np.full(100, 0.9), "test": np.full(100, 0.1)},
             "b": {"valid": np.full(100, 0.2), "test": np.full(100, 0.99)}}
    block = comparison_block("accuracy", ours, peers)
    assert block["peer"] == "a" and block["test"]["peer"] == 0.1
    lower = comparison_block("bits_per_dim", ours, peers, higher_is_better=False)
    assert lower["peer"] == "b"  # lower is better: b's 0.2 beats a's 0.9 on valid


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="no items"):
        paired_bootstrap(np.ones(0), np.ones(0))
    with pytest.raises(ValueError, match="no peer"):
        comparison_block("accuracy", {"valid": [1], "test": [1]}, {})


def test_attach_moves_per_item_results_into_the_block_and_drops_the_lists():
    metrics = {"test": {"accuracy": 1.0}, "valid": {"accuracy": 1.0},
               "items": {"metric": "accuracy", "kind": "mean", "valid": [1, 1, 1, 1],
                         "test": [1, 1, 1, 1]}}
    peers = {"strong": {"test": {}, "items": {"valid": [1, 1, 1, 0], "test": [0, 0, 1, 1]}},
             "weak": {"test": {}, "items": {"valid": [0, 0, 0, 0], "test": [1, 1, 1, 1]}},
             "no_items": {"test": {}}}
    attach(metrics, peers, resamples=100)
    assert "items" not in metrics and all("items" not in p for p in peers.values())
    block = metrics["comparison"]
    assert block["peer"] == "strong" and block["metric"] == "accuracy"
    assert block["test"]["delta"] == 0.5 and block["valid"]["delta"] == 0.25
    bare = {"test": {}, "valid": {}}
    assert "comparison" not in attach(bare, {"p": {"items": {"valid": [1], "test": [1]}}})
