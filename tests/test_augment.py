import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import yaml

from kexue.io import read_json, read_jsonl, write_jsonl
from kexue.text.augment import (
    AugmentConfig,
    augment_rows,
    augment_words,
    join_words,
    nearest_neighbours,
    replaceable,
)

OFF = AugmentConfig(ratio=1.0, p_delete=0.0, p_swap=0.0, p_replace=0.0, neighbours=5,
                    min_similarity=0.5, seed=0)


def segment(text: str) -> list[str]:
    return text.split()


def rows(n: int = 40) -> list[dict]:
    words = ["这本", "书", "很", "好看", "内容", "丰富", "推荐", "大家", "购买", "！"]
    return [{"id": f"r{i}", "text": " ".join(words[: 3 + i % 8]), "label": i % 2,
             "weight": 0.5 + i, "test_likeness": 0.1} for i in range(n)]


def test_deletion_never_empties_and_removes_about_p():
    cfg = replace(OFF, p_delete=0.3)
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(20)]
    kept = [len(augment_words(words, {}, cfg, rng)[0]) for _ in range(2000)]
    assert abs(1 - np.mean(kept) / 20 - 0.3) < 0.01
    always = replace(OFF, p_delete=0.9)
    for n in (1, 2, 3):
        assert all(augment_words(words[:n], {}, always, rng)[0] for _ in range(500))


def test_swap_keeps_the_multiset_of_words():
    cfg = replace(OFF, p_swap=0.3)
    rng = np.random.default_rng(1)
    words = ["甲", "乙", "丙", "丁", "乙", "戊", "己", "庚", "辛", "壬"]
    moved = 0
    for _ in range(200):
        out, counts = augment_words(words, {}, cfg, rng)
        assert Counter(out) == Counter(words)
        assert counts["swap"] <= round(0.3 * len(words))
        moved += out != words
    assert moved > 150


def test_replacement_uses_only_listed_neighbours_above_the_threshold():
    neighbours = {"好看": [("精彩", 0.8), ("好玩", 0.6), ("难看", 0.4)], "书": [("本子", 0.3)]}
    cfg = replace(OFF, p_replace=1.0, min_similarity=0.5)
    rng = np.random.default_rng(2)
    seen = set()
    for _ in range(300):
        out, counts = augment_words(["书", "很", "好看"], neighbours, cfg, rng)
        assert out[:2] == ["书", "很"] and out[2] in {"精彩", "好玩"}
        assert counts["replace"] == 1
        seen.add(out[2])
    assert seen == {"精彩", "好玩"}


