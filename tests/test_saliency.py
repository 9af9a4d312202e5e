import numpy as np
import pytest

from kexue.config import ConfigError, load_section
from kexue.plots import cjk_font
from kexue.text import saliency

CHARS = "这本书很好看差的"
INDEX = {ch: i + 2 for i, ch in enumerate(CHARS)}  # 0 = padding, 1 = <unk>


def _ids(texts: list[str]) -> np.ndarray:
    rows = [[INDEX.get(ch, 1) for ch in t] or [1] for t in texts]
    out = np.zeros((len(rows), max(map(len, rows))), dtype=np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _linear_model(table: np.ndarray, kernel: np.ndarray, bias: float, name: str = "linear"):
    """P(positive) = sigmoid(kernel · Σ_t table[id_t] + bias); the padding row of ``table`` is 0."""
    import keras

    ids = keras.Input(shape=(None,), dtype="int32", name="char_ids")  # (batch, seq_len)
    embedding = keras.layers.Embedding(len(table), table.shape[1], name="char_embedding")
    x = keras.layers.Dropout(0.0, name="embedding_dropout")(embedding(ids))  # (batch, seq_len, dim)
    total = keras.layers.Lambda(lambda t: keras.ops.sum(t, axis=1), name="sum")(x)  # (batch, dim)
    dense = keras.layers.Dense(1, activation="sigmoid", name="prob_pos")
    prob = dense(total)  # (batch, 1)
    embedding.set_weights([table])
    dense.set_weights([kernel.reshape(-1, 1), np.array([bias])])
    return keras.Model(ids, prob, name=name)


def _count_model(char: str = "好", weight: float = 2.0, bias: float = -1.0):
    """sigmoid(weight × count of ``char`` + bias)."""
    table = np.zeros((len(CHARS) + 2, 1), dtype=np.float32)
    table[INDEX[char]] = 1.0
    return _linear_model(table, np.array([weight]), bias)


def _predict(model):
    return lambda texts: model(_ids(texts), training=False).numpy()[:, 0]


def test_occlusion_ranks_the_known_word_first():
    predict = _predict(_count_model())
    words = [["这本", "书", "很好", "看"], ["书", "差", "的"]]
    scores, classes, base = saliency.occlusion(predict, words)
    assert classes.tolist() == [1, 0]  # one 好: sigmoid(1) > 0.5; none: sigmoid(-1) < 0.5
    assert saliency.ranking(scores[0])[0] == 2
    expected = 1 / (1 + np.exp(-1.0)) - 0.5  # P(pos) falls from sigmoid(1) to sigmoid(-1) = 1 - that
    np.testing.assert_allclose(scores[0], [0, 0, 2 * expected, 0], atol=1e-6)
    np.testing.assert_allclose(scores[1], 0, atol=1e-6)  # no 好 to remove
    np.testing.assert_allclose(base, [1 / (1 + np.exp(-1.0))] * 2, atol=1e-6)


def test_gradient_x_input_equals_the_linear_models_value():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(len(CHARS) + 2, 3)).astype(np.float32)
    table[0] = 0.0
    kernel = rng.normal(size=3).astype(np.float32)
    model = _linear_model(table, kernel, 0.3)
    texts = ["这本书很好看", "差的"]
    x = _ids(texts)
    classes = np.array([1, 0])
    scores = saliency.GradientXInput(model)([x], classes)  # (2, 6)
    # log-odds of class 1 = the logit = kernel · Σ_t e_t + b, so d/d e_t = kernel; class 0 flips it
    expected = (table[x] @ kernel) * np.where(classes == 1, 1.0, -1.0)[:, None] * (x != 0)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)
    words = [["这本", "书", "很好", "看"], ["差", "的"]]
    per_word = saliency.gradient_x_input(saliency.GradientXInput(model), lambda t: [_ids(t)],
                                         words, classes)
    np.testing.assert_allclose(per_word[0], [expected[0, :2].sum(), expected[0, 2],
                                             expected[0, 3:5].sum(), expected[0, 5]], rtol=1e-4)


def test_gradient_x_input_of_a_mean_ensemble_goes_through_each_members_embeddings():
    import keras

    rng = np.random.default_rng(1)
    tables, kernels, members = [], [], []
    for m in range(2):
        table = rng.normal(size=(len(CHARS) + 2, 2)).astype(np.float32)
        table[0] = 0.0
        kernel = rng.normal(size=2).astype(np.float32)
        tables.append(table)
        kernels.append(kernel)
        members.append(_linear_model(table, kernel, 0.1 * m, name=f"member{m}"))
    ids = keras.Input(shape=(None,), dtype="int32", name="char_ids")
    ensemble = keras.Model(ids, keras.layers.Average(name="prob_pos")([m(ids) for m in members]))
    x = _ids(["这本书很好", "差"])
    scores = saliency.GradientXInput(ensemble)([x], np.array([1, 1]))
    logits = [tables[m][x].sum(axis=1) @ kernels[m] + 0.1 * m for m in range(2)]  # (batch,)
    p = [1 / (1 + np.exp(-z)) for z in logits]
    big_p = (p[0] + p[1]) / 2
    # d logit(P) / d e_t of member m = 1 / (P (1 - P)) · ½ p_m (1 - p_m) · kernel_m
    expected = sum((0.5 * p[m] * (1 - p[m]) / (big_p * (1 - big_p)))[:, None]
                   * (tables[m][x] @ kernels[m]) for m in range(2)) * (x != 0)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-6)


