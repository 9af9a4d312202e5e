"""Chinese word segmentation as b/m/e/s character tagging with a CRF (People's Daily 1998).

苏剑林, "简明条件随机场CRF介绍（附带纯Keras实现）" (kexue.fm, 2018) trains exactly this: 4-tag
segmentation, an encoder per character, a CRF over the tag path. The model and training live in
:mod:`kexue.tagging`; this module adds the labels, training on the corpus and SIGHAN scoring with
inference speed beside jieba's. The peers are in :mod:`kexue.peers.segment`. The model and every
peer also give per-line word counts (:func:`kexue.spans.word_counts`), so the evaluation compares
kexue with the peer strongest on valid by a paired bootstrap (:mod:`kexue.comparison`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from kexue.corpora.people_daily import bmes_tags, load_rows, segmentation_scores, words_from_bmes
from kexue.peers.dictionary import chars_per_second, jieba_cutter
from kexue.spans import word_counts, word_f1
from kexue.tagger import Tagger, tag_confusion_rows
from kexue.tagging import TaggerConfig, train_tagger

TAGS = ["b", "m", "e", "s"]
Config = TaggerConfig
_SPACE = re.compile(r"\s+")


def _labelled(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    return [r["text"] for r in rows], [bmes_tags(r["words"]) for r in rows]


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
    _, jieba_speed = chars_per_second(jieba_cutter(hmm=True), test_texts)
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