def test_nearest_neighbours_by_cosine_skip_non_chinese_and_low_similarity():
    words = ["好", "棒", "赞", "差", "，", "ok", "12"]
    matrix = np.array([[1.0, 0.0], [0.9, 0.1], [0.7, 0.7], [-1.0, 0.1],
                       [1.0, 0.01], [1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    found = nearest_neighbours(words, matrix, ["好", "差", "，", "ok", "缺"], k=3,
                               min_similarity=0.5, batch=1)
    assert set(found) == {"好"}  # 差 has no neighbour >= 0.5; punctuation, Latin, unknown skipped
    assert [w for w, _ in found["好"]] == ["棒", "赞"]  # best first; 差 too far, ，/ok never offered
    assert all(sim >= 0.5 for _, sim in found["好"])
    assert not {"，", "ok", "12"} & {w for w, _ in nearest_neighbours(
        words, matrix, words, k=6, min_similarity=-1.0)["好"]}
    assert replaceable("好看") and not replaceable("，") and not replaceable("ok") \
        and not replaceable("1997年")


@pytest.mark.parametrize(("ratio", "expected"), [(0.5, 20), (1.0, 40), (2.0, 80), (1.25, 50)])
def test_ratio_gives_the_expected_count(ratio, expected):
    cfg = replace(OFF, ratio=ratio, p_swap=0.5, p_delete=0.2)
    stats: dict = {}
    out = augment_rows(rows(), segment, {}, cfg, seed=0, stats=stats)
    assert stats["drawn"] == expected
    assert len(out) == expected - stats["dropped_identical"] and len(out) >= 0.9 * expected
    per_source = Counter(v["augmented_from"] for v in out)
    assert max(per_source.values()) <= int(np.ceil(ratio))


def test_variants_keep_the_fields_and_name_their_source():
    source = {r["id"]: r for r in rows()}
    out = augment_rows(rows(), segment, {}, replace(OFF, p_swap=0.5, p_delete=0.2), seed=3)
    assert out
    for variant in out:
        row = source[variant["augmented_from"]]
        assert variant["id"].startswith(f"{row['id']}-aug")
        assert variant["text"] != row["text"] and variant["text"] != join_words(row["text"].split())
        for key in ("label", "weight", "test_likeness"):
            assert variant[key] == row[key]
    assert len({v["id"] for v in out}) == len(out)
    no_ids = augment_rows([{"text": "甲 乙 丙 丁", "label": 1}], segment, {},
                          replace(OFF, p_swap=1.0), seed=0)
    assert no_ids and no_ids[0]["augmented_from"] == 0 and "id" not in no_ids[0]


def test_identical_variants_are_dropped():
    stats: dict = {}
    assert augment_rows(rows(), segment, {}, OFF, seed=0, stats=stats) == []
    assert stats["dropped_identical"] == stats["drawn"] == 40


def test_same_seed_same_output():
    cfg = replace(OFF, ratio=1.5, p_swap=0.2, p_delete=0.2, p_replace=0.5)
    neighbours = {"好看": [("精彩", 0.9)], "推荐": [("建议", 0.7)]}
    a = augment_rows(rows(), segment, neighbours, cfg, seed=7)
    assert a == augment_rows(rows(), segment, neighbours, cfg, seed=7)
    assert a != augment_rows(rows(), segment, neighbours, cfg, seed=8)


def test_join_words_keeps_a_space_between_latin_words():
    assert join_words(["very", "good", "，", "好", "iPhone", "4", "s"]) == "very good，好iPhone 4 s"


def _tiny_inputs(tmp_path):
    """A tokenized dir (a hand-written lexicon), word vectors and a training file."""
    from kexue.text.discovery import DiscoveryConfig
    from kexue.text.word_vectors import WordVectors

    lexicon = ["这本", "好看", "精彩", "内容", "丰富", "难看"]
    tok = tmp_path / "tokenized"
    tok.mkdir()
    (tok / "lexicon.tsv").write_text("word\tcount\tscore\n" + "".join(
        f"{w}\t5\t5\n" for w in lexicon) + "书\t1\t-5\n", encoding="utf-8")  # unknown chars: -6
    (tok / "config.json").write_text(json.dumps(
        {**DiscoveryConfig().__dict__}), encoding="utf-8")
    WordVectors(["这本", "好看", "精彩", "内容", "丰富", "难看"],
                np.array([[0, 0, 1], [1, 0, 0], [0.95, 0.1, 0], [0, 1, 0], [0.1, 0.9, 0],
                          [-1, 0, 0]])).save(tmp_path / "vectors")
    write_jsonl(tmp_path / "train.jsonl", [
        {"id": f"r{i}", "text": "这本书好看，内容丰富" if i % 2 else "这本书难看", "label": i % 2,
         "weight": 1.0} for i in range(20)])
    return tmp_path


PARAMS = ("augment: {ratio: 2.0, p_delete: 0.1, p_swap: 0.1, p_replace: 0.5, neighbours: 2, "
          "min_similarity: 0.5, seed: 0}\n")


def test_stage_writes_variants_and_metrics(tmp_path, monkeypatch):
    from kexue.stages import augment

    _tiny_inputs(tmp_path)
    (tmp_path / "params.yaml").write_text(PARAMS)
    monkeypatch.chdir(tmp_path)
    args = ["--data", "train.jsonl", "--vectors", "vectors", "--tokenized", "tokenized",
            "--out", "out/reviews/train.jsonl", "--metrics", "metrics/augment.json"]
    assert augment.main(args) == 0
    variants = read_jsonl(tmp_path / "out/reviews/train.jsonl")
    metrics = read_json(tmp_path / "metrics/augment.json")
    assert metrics["source_rows"] == 20 and metrics["variants"] == len(variants) > 0
    assert set(metrics["operations"]) == {"replace", "swap", "delete"}
    assert metrics["operations"]["replace"] > 0
    assert any("精彩" in v["text"] for v in variants)  # 好看 -> 精彩 (cosine ~0.99)
    assert not any("好看" in v["text"] and v["label"] == 0 for v in variants)  # 难看 has no neighbour


@pytest.mark.parametrize(("change", "key"), [({"ratio": -1.0}, "augment.ratio"),
                                              ({"p_swap": "often"}, "augment.p_swap"),
                                              ({"neighbors": 5}, "augment.neighbors")])
def test_stage_rejects_a_bad_param(tmp_path, monkeypatch, capsys, change, key):
    from kexue.stages import augment

    section = {**yaml.safe_load(PARAMS)["augment"], **change}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"augment": section}))
    monkeypatch.chdir(tmp_path)
    assert augment.main(["--out", str(tmp_path / "out.jsonl")]) == 2
    err = capsys.readouterr().err
    assert key in err
    assert not (tmp_path / "out.jsonl").exists()


def test_sentiment_trains_on_the_variants_when_asked(tmp_path):
    from kexue.families import sentiment
    from kexue.train import FitConfig, OptimizerConfig

    cfg = sentiment.Config(
        maxlen=16, min_count=1, bigrams=False, bigram_min_count=1, embedding_dim=4, encoder="gru",
        units=4, pooling="max", dropout=0.0, members=1, sample_weights="density_ratio",
        augment=True,
        fit=FitConfig(epochs=1, batch_size=8, seed=0, deterministic=True, distribute="none",
                      optimizer=OptimizerConfig(
                          name="adam", learning_rate=0.01, schedule={}, weight_decay=0.0,
                          global_clipnorm=5.0, gradient_accumulation_steps=1, use_ema=False,
                          ema_momentum=0.99, lr_multipliers={}, lookahead_k=0,
                          lookahead_alpha=0.5)))
    data = tmp_path / "data"
    for split, n in (("train", 16), ("valid", 8)):
        write_jsonl(data / f"{split}.jsonl", [
            {"id": f"{split}{i}", "text": "这书很好看" if i % 2 else "这书很难看", "label": i % 2,
             "weight": 1.0} for i in range(n)])
    with pytest.raises(FileNotFoundError, match="dvc repro augment"):
        sentiment.train(cfg, data, tmp_path / "model", None, augmented_dir=tmp_path / "missing")
    aug = tmp_path / "augmented"
    write_jsonl(aug / "train.jsonl", [
        {"id": f"train{i}-aug0", "text": "书很好看" if i % 2 else "书很难看", "label": i % 2,
         "weight": 2.0, "augmented_from": f"train{i}"} for i in range(6)])
    info = sentiment.train(cfg, data, tmp_path / "model", None, augmented_dir=aug)
    assert info["train_examples"] == 16 + 6


def test_project_params_validate():
    from pathlib import Path

    from kexue.config import load_section

    params = Path(__file__).resolve().parents[1] / "params.yaml"
    assert load_section("augment", AugmentConfig, params).ratio > 0
