"""Adversarial validation: the discriminator, the splits, the weights, the agreement measures."""

import json

import numpy as np
import pytest

from kexue.batches import SequenceBatches
from kexue.text.advsplit import (
    adversarial_validation_split,
    density_ratio_weights,
    random_validation_split,
    score_test_likeness,
    selection_agreement,
    split_pool,
    sweep_models,
)

rng = np.random.default_rng(0)


def _texts(alphabet: str, n: int, seed: int) -> list[str]:
    r = np.random.default_rng(seed)
    return ["".join(r.choice(list(alphabet), size=12)) for _ in range(n)]


def test_discriminator_separates_a_shifted_test_set_and_not_a_same_one():
    train = _texts("abcdefgh", 60, 1)
    shifted = _texts("efghijkl", 40, 2)  # half the alphabet is new
    same = _texts("abcdefgh", 40, 3)
    assert score_test_likeness(train, shifted, folds=4).auc > 0.95
    assert abs(score_test_likeness(train, same, folds=4).auc - 0.5) < 0.2


def test_scores_are_out_of_fold():
    # each training text is unique (its own n-grams); an in-sample discriminator would score the
    # training texts low because it memorised them, an out-of-fold one cannot: the two sets,
    # drawn from one distribution, get the same mean score
    train = _texts("abcdefghij", 80, 4)
    test = _texts("abcdefghij", 80, 5)
    likeness = score_test_likeness(train, test, folds=5, min_df=1, c=100.0)
    assert abs(likeness.train_scores.mean() - likeness.test_scores.mean()) < 0.1


def test_adversarial_split_takes_the_most_test_like_samples_deterministically():
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.2])
    train, valid = adversarial_validation_split(scores, 2)
    assert valid.tolist() == [1, 3] and train.tolist() == [0, 2, 4]
    train, valid = adversarial_validation_split(scores, 3)
    assert valid.tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="validation size 5"):
        adversarial_validation_split(scores, 5)


def test_random_split_is_seeded_and_disjoint():
    a = random_validation_split(100, 10, seed=3)
    b = random_validation_split(100, 10, seed=3)
    assert a[1].tolist() == b[1].tolist() and len(a[1]) == 10
    assert not set(a[0]) & set(a[1]) and len(a[0]) + len(a[1]) == 100
    assert random_validation_split(100, 10, seed=4)[1].tolist() != a[1].tolist()


def test_density_ratio_weights_are_clipped_odds_with_mean_one():
    p = np.array([0.5, 0.8, 0.2, 0.999, 0.0001])
    w = density_ratio_weights(p, prior_ratio=1.0, max_weight=10.0)
    odds = np.clip(p / (1 - p), 0.1, 10.0)
    np.testing.assert_allclose(w, odds / odds.mean(), rtol=1e-6)
    assert w.mean() == pytest.approx(1.0)
    assert np.all(np.diff(w[[4, 2, 0, 1, 3]]) >= 0)  # monotone in p


def test_selection_agreement_on_a_hand_case():
    out = selection_agreement([0.8, 0.7, 0.9], [0.75, 0.70, 0.72])
    # pairs: (0,1) concordant, (0,2) discordant, (1,2) concordant -> tau = (2 - 1) / 3
    assert out["kendall_tau"] == pytest.approx(1 / 3, abs=1e-4)
    assert out["mean_abs_gap"] == pytest.approx((0.05 + 0.0 + 0.18) / 3, abs=1e-4)
    assert out["picked_test"] == 0.72 and out["regret"] == pytest.approx(0.03)
    with pytest.raises(ValueError):
        selection_agreement([0.1], [0.2])
    with pytest.raises(ValueError, match="2 model names for 3 scores"):
        selection_agreement([0.8, 0.7, 0.9], [0.75, 0.70, 0.72], ["a", "b"])


def test_selection_agreement_picks_the_best_valid_model_and_its_regret():
    # valid picks b (0.85), whose test is 0.74; c is best on test (0.81): regret 0.07
    out = selection_agreement([0.80, 0.85, 0.70, 0.75], [0.78, 0.74, 0.81, 0.70], ["a", "b", "c", "d"])
    assert (out["picked_model"], out["picked_index"], out["picked_valid"], out["picked_test"]) == ("b", 1, 0.85, 0.74)
    assert (out["best_test_model"], out["best_test"], out["regret"]) == ("c", 0.81, 0.07)
    assert out["models"] == 4
    # valid − test: 0.02, 0.11, −0.11, 0.05
    assert out["mean_gap"] == pytest.approx(0.0175) and out["mean_abs_gap"] == pytest.approx(0.0725)
    # 2 concordant and 4 discordant pairs: τ = −1/3; exact two-sided p for n = 4: 18 of the 24
    # orders have |τ| ≥ 1/3
    assert out["kendall_tau"] == pytest.approx(-1 / 3, abs=1e-4) and out["kendall_p"] == pytest.approx(0.75)
    perfect = selection_agreement([0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8])
    assert perfect["kendall_tau"] == 1.0 and perfect["kendall_p"] == pytest.approx(2 / 24, abs=1e-4)
    assert perfect["regret"] == 0.0 and perfect["picked_model"] == "model 3"
    assert perfect["mean_gap"] == pytest.approx(-0.4)