def test_gradient_x_input_runs_on_a_sentiment_ensemble_with_padding():
    from kexue.families import sentiment
    from kexue.train import FitConfig, OptimizerConfig

    optimizer = OptimizerConfig(name="adam", learning_rate=0.01, schedule={}, weight_decay=0.0,
                                global_clipnorm=0.0, gradient_accumulation_steps=1, use_ema=False,
                                ema_momentum=0.99, lr_multipliers={}, lookahead_k=0,
                                lookahead_alpha=0.5)
    cfg = sentiment.Config(maxlen=8, min_count=1, bigrams=True, bigram_min_count=1,
                           embedding_dim=4, encoder="lstm", units=4, pooling="max", dropout=0.5,
                           members=2, fit=FitConfig(epochs=1, batch_size=2, seed=0,
                                                    deterministic=True, distribute="none",
                                                    optimizer=optimizer))
    members = [sentiment.build_model(cfg, 20, 30, name=f"member{i}") for i in range(2)]
    model = sentiment.average_members(members, cfg.bigrams)
    chars = np.array([[5, 6, 7, 8], [5, 6, 0, 0]], dtype=np.int32)
    pairs = np.where(chars > 0, chars + 10, 0)
    scores = saliency.GradientXInput(model)([chars, pairs], np.array([1, 0]))  # checks the split
    assert scores.shape == (2, 4)
    assert np.all(scores[1, 2:] == 0) and np.all(np.isfinite(scores))


def test_deletion_curve_with_the_true_ranking_beats_random_orders():
    predict = _predict(_count_model(weight=1.5, bias=-2.0))
    words = [["好", "这", "本", "好", "书", "的", "好", "看"], ["很好", "书", "的"]]
    _, classes, base = saliency.occlusion(predict, words)
    true_orders = [np.array([0, 3, 6, 1, 2, 4, 5, 7]), np.array([0, 1, 2])]
    orders = [[t, *saliency.random_orders(len(w), 5, (0, i))]
              for i, (w, t) in enumerate(zip(words, true_orders, strict=True))]
    drops = saliency.deletion_drops(predict, words, orders, classes, base, max_k=4)
    assert drops.shape == (2, 6, 4)
    best, rand = saliency.aopc(drops[:, 0]), saliency.aopc(drops[:, 1:].mean(axis=1))
    assert best >= rand and best > 0
    np.testing.assert_allclose(drops[1, :, 2], drops[1, :, 3])  # k beyond 3 words: all removed


def test_aopc_is_the_mean_drop_over_k():
    assert saliency.aopc(np.array([[0.1, 0.3, 0.5]])) == pytest.approx(0.3)
    assert saliency.aopc(np.array([[0.1, 0.3], [0.5, 0.7]])) == pytest.approx(0.4)


def test_words_spell_the_text_and_fall_back_to_characters():
    assert saliency.text_words("很 好 看", lambda t: ["很", "好看"]) == ["很", "好看"]
    assert saliency.text_words("很好看", lambda t: ["很", "好"]) == ["很", "好", "看"]
    assert saliency.char_spans(["很", "好看"]) == [(0, 1), (1, 3)]
    assert saliency.without(["很", "好看", "的"], {1}) == "很的"


def test_rendering_writes_html_and_png(tmp_path):
    items = [{"id": "pos-1", "label": "pos", "predicted": "pos", "probability": 0.9,
              "words": ["这本", "书", "很好"], "scores": {"occlusion": np.array([0.0, -0.1, 0.5]),
                                                       "gradient_x_input": np.array([0.1, 0, 2])}}]
    saliency.render_html(tmp_path / "w.html", items, "t")
    assert "很好" in (tmp_path / "w.html").read_text(encoding="utf-8")
    try:
        font = cjk_font()
    except FileNotFoundError:
        pytest.skip("no CJK font installed")
    saliency.render_png(tmp_path / "w.png", items, "occlusion", "t", font)
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"


def test_a_bad_param_is_a_clear_error(tmp_path, monkeypatch):
    good = "saliency:\n  texts: 30\n  max_k: 5\n  random_orders: 2\n  render: 4\n  seed: 0\n"
    (tmp_path / "params.yaml").write_text(good.replace("max_k", "max_kk"))
    with pytest.raises(ConfigError, match=r"unknown key 'saliency\.max_kk'.*Did you mean 'max_k'"):
        load_section("saliency", saliency.Config, tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text(good.replace("texts: 30", "texts: 3"))
    cfg = load_section("saliency", saliency.Config, tmp_path / "params.yaml")
    with pytest.raises(ConfigError, match=r"saliency\.render = 4.*<= saliency\.texts"):
        saliency.check(cfg)
    (tmp_path / "params.yaml").write_text(good.replace("random_orders: 2", "random_orders: 0"))
    monkeypatch.chdir(tmp_path)
    from kexue.stages.saliency import main

    assert main(["sentiment", "--data", "d", "--model", "m", "--tokenized", "t", "--out", "o.json",
                 "--plots", "p"]) == 2  # random_orders >= 1; stops before loading anything
    assert not (tmp_path / "o.json").exists()
