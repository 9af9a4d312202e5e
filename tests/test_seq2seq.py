import itertools
import json
import math

import numpy as np
import pytest
import yaml

from kexue import cli, decoding
from kexue.config import ConfigError, load_section, parse
from kexue.corpora import prepared_articles as articles
from kexue.families import seq2seq as s2s
from kexue.families import seq2seq_data as s2s_data
from kexue.families import seq2seq_examples as s2s_examples
from kexue.families import seq2seq_extract as s2s_extract
from kexue.io import write_jsonl
from kexue.peers import seq2seq as headlines
from kexue.text import rouge

OPTIMIZER = {"name": "adam", "learning_rate": 0.02, "schedule": {}, "weight_decay": 0.0,
             "global_clipnorm": 5.0, "gradient_accumulation_steps": 1, "use_ema": False,
             "ema_momentum": 0.99, "lr_multipliers": {}, "lookahead_k": 0, "lookahead_alpha": 0.5}
TINY = {"maxlen": 16, "max_headline": 6, "strip_headline_notes": True, "min_count": 1,
        "embedding_dim": 16, "units": 16, "encoder_layers": 1, "decoder_layers": 2,
        "condition_units": 4, "attention_heads": 2, "attention_key_dim": 4, "hidden": 16,
        "copy_prior": True, "dropout": 0.0, "decoder_input_dropout": 0.0, "beam_size": 3, "min_len": 1, "length_penalty": 0.0,
        "copy_only": False, "extract_layers": 1, "extract_units": 16, "extract_epochs": 6,
        "extract_chars": [3, 4, 6],
        "fit": {"epochs": 20, "batch_size": 8, "seed": 0, "deterministic": True, "distribute": "none",
                "optimizer": OPTIMIZER}}


def _config(**overrides) -> s2s.Config:
    return parse(s2s.Config, {**TINY, **overrides}, "seq2seq")


# --- beam search on toy step functions ------------------------------------------------------

START, END = 0, 1


