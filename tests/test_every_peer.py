"""kexue against every peer on each target metric (kexue.every_peer)."""

import numpy as np
import pytest

from kexue.comparison import paired_bootstrap
from kexue.every_peer import attach_every_peer, every_peer_block
from kexue.retrieval import query_items

COLUMNS = {"sentence_top1": [0], "sentence_mrr": [1]}


def test_query_items_hold_top1_and_the_reciprocal_rank():
    scores = np.array([[0.9, 0.1, 0.0],   # gold 0 first
                       [0.5, 0.2, 0.7],   # gold 1 third
                       [0.1, 0.2, 0.3]])  # gold 2 first
    items = query_items(scores)
    assert items == [[1, 1.0], [0, pytest.approx(1 / 3)], [1, 1.0]]


def _systems(n=400, seed=1):
    rng = np.random.default_rng(seed)
    ranks = {name: rng.integers(1, 6, size=n) for name in ("ours", "a", "b")}
    ranks["ours"] = np.maximum(ranks["ours"] - 1, 1)  # better ranks than either peer
    return {name: {split: [[int(r <= 1), 1.0 / r] for r in rank] for split in ("valid", "test")}
            for name, rank in ranks.items()}


def test_every_peer_gets_each_metric_from_its_own_columns():
    systems = _systems()
    ours = {"metric": "sentence_top1", "kind": "mean", "every_peer": COLUMNS, **systems["ours"]}
    block = every_peer_block(ours, {"a": systems["a"], "b": systems["b"]}, resamples=200)
    assert set(block) == {"resamples", "seed", "sentence_top1", "sentence_mrr"}
    for metric, column in (("sentence_top1", 0), ("sentence_mrr", 1)):
        assert set(block[metric]) == {"higher_is_better", "a", "b"}
        for peer in ("a", "b"):
            for split in ("valid", "test"):
                ours_col = np.array(systems["ours"][split])[:, column]
                peer_col = np.array(systems[peer][split])[:, column]
                result = block[metric][peer][split]
                assert result["delta"] == pytest.approx(ours_col.mean() - peer_col.mean(), abs=1e-4)
                assert result == paired_bootstrap(ours_col, peer_col, resamples=200)
                assert result["ci95"][0] > 0  # ours is built to be better than both peers


def test_attach_adds_the_block_keeps_the_items_for_the_comparison_and_skips_peers_without_items():
    systems = _systems(50)
    metrics = {"items": {"metric": "sentence_top1", "kind": "mean", "every_peer": COLUMNS,
                         **systems["ours"]}}
    peers = {"a": {"items": systems["a"]}, "no_items": {"test": {"top1": 0.5}}}
    out = attach_every_peer(metrics, peers, resamples=50)
    assert set(out["comparisons"]["sentence_mrr"]) == {"higher_is_better", "a"}
    assert "every_peer" not in out["items"] and out["items"]["valid"] == systems["ours"]["valid"]
    assert "items" in peers["a"]  # left for kexue.comparison.attach, which picks the strongest
    plain = {"items": {"metric": "accuracy", "kind": "mean", "valid": [1], "test": [0]}}
    assert "comparisons" not in attach_every_peer(plain, peers)


def test_a_second_item_set_is_compared_on_its_own_items():
    systems = _systems(60)
    heads = _systems(20, seed=7)
    ours = {"kind": "mean", "every_peer": {"mrr": [1], "top1": {"items": "headline", "columns": [0]}},
            **systems["ours"], "headline": heads["ours"]}
    peer = {**systems["a"], "headline": heads["a"]}
    block = every_peer_block(ours, {"a": peer}, resamples=100)
    assert block["top1"]["a"]["test"] == paired_bootstrap(
        np.array(heads["ours"]["test"])[:, 0], np.array(heads["a"]["test"])[:, 0], resamples=100)
    assert block["top1"]["a"]["test"]["n"] == 20 and block["mrr"]["a"]["test"]["n"] == 60
    with pytest.raises(ValueError, match="item set 'headline', which b's per-item results lack"):
        every_peer_block(ours, {"b": systems["b"]}, resamples=10)


def test_a_column_the_items_lack_is_a_clear_error():
    ours = {"kind": "mean", "every_peer": {"sentence_mrr": [1]}, "valid": [1, 0], "test": [1, 0]}
    with pytest.raises(ValueError, match="column 1 asked for"):
        every_peer_block(ours, {"a": {"valid": [1, 1], "test": [0, 1]}})
