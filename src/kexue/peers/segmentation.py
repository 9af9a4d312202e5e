"""What the open- and closed-track segmentation peers share: a segmenter scored on People's Daily
lines the way the network is (SIGHAN scores per split, test characters per second, per-line word
counts for the paired bootstrap). Keras-free."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from kexue.corpora.people_daily import segmentation_scores
from kexue.peers.dictionary import chars_per_second
from kexue.spans import word_counts


def score_segmenter(cut: Callable[[list[str]], list[list[str]]],
                    splits: Mapping[str, Sequence[dict]], vocab: set[str]) -> dict:
    """``cut`` (texts → words per text) on each split's rows (``{"text", "words"}``): its scores,
    ``items`` (per-line word counts) per split, and ``chars_per_second`` on test."""
    result: dict = {"items": {}}
    for split, rows in splits.items():
        words, speed = chars_per_second(cut, [r["text"] for r in rows])
        gold = [r["words"] for r in rows]
        result[split] = segmentation_scores(gold, words, vocab)
        result["items"][split] = word_counts(gold, words)
        if split == "test":
            result["chars_per_second"] = speed
    return result
