"""Stage `tokenize`: learn a lexicon by word discovery from the raw text of both corpora (no
labels, no word list), segment them with it, score it against the People's Daily gold next to
jieba. Digit, Latin and punctuation runs are pre-tokenised by rule (see kexue.text.tokenized)."""

import argparse
import sys
from dataclasses import dataclass, field

from kexue.config import ConfigError, load_section
from kexue.corpora.reviews import LABEL_FILES
from kexue.corpora.sources import AcquireError, add_no_verify, verify_raw
from kexue.io import CorruptFileError, write_json
from kexue.stages.prepare_people_daily import Params as PeopleDailyParams
from kexue.stages.prepare_reviews import Params as ReviewParams
from kexue.text.discovery import DiscoveryConfig
from kexue.text.tokenized import tokenize_corpora


@dataclass(frozen=True)
class Params:
    max_word_len: int = field(metadata={"min": 1, "max": 12})  # longest candidate word
    min_count: int = field(metadata={"min": 1})  # a candidate must occur this often
    word_penalty: float  # fixed cost per word (bias against cutting)
    lm_weight: float = field(metadata={"min": 0.0})  # weight of the unigram log P(w) term
    number_suffixes: str  # characters glued to a digit run (PKU: 1997年, 1月)
    reviews: bool  # learn from the review lines too (else People's Daily only)
    jieba: bool  # score jieba (HMM on / off) on the same lines as the peer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people-daily", default="data/raw/people_daily")
    parser.add_argument("--reviews", default="data/raw/reviews")
    parser.add_argument("--out", default="data/tokenized")
    parser.add_argument("--metrics", default="metrics/tokenize.json")
    add_no_verify(parser)
    args = parser.parse_args(argv)
    try:
        params = load_section("tokenize", Params)
        split = load_section("prepare_people_daily", PeopleDailyParams)
        reviews = load_section("prepare_reviews", ReviewParams)
    except ConfigError as err:
        print(f"tokenize: {err}", file=sys.stderr)
        return 2
    cfg = DiscoveryConfig(params.max_word_len, params.min_count, params.word_penalty,
                          params.lm_weight, params.number_suffixes)
    try:
        if not args.no_verify:
            verify_raw(args.people_daily, ["199801.txt"])
            if params.reviews:
                verify_raw(args.reviews, LABEL_FILES.values())
        metrics = tokenize_corpora(cfg, args.people_daily, args.reviews, args.out,
                                   split.test_fraction, split.valid_fraction, split.limit_lines,
                                   reviews.limit_per_label, params.reviews, params.jieba)
    except (AcquireError, CorruptFileError, FileNotFoundError) as err:
        print(f"tokenize: {err}", file=sys.stderr)
        return 1
    write_json(args.metrics, metrics)
    peers = {k: v["test"]["f1"] for k, v in metrics["peers"].items()}
    print(f"tokenize: test F1 {metrics['test']['f1']} (peers {peers}), lexicon "
          f"{metrics['lexicon']['size']}, entropy {metrics['entropy']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
