"""Chinese word segmentation as b/m/e/s character tagging with a CRF (People's Daily 1998).

苏剑林, "简明条件随机场CRF介绍（附带纯Keras实现）" (kexue.fm, 2018) trains exactly this: 4-tag
segmentation, an encoder per character, a CRF over the tag path. The model and training live in
:mod:`kexue.tagging`; this module adds the labels, SIGHAN scoring and the peers: jieba (HMM on
and off), forward maximum matching with the training vocabulary, and the same network with a
per-character softmax instead of the CRF. The model and every peer also give per-line word counts
(:func:`kexue.spans.word_counts`), so the evaluation compares kexue with the peer
strongest on valid by a paired bootstrap (:mod:`kexue.comparison`).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kexue.config import require_network
from kexue.corpora.people_daily import bmes_tags, load_rows, segmentation_scores, words_from_bmes
from kexue.spans import word_counts
from kexue.tagging import Tagger, TaggerConfig, tag_confusion_rows, train_tagger

TAGS = ["b", "m", "e", "s"]
Config = TaggerConfig
_SPACE = re.compile(r"\s+")


def _labelled(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    return [r["text"] for r in rows], [bmes_tags(r["words"]) for r in rows]


def word_f1(gold: list[list[str]], predicted: list[list[str]]) -> float:
    """SIGHAN word F1 of b/m/e/s tag sequences (words are compared as character spans)."""
    def words(tags):
        return words_from_bmes(["x"] * len(tags), tags)

    return segmentation_scores([words(t) for t in gold], [words(t) for t in predicted])["f1"]


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None, family: str = "segment") -> dict:
    data_dir = Path(data_dir)
    train_rows = load_rows(data_dir, "train")
    return train_tagger(cfg, family, TAGS, _labelled(train_rows),
                        _labelled(load_rows(data_dir, "valid")), model_dir, live_dir, resume_root,
                        [data_dir / "train.jsonl", data_dir / "valid.jsonl"], word_f1,
                        [r["words"] for r in train_rows])


class Segmenter:
    """A trained segmenter: ``cut(texts)`` → words per text. Whitespace separates words and is
    dropped, as in the corpus."""

    def __init__(self, model_dir: str | Path):
        self.tagger = Tagger(model_dir, family="segment")

    def cut(self, texts: Sequence[str]) -> list[list[str]]:
        runs = [[run for run in _SPACE.split(text) if run] for text in texts]
        flat = [run for text_runs in runs for run in text_runs]
        tagged = iter(self.tagger.tag(flat))
        out = []
        for text_runs in runs:
            words: list[str] = []
            for run in text_runs:
                words.extend(words_from_bmes(run, next(tagged)))
            out.append(words)
        return out


def max_match(text: str, vocab: set[str], longest: int) -> list[str]:
    """Forward maximum matching: at each position take the longest vocabulary word that
    starts there (a single character when none does)."""
    words, i = [], 0
    while i < len(text):
        for size in range(min(longest, len(text) - i), 0, -1):
            if size == 1 or text[i : i + size] in vocab:
                words.append(text[i : i + size])
                i += size
                break
    return words


def _chars_per_second(cut, texts: Sequence[str]) -> tuple[list[list[str]], float]:
    start = time.perf_counter()
    words = cut(texts)
    seconds = time.perf_counter() - start
    return words, round(sum(len(t) for t in texts) / seconds, 1)


def _jieba(hmm: bool):
    import jieba

    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()  # load the dictionary now, not inside the timing
    return lambda texts: [[w for w in tokenizer.cut(t, HMM=hmm) if not w.isspace()] for t in texts]


def evaluate(model_dir: str | Path, data_dir: str | Path) -> tuple[dict, list[dict]]:
    """SIGHAN scores on valid and test, per-line word counts (``items``, for the comparison),
    inference speed next to jieba's in the same process."""
    segmenter = Segmenter(model_dir)
    vocab = {w for r in load_rows(data_dir, "train") for w in r["words"]}
    metrics: dict = {"items": {"metric": "f1", "kind": "f1"}}  # per line, for the bootstrap
    for split in ("test", "valid"):
        rows = load_rows(data_dir, split)
        gold = [r["words"] for r in rows]
        predicted = segmenter.cut([r["text"] for r in rows])
        metrics[split] = segmentation_scores(gold, predicted, vocab)
        metrics["items"][split] = word_counts(gold, predicted)
        if split == "test":
            confusion = tag_confusion_rows([bmes_tags(w) for w in gold],
                                           [bmes_tags(w) for w in predicted])
    test_texts = [r["text"] for r in load_rows(data_dir, "test")]
    speed = segmenter.tagger.throughput(test_texts)
    _, jieba_speed = _chars_per_second(_jieba(hmm=True), test_texts)
    info = segmenter.tagger.info
    metrics["cost"] = {
        "train_seconds": info["train_seconds"], "params": info["params"],
        "train_chars_per_second": info["chars_per_second"], "epochs_run": info["epochs_run"],
        "best_epoch": info["best_epoch"],
        "inference_chars_per_second": speed["chars_per_second"],
        "jieba_chars_per_second": jieba_speed,
        "inference_speed_ratio_to_jieba": round(speed["chars_per_second"] / jieba_speed, 3),
    }
    return metrics, confusion


@dataclass(frozen=True)
class BaselineConfig:
    jieba: bool  # jieba 0.42 with its own dictionary, HMM for unknown words on and off
    max_match_longest: int = field(metadata={"min": 1})  # longest word tried by maximum matching (0 = off)
    softmax_ablation: bool  # train the `segment` network with a per-character softmax instead of the CRF


def baselines(cfg: BaselineConfig, data_dir: str | Path, work_dir: str | Path | None = None,
              network: Config | None = None) -> dict:
    """Peers on the same valid and test lines, each with its SIGHAN scores, characters per second
    and per-line word counts (``items``, for the comparison)."""
    data_dir = Path(data_dir)
    train_rows = load_rows(data_dir, "train")
    vocab = {w for r in train_rows for w in r["words"]}
    peers: dict = {}
    splits = {s: load_rows(data_dir, s) for s in ("test", "valid")}

    def score(name: str, cut, extra: dict | None = None) -> None:
        peers[name] = {"items": {}}
        for split, rows in splits.items():
            words, speed = _chars_per_second(cut, [r["text"] for r in rows])
            gold = [r["words"] for r in rows]
            peers[name][split] = segmentation_scores(gold, words, vocab)
            peers[name]["items"][split] = word_counts(gold, words)
            if split == "test":
                peers[name]["chars_per_second"] = speed
        peers[name].update(extra or {})

    if cfg.jieba:
        score("jieba_hmm", _jieba(hmm=True))
        score("jieba_no_hmm", _jieba(hmm=False))
    if cfg.max_match_longest:
        score("max_match", lambda texts: [max_match(t, vocab, cfg.max_match_longest) for t in texts])
    if cfg.softmax_ablation:
        import tempfile

        net = dataclasses.replace(require_network(network, "segment"), head="softmax")
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            info = train(net, data_dir, Path(tmp) / "model", None, None, family="segment_softmax")
            segmenter = Segmenter(Path(tmp) / "model")
            score("softmax_ablation", segmenter.cut,
                  {"train_seconds": info["train_seconds"], "epochs_run": info["epochs_run"]})
    return peers
