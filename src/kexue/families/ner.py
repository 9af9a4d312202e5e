"""Named entities (person, place, organisation) as BIO character tagging with a CRF.

Labels come from People's Daily 1998's POS tags: nr → PER (a surname and a given name tagged nr
in sequence are one person), ns → LOC, nt → ORG. The network is :mod:`kexue.tagging`'s, the
same as the segmenter's; scoring is exact span match, per type and micro-averaged
(:func:`kexue.spans.entity_scores`). The peers are in :mod:`kexue.peers.ner`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from kexue.corpora.people_daily import bio_tags, load_rows, spans_from_bio
from kexue.spans import KINDS, Span, entity_f1, entity_scores, span_counts
from kexue.tagger import Tagger, tag_confusion_rows
from kexue.tagging import TaggerConfig, train_tagger

TAGS = ["O", *[f"{prefix}-{kind}" for kind in KINDS for prefix in ("B", "I")]]
Config = TaggerConfig


def labelled(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    return [r["text"] for r in rows], [bio_tags(len(r["text"]), map(tuple, r["entities"]))
                                       for r in rows]


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None, family: str = "ner") -> dict:
    data_dir = Path(data_dir)
    train_rows = load_rows(data_dir, "train")
    return train_tagger(cfg, family, TAGS, labelled(train_rows),
                        labelled(load_rows(data_dir, "valid")), model_dir, live_dir, resume_root,
                        [data_dir / "train.jsonl", data_dir / "valid.jsonl"], entity_f1,
                        [r["words"] for r in train_rows])


class Recognizer:
    """A trained recogniser: ``spans(texts)`` → ``(start, end, type)`` character spans per text."""

    def __init__(self, model_dir: str | Path):
        self.tagger = Tagger(model_dir, family="ner")

    def spans(self, texts: Sequence[str]) -> list[list[Span]]:
        return [spans_from_bio(tags) for tags in self.tagger.tag(texts)]


def evaluate(model_dir: str | Path, data_dir: str | Path) -> tuple[dict, list[dict]]:
    recognizer = Recognizer(model_dir)
    metrics: dict = {"items": {"metric": "f1", "kind": "f1"}}  # per line, for the bootstrap
    seconds = chars = 0.0
    for split in ("test", "valid"):
        rows = load_rows(data_dir, split)
        texts = [r["text"] for r in rows]
        start = time.perf_counter()
        predicted = recognizer.spans(texts)
        if split == "test":
            seconds, chars = time.perf_counter() - start, sum(len(t) for t in texts)
        metrics[split] = entity_scores([r["entities"] for r in rows], predicted)
        metrics["items"][split] = span_counts([r["entities"] for r in rows], predicted)
        if split == "test":
            gold_tags = [bio_tags(len(t), map(tuple, r["entities"])) for t, r in zip(texts, rows, strict=True)]
            pred_tags = [bio_tags(len(t), spans) for t, spans in zip(texts, predicted, strict=True)]
            confusion = tag_confusion_rows(gold_tags, pred_tags)
    info = recognizer.tagger.info
    metrics["cost"] = {"train_seconds": info["train_seconds"], "params": info["params"],
                       "train_chars_per_second": info["chars_per_second"],
                       "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"],
                       "inference_chars_per_second": round(chars / seconds, 1)}
    return metrics, confusion