def _toy_step(vocab: int, seed: int, table_size: int = 97):
    """A step function whose next-token distribution depends on the whole prefix (through a
    running hash kept in the state) and on a per-input context value; the start token is never
    generated."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(table_size, vocab))
    logits[:, START] = -np.inf
    table = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))  # log-softmax rows

    def step(tokens, state, context):
        (h,), (c,) = state, context
        h = (h * 31 + tokens * 7 + c) % table_size  # (n,)
        return table[h], [h]

    return step


def _brute_force(step, context: int, vocab: int, max_len: int, min_len: int, alpha: float):
    """Score every sequence the search can produce (ending with the end token, or max_len long)
    by running ``step`` along it; the best by score / length^alpha."""
    best, best_value = None, -np.inf
    for length in range(0, max_len + 1):
        for body in itertools.product(range(2, vocab), repeat=length):
            ends = length < max_len
            if ends and length < min_len:
                continue
            state, score, last = [np.zeros(1, dtype=np.int64)], 0.0, START
            for token in [*body, END] if ends else body:
                log_probs, state = step(np.array([last]), state, [np.array([context])])
                score += log_probs[0, token]
                last = token
            value = score / max(length, 1) ** alpha if alpha else score
            if value > best_value:
                best, best_value = (list(body), score), value
    return best


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_wide_beam_search_equals_brute_force(alpha):
    vocab, max_len, min_len = 5, 4, 1
    step = _toy_step(vocab, seed=1)
    contexts = np.array([0, 1, 2, 3])
    results = decoding.beam_search(step, [np.zeros(4, dtype=np.int64)], [contexts], batch=4,
                              start_id=START, end_id=END, beam_size=vocab**max_len, max_len=max_len,
                              min_len=min_len, length_penalty=alpha)
    for c, (tokens, score) in zip(contexts, results, strict=True):
        expected_tokens, expected_score = _brute_force(step, int(c), vocab, max_len, min_len, alpha)
        assert tokens == expected_tokens
        assert score == pytest.approx(expected_score, abs=1e-9)


def test_beam_of_one_is_greedy_decoding():
    step = _toy_step(7, seed=2)
    contexts = [np.arange(6)]
    kwargs = dict(batch=6, start_id=START, end_id=END, max_len=8, min_len=2)
    greedy = decoding.greedy_decode(step, [np.zeros(6, dtype=np.int64)], contexts, **kwargs)
    beam = decoding.beam_search(step, [np.zeros(6, dtype=np.int64)], contexts, beam_size=1, **kwargs)
    assert [t for t, _ in beam] == [t for t, _ in greedy]
    np.testing.assert_allclose([s for _, s in beam], [s for _, s in greedy], rtol=1e-12)
    assert all(len(t) >= 2 for t, _ in greedy)  # min_len bans the end token early


def test_beam_of_two_finds_what_greedy_misses():
    """A hand-made trap: 'a' is the likelier first token, but every continuation of it is poor;
    'b' then end is the best sequence: P = 0.4 · 0.9 = 0.36 > P(a, *) ≤ 0.6 · 0.35 = 0.21."""
    a, b = 2, 3
    first = np.log([1e-12, 1e-12, 0.6, 0.4])  # after <s>: P(end) ~ 0
    after_a = np.log([1e-12, 0.35, 0.33, 0.32])
    after_b = np.log([1e-12, 0.9, 0.05, 0.05])
    rows = {START: first, a: after_a, b: after_b}

    def step(tokens, state, context):
        return np.stack([rows.get(int(t), after_a) for t in tokens]), state

    kwargs = dict(batch=1, start_id=START, end_id=END, max_len=3)
    (greedy, _), = decoding.greedy_decode(step, [np.zeros(1)], **kwargs)
    (beam, score), = decoding.beam_search(step, [np.zeros(1)], beam_size=2, **kwargs)
    assert greedy[0] == a
    assert beam == [b] and score == pytest.approx(math.log(0.4 * 0.9))


def test_beam_search_rejects_bad_sizes():
    with pytest.raises(ValueError, match="beam_size >= 1"):
        decoding.beam_search(lambda t, s, c: (None, s), [], batch=1, start_id=0, end_id=1, beam_size=0,
                        max_len=3)


# --- metrics and peers ----------------------------------------------------------------------


def test_character_rouge_against_hand_computation():
    ref, hyp = "人民日报评论", "日报人民"
    # unigrams: all 4 of the hypothesis in the 6 of the reference → P 1, R 2/3
    # bigrams: reference 人民 民日 日报 报评 评论, hypothesis 日报 报人 人民: 2 shared → P 2/3, R 2/5
    # LCS: 2 (人民 or 日报) → P 2/4, R 2/6
    def f1(p, r):
        return 2 * p * r / (p + r)

    scores = rouge.rouge_scores([ref], [hyp])
    assert scores["rouge1"] == pytest.approx(f1(1, 2 / 3))  # 0.8
    assert scores["rouge2"] == pytest.approx(f1(2 / 3, 2 / 5))  # 0.5
    assert scores["rougeL"] == pytest.approx(f1(2 / 4, 2 / 6))  # 0.4
    # the mean over pairs; whitespace is not a token
    both = rouge.rouge_scores([ref, "北京"], [hyp, "北 京"])
    assert both["rouge1"] == pytest.approx((0.8 + 1.0) / 2)
    assert rouge.CharTokenizer().tokenize("人民 日报") == ["人", "民", "日", "报"]
    # why the tokenizer is needed: rouge-score's default one drops every Chinese character
    from rouge_score import rouge_scorer

    assert rouge_scorer.RougeScorer(["rouge1"]).score(ref, hyp)["rouge1"].fmeasure == 0.0


def test_character_bleu_against_hand_computation():
    # every n-gram precision is 1; brevity penalty exp(1 - 5/4)
    assert rouge.corpus_bleu(["人民日报社"], ["人民日报"]) == pytest.approx(100 * math.exp(-0.25), abs=0.01)
    assert rouge.corpus_bleu(["人民日报"], ["人民日报"]) == pytest.approx(100.0)


def test_lead_and_tfidf_clause_peers_by_hand():
    from sklearn.feature_extraction.text import TfidfVectorizer

    assert headlines.lead_headline("人民 日报社论今天发表", 4) == "人民日报"
    assert headlines.clauses("今天，北京下雪了。市民出行：注意安全！") == ["今天", "北京下雪了", "市民出行", "注意安全"]
    assert articles.clean_headline("迈向新世纪（附图片１张）") == "迈向新世纪"
    assert articles.clean_headline("（图片）") == "（图片）"  # never emptied
    assert articles.clean_headline("迈向新世纪（附图片１张）", strip_notes=False) == "迈向新世纪（附图片１张）"
    # idf (smooth): 的 in all 3 documents → 1; 雪 in 1 → 1 + ln 2
    vectorizer = TfidfVectorizer(analyzer="char", norm=None, lowercase=False).fit(["的的的", "的雪", "的了"])
    text = "的的的的，雪。"
    # sum: 4·1 = 4 > 1.69; mean per character: 1 < 1.69; cosine with (4, 1.69): 0.92 > 0.39
    assert headlines.tfidf_clause([text], vectorizer, "sum") == ["的的的的"]
    assert headlines.tfidf_clause([text], vectorizer, "mean") == ["雪"]
    assert headlines.tfidf_clause([text], vectorizer, "cosine") == ["的的的的"]


def test_pair_batches_pad_and_drop_decoder_inputs():
    rng = np.random.default_rng(0)
    inputs = [rng.integers(4, 20, size=n).astype(np.int32) for n in rng.integers(3, 30, size=40)]
    y_in = [np.asarray([s2s.START_ID, *rng.integers(4, 20, size=n)], np.int32) for n in rng.integers(1, 9, size=40)]
    y_out = [np.asarray([*y[1:], s2s.END_ID], np.int32) for y in y_in]
    plain = s2s_data.PairBatches(inputs, y_in, y_out, batch_size=8, seed=3)
    dropped = s2s_data.PairBatches(inputs, y_in, y_out, batch_size=8, seed=3, input_dropout=0.5)
    seen, changed, kept = 0, 0, 0
    for index in range(len(plain)):
        (x, a), target = plain[index]
        (x2, b), target2 = dropped[index]
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(target, target2)  # targets are never dropped
        longest = max(len(inputs[i]) for i in plain._batches[index])
        assert x.shape[1] == longest + index % 2 and a.shape == target.shape  # +1 step when odd
        assert (a[:, 0] == s2s.START_ID).all() and (b[:, 0] == s2s.START_ID).all()
        assert ((b == a) | (b == 1)).all() and ((a == 0) == (b == 0)).all()  # only chars → <unk>
        body = a[:, 1:] > 0
        seen, changed = seen + body.sum(), changed + (b[:, 1:][body] == 1).sum()
        (_, again), _ = dropped[index]
        kept += int((again == b).all())  # the same draw for the same (seed, epoch, batch)
    assert 0.35 < changed / seen < 0.65 and kept == len(plain)
    assert sorted(np.concatenate(plain._batches)) == list(range(40))


# --- the model --------------------------------------------------------------------------------

ALPHABET = list("甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳")


def _toy_articles(tmp_path):
    """Paragraphs of random characters; the headline is the paragraph's first four characters
    (plus a picture note that strip_headline_notes removes)."""
    rng = np.random.default_rng(5)

    def article(i):
        text = "".join(rng.choice(ALPHABET, size=rng.integers(8, 14))) + "。"
        return {"id": f"a{i:05d}", "line": i, "headline": text[:4] + "（附图片１张）", "subtitles": [],
                "body": [text, "第二行。"], "sentences": [text, "第二行。"], "lead": text}

    data = tmp_path / "articles"
    write_jsonl(data / "train.jsonl", [article(i) for i in range(96)])
    write_jsonl(data / "valid.jsonl", [article(100 + i) for i in range(12)])
    write_jsonl(data / "test.jsonl", [article(200 + i) for i in range(12)])
    return data


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("seq2seq")
    data = _toy_articles(tmp_path)
    info = s2s.train(_config(), data, tmp_path / "model", tmp_path / "live")
    return tmp_path, data, info


def test_step_model_reproduces_the_training_model(trained):
    """Teacher-forced logits of the training model = the one-step decoder run step by step."""
    import keras

    tmp_path = trained[0]
    model = s2s.Headliner(tmp_path / "model")
    texts, heads = articles.headline_pairs(articles.load_articles(trained[1], "valid")[:5], True)
    x = s2s_data.pad_ids(s2s.encode_inputs(texts, model.vocab, model.cfg.maxlen))
    y_in, _ = s2s.encode_targets(heads, model.vocab, model.cfg.max_headline)
    y_in = s2s_data.pad_ids(y_in)
    full = keras.ops.convert_to_numpy(model.model([x, y_in]))  # (5, y_len, vocab)
    encoder, step = s2s.inference_models(model.model, model.cfg)
    encoded, summary, presence = (keras.ops.convert_to_numpy(t) for t in encoder(x))
    state = [np.zeros((5, model.cfg.units), np.float32) for _ in range(2 * model.cfg.decoder_layers)]
    for t in range(y_in.shape[1]):
        out = [keras.ops.convert_to_numpy(o) for o in step([y_in[:, t : t + 1], *state, encoded, x,
                                                             summary, presence])]
        state = out[1:]
        real = y_in[:, t] != 0
        np.testing.assert_allclose(out[0][real, 0], full[real, t], rtol=1e-4, atol=1e-4)


def test_tiny_train_generate_round_trip(trained):
    tmp_path, data, info = trained
    assert info["epochs_run"] == 20 and info["monitor"] == "val_rougeL" and info["train_examples"] == 96
    assert info["median_headline_chars"] == 4  # the notes are stripped
    assert (tmp_path / "live" / "plots" / "metrics" / "eval" / "rougeL.tsv").is_file()
    model = s2s.Headliner(tmp_path / "model")
    texts, heads = articles.headline_pairs(articles.load_articles(data, "test"), True)
    titles = model.titles(texts)
    assert len(titles) == len(texts)
    for title, score in titles:
        assert 1 <= len(title) <= 6 and score <= 0  # min_len and max_headline hold
        assert set(title) <= set(model.vocab.tokens[4:])
    # the copy task is learnt well beyond chance (4 random characters of the 16: ROUGE-1 ~0.25)
    assert rouge.rouge_scores(heads, [t for t, _ in titles])["rouge1"] > 0.4
    # beam width 1 through beam_search is the greedy path the decoder takes for width 1
    inputs = s2s.encode_inputs(texts, model.vocab, model.cfg.maxlen)
    greedy = model.decoder.generate(inputs, beam_size=1)
    x = s2s_data.pad_ids(inputs)
    encoded, summary, presence = model.decoder.encode(x)
    state = [np.zeros((len(x), model.cfg.units), np.float32) for _ in range(4)]
    beam1 = decoding.beam_search(model.decoder.step, state, [encoded, x, summary, presence], batch=len(x),
                            start_id=s2s.START_ID, end_id=s2s.END_ID, beam_size=1, max_len=6,
                            min_len=1)
    assert [t for t, _ in beam1] == [t for t, _ in greedy]

    metrics, rows = s2s.evaluate(tmp_path / "model", data)
    for split in ("test", "valid"):
        assert set(metrics[split]) >= {"rouge1", "rouge2", "rougeL", "bleu", "articles"}
        assert metrics[split]["articles"] == 12
        items = metrics["items"][split]  # ROUGE-L per article: their mean is the split's ROUGE-L
        assert len(items) == 12 and abs(sum(items) / 12 - metrics[split]["rougeL"]) < 1e-4
    assert metrics["cost"]["train_seconds"] > 0 and len(rows) == 12
    assert {r["actual"] for r in rows} == {"0-5"}


def test_copy_only_decoding_generates_paragraph_characters(trained):
    """copy_only renormalises each step over the paragraph's characters and the end token: every
    generated character occurs in its (encoded) paragraph, and the step's probabilities sum to 1."""
    import dataclasses

    tmp_path, data, _ = trained
    model = s2s.Headliner(tmp_path / "model")
    model.cfg = dataclasses.replace(model.cfg, copy_only=True)
    model.decoder = s2s.Decoder(model.model, model.cfg)
    texts = [t[:6] for t in articles.headline_pairs(articles.load_articles(data, "test"), True)[0]]  # 6 of 16 characters
    for text, (title, _) in zip(texts, model.titles(texts, beam_size=2), strict=True):
        assert title and set(title) <= set(text), (title, text)
    x = s2s_data.pad_ids(s2s.encode_inputs(texts, model.vocab, model.cfg.maxlen))
    encoded, summary, presence = model.decoder.encode(x)
    state = [np.zeros((len(x), model.cfg.units), np.float32) for _ in range(4)]
    log_probs, _ = model.decoder.step(np.full(len(x), s2s.START_ID), state, [encoded, x, summary, presence])
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, rtol=1e-9)
    absent = (np.asarray(presence) == 0)
    absent[:, s2s.END_ID] = False
    assert np.all(np.isneginf(log_probs[absent]))