def test_selection_agreement_breaks_ties_by_the_sweep_order():
    # a and b tie on valid: the one listed first is picked, whichever it is
    out = selection_agreement([0.9, 0.9, 0.8], [0.7, 0.8, 0.9], ["a", "b", "c"])
    assert (out["picked_model"], out["picked_test"], out["regret"]) == ("a", 0.7, 0.2)
    out = selection_agreement([0.9, 0.9, 0.8], [0.8, 0.7, 0.9], ["b", "a", "c"])
    assert (out["picked_model"], out["picked_test"], out["regret"]) == ("b", 0.8, 0.1)
    # a tie on test names the first of the test-best models; the regret does not depend on it
    out = selection_agreement([0.5, 0.6, 0.7], [0.9, 0.9, 0.8], ["a", "b", "c"])
    assert (out["best_test_model"], out["picked_model"], out["regret"]) == ("a", "c", 0.1)


def test_selection_agreement_without_a_ranking_has_no_tau():
    out = selection_agreement([0.8, 0.8, 0.8], [0.7, 0.6, 0.9])
    assert out["kendall_tau"] is None and out["kendall_p"] is None
    assert out["picked_model"] == "model 0" and out["regret"] == pytest.approx(0.2)
    json.dumps(out, allow_nan=False)  # the metrics file stays valid JSON


def test_sweep_models_follow_the_sweep_order():
    assert sweep_models([0.1, 16.0], [1, 3]) == ["char 1-1 C=0.1", "char 1-1 C=16", "char 1-3 C=0.1",
                                                 "char 1-3 C=16"]


def test_split_pool_puts_test_like_rows_in_valid_and_weights_every_row():
    pool = [{"text": t, "label": 0} for t in _texts("abcdefgh", 60, 6)]
    pool += [{"text": t, "label": 1} for t in _texts("ijklmnop", 10, 7)]  # look like the test set
    test = [{"text": t, "label": 1} for t in _texts("ijklmnop", 30, 8)]
    splits, metrics = split_pool(pool, test, "adversarial", valid_size=10 / 70, folds=3,
                                 ngram_max=2, max_weight=10.0, seed=0)
    assert sorted(metrics["sizes"].values()) == [10, 30, 60]
    assert all(r["label"] == 1 for r in splits["valid"])
    assert metrics["mean_test_likeness"]["valid"] > metrics["mean_test_likeness"]["train"]
    assert all("weight" in r and "test_likeness" in r for r in splits["train"] + splits["valid"])
    random_splits, _ = split_pool(pool, test, "random", 10 / 70, 3, 2, 10.0, 0)
    assert sum(r["label"] for r in random_splits["valid"]) < 10
    with pytest.raises(ValueError, match="split.valid"):
        split_pool(pool, test, "oracle", 0.1, 3, 2, 10.0, 0)


def test_sequence_batches_yield_sample_weights():
    seqs = [np.array([1, 2]), np.array([3]), np.array([4, 5, 6])]
    batches = SequenceBatches(seqs, np.array([0, 1, 1]), 3, shuffle=False,
                              weights=np.array([0.5, 2.0, 1.0]))
    x, y, w = batches[0]
    order = batches.order()
    np.testing.assert_allclose(w, np.array([0.5, 2.0, 1.0])[order])
    with pytest.raises(ValueError, match="one weight per example"):
        SequenceBatches(seqs, np.array([0, 1, 1]), 3, weights=np.array([1.0]))


def test_split_stage_rejects_a_bad_param(tmp_path, monkeypatch, capsys):
    from kexue.stages import split

    (tmp_path / "params.yaml").write_text(
        "split: {valid: oracle, valid_size: 0.1, folds: 5, ngram_max: 2, max_weight: 10.0, seed: 0}\n")
    monkeypatch.chdir(tmp_path)
    assert split.main(["--prepared", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "split.valid" in err and "adversarial" in err
    assert not (tmp_path / "data").exists()


def test_sentiment_density_ratio_weights_need_the_split_output(tmp_path):
    from kexue.families.sentiment import sample_weights

    rows = [json.loads('{"text": "好", "label": 1}')]
    assert sample_weights(rows, "none", tmp_path) is None
    with pytest.raises(ValueError, match="data/split/reviews"):
        sample_weights(rows, "density_ratio", tmp_path / "train.jsonl")
    assert sample_weights([{"weight": 2.5}], "density_ratio", tmp_path).tolist() == [2.5]
