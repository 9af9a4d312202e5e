"""Stage `augment`: label-preserving variants of the review training texts (word deletion, swaps,
replacement by word-vector neighbours; kexue.text.augment). Writes only the variants; the
sentiment family adds them to its training set when `sentiment.augment` is true."""

import argparse
import sys

from kexue.config import ConfigError, load_section
from kexue.io import write_json
from kexue.text.augment import AugmentConfig, augment_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/split/reviews/train.jsonl")
    parser.add_argument("--vectors", default="models/word2vec")
    parser.add_argument("--tokenized", default="data/tokenized", help="the learnt lexicon")
    parser.add_argument("--out", default="data/augmented/reviews/train.jsonl")
    parser.add_argument("--metrics", default="metrics/augment.json")
    args = parser.parse_args(argv)
    try:
        params = load_section("augment", AugmentConfig)
    except ConfigError as err:
        print(f"augment: {err}", file=sys.stderr)
        return 2
    metrics = augment_file(args.data, args.vectors, args.tokenized, args.out, params)
    write_json(args.metrics, metrics)
    print(f"augment: {metrics['variants']} variants of {metrics['source_rows']} rows "
          f"{metrics['operations']} in {metrics['seconds']}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