def test_baselines_on_toy_articles(tmp_path):
    data = _toy_articles(tmp_path)
    cfg = headlines.BaselineConfig(tfidf_ngram_max=[1, 2], tfidf_scoring=["sum", "cosine"],
                             copy_prior_ablation=False)
    peers = headlines.baselines(cfg, data, network=_config())
    assert peers["lead"]["chosen"] == {"chars": 4}
    assert peers["lead"]["test"]["rougeL"] == 1.0  # the headline is the paragraph's first 4 characters
    assert peers["tfidf_clause"]["chosen"]["scoring"] in ("sum", "cosine")
    assert 0 <= peers["tfidf_clause"]["test"]["rougeL"] <= 1
    for peer in peers.values():
        assert abs(sum(peer["items"]["test"]) / len(peer["items"]["test"]) - peer["test"]["rougeL"]) < 1e-4


def test_examples_table(trained, tmp_path):
    rows = s2s_examples.example_rows(trained[0] / "model", trained[1], articles=5)
    assert [r["id"] for r in rows] == ["a00200", "a00203", "a00206", "a00208", "a00211"]
    table = s2s_examples.examples_markdown(rows)
    assert table.count("\n") == 2 + 5 and "real headline" in table
    with pytest.raises(ValueError, match="articles must be >= 1"):
        s2s_examples.example_rows(trained[0] / "model", trained[1], articles=0)


def test_bad_params_name_the_key(tmp_path):
    cases = [({"units": 15}, r"seq2seq\.units = 15.*even"),
             ({"min_len": 7}, r"seq2seq\.min_len = 7.*max_headline"),
             ({"beam_size": 0}, r"seq2seq\.beam_size = 0.*>= 1"),
             ({"beem_size": 3}, r"seq2seq\.beem_size.*Did you mean 'beam_size'")]
    for overrides, message in cases:
        (tmp_path / "params.yaml").write_text(yaml.safe_dump({"seq2seq": {**TINY, **overrides}}))
        with pytest.raises(ConfigError, match=message):
            load_section("seq2seq", s2s.Config, tmp_path / "params.yaml")


def test_cli_title(trained, tmp_path, capsys):
    model_dir = str(trained[0] / "model")
    assert cli.main(["title", "甲乙丙丁戊己庚辛。", "子丑寅卯辰巳。", "--model", model_dir]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["甲乙丙丁戊己庚辛。", "子丑寅卯辰巳。"]
    assert all(r["title"] and r["log_prob"] <= 0 for r in rows)
    assert cli.main(["title", "甲乙丙丁。", "--beam", "1", "--model", model_dir]) == 0
    capsys.readouterr()
    assert cli.main(["title", "甲乙", "--beam", "0", "--model", model_dir]) == 1
    assert "--beam must be >= 1" in capsys.readouterr().err
    assert cli.main(["title", "甲乙", "  ", "--model", model_dir]) == 1
    assert "input 2 of 2 is empty" in capsys.readouterr().err
    assert cli.main(["title", "甲乙", "--model", str(tmp_path / "missing")]) == 1
    assert "dvc repro train@seq2seq" in capsys.readouterr().err


# --- the extractive headline: keep/drop tagger ----------------------------------------------


def _lcs_length(a, b) -> int:
    """Brute force over the subsequences of the shorter string."""
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    for size in range(len(short), 0, -1):
        for picked in itertools.combinations(range(len(short)), size):
            sub, pos = [short[i] for i in picked], 0
            for c in long_:
                if pos < size and c == sub[pos]:
                    pos += 1
            if pos == size:
                return size
    return 0


@pytest.mark.parametrize("seed", range(6))
def test_keep_labels_mark_a_longest_common_subsequence(seed):
    rng = np.random.default_rng(seed)
    paragraph = list(rng.choice(list("甲乙丙丁戊"), size=int(rng.integers(0, 11))))
    headline = list(rng.choice(list("甲乙丙丁戊"), size=int(rng.integers(0, 7))))
    keep = s2s_extract.keep_labels(paragraph, headline)
    assert keep.shape == (len(paragraph),) and set(keep.tolist()) <= {0, 1}
    kept = [c for c, k in zip(paragraph, keep, strict=True) if k]
    assert len(kept) == _lcs_length(paragraph, headline)
    assert _lcs_length(kept, headline) == len(kept)  # the kept characters are a subsequence of it


def test_keep_labels_take_the_earliest_alignment():
    assert s2s_extract.keep_labels(list("甲乙甲乙"), list("甲乙")).tolist() == [1, 1, 0, 0]
    assert s2s_extract.keep_labels(list("丙甲丁"), list("甲")).tolist() == [0, 1, 0]


def test_masked_keep_loss_is_the_mean_cross_entropy_of_the_real_characters():
    labels = np.array([[1, 0, -1], [0, -1, -1]], dtype=np.int32)
    logits = np.array([[[2.0], [-1.0], [50.0]], [[0.5], [9.0], [-9.0]]], dtype=np.float32)
    p = 1 / (1 + np.exp(-np.array([2.0, -1.0, 0.5])))
    expected = -(np.log(p[0]) + np.log(1 - p[1]) + np.log(1 - p[2])) / 3
    loss = float(s2s_extract.masked_keep_loss(labels, logits))
    assert loss == pytest.approx(expected, rel=1e-5)


def test_compress_keeps_the_most_probable_characters_in_paragraph_order():
    log_keep = np.log(np.array([0.1, 0.9, 0.2, 0.8, 0.8]))
    text, score = s2s_extract.compress("甲 乙丙丁戊", log_keep, 3)  # spaces are not characters
    assert text == "乙丁戊" and score == pytest.approx(np.log([0.9, 0.8, 0.8]).mean())
    assert s2s_extract.compress("甲乙", log_keep[:2], 5)[0] == "甲乙"  # shorter than asked
    assert s2s_extract.compress("", np.zeros(0), 3) == ("", 0.0)


def test_choose_decoding_takes_the_best_option_on_valid():
    refs, texts = ["乙丁", "甲丙"], ["甲乙丙丁", "甲乙丙丁"]
    log_keep = [np.log([0.1, 0.9, 0.2, 0.8]), np.log([0.9, 0.1, 0.8, 0.2])]
    chosen = s2s_extract.choose_decoding(refs, ["甲", "乙"], texts, log_keep, [1, 2, 3])
    assert chosen["chosen"] == "extractive" and chosen["chars"] == 2
    assert chosen["valid_rougeL"]["extractive_2"] == 1.0
    assert set(chosen["valid_rougeL"]) == {"abstractive", "extractive_1", "extractive_2", "extractive_3"}
    beam_wins = s2s_extract.choose_decoding(refs, refs, texts, log_keep, [1])
    assert beam_wins == {"chosen": "abstractive", "chars": None,
                         "valid_rougeL": {"abstractive": 1.0, "extractive_1": pytest.approx(0.6667, abs=1e-4)}}


def test_the_extractor_learns_the_toy_headline_and_valid_chooses_it(trained):
    """The toy headline is the paragraph's first four characters: the tagger learns to keep
    them, valid picks the 4-character extractive headline, and test scores it (near) perfectly."""
    tmp_path, data, info = trained
    assert info["decoding"]["chosen"] == "extractive" and info["decoding"]["chars"] == 4
    assert info["extractor"]["monitor"] == "val_rougeL" and info["extractor"]["epochs_run"] == 6
    assert (tmp_path / "live" / "plots" / "metrics" / "extract" / "eval" / "rougeL.tsv").is_file()
    model = s2s.Headliner(tmp_path / "model")
    texts, heads = articles.headline_pairs(articles.load_articles(data, "test"), True)
    titles = model.titles(texts)
    assert [len(t) for t, _ in titles] == [4] * len(texts)
    assert rouge.rouge_scores(heads, [t for t, _ in titles])["rougeL"] > 0.9
    assert all(score <= 0 for _, score in titles)
    metrics, _ = s2s.evaluate(tmp_path / "model", data)
    assert metrics["decoding"]["chosen"] == "extractive" and metrics["test"]["rougeL"] > 0.9
    assert set(metrics["abstractive"]) == {"test", "valid"}
    assert metrics["items"]["every_peer"] == {"rougeL": [0]}
