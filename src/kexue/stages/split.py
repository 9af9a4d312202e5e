"""Stage `split`: re-pick the validation set of each corpus from its training pool, by test-likeness
(adversarial validation, kexue.text.advsplit) or at random; every row gets its test-likeness and
density-ratio weight. The test sets are unchanged (reviews: the shifted tail of each file; People's
Daily: the month's last lines)."""

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kexue.config import ConfigError, load_section
from kexue.io import atomic_dir, read_jsonl, write_json, write_jsonl
from kexue.text.advsplit import split_pool


@dataclass(frozen=True)
class Params:
    valid: Literal["random", "adversarial"]  # how the validation set is picked from the training pool
    valid_size: float = field(metadata={"min": 0.01, "max": 0.5})  # its share of the pool
    folds: int = field(metadata={"min": 2})  # cross-fitting folds of the discriminator
    ngram_max: int = field(metadata={"min": 1})  # character n-grams 1..ngram_max
    max_weight: float = field(metadata={"min": 1.0})  # density-ratio weights clipped to [1/max, max]
    seed: int


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prepared", default="data/prepared", help="holds reviews/ and people_daily/")
    parser.add_argument("--out", default="data/split")
    parser.add_argument("--metrics", default="metrics/split.json")
    args = parser.parse_args(argv)
    try:
        params = load_section("split", Params)
    except ConfigError as err:
        print(f"split: {err}", file=sys.stderr)
        return 2
    metrics = {}
    with atomic_dir(args.out) as tmp:
        for corpus in ("reviews", "people_daily"):
            src = Path(args.prepared) / corpus
            pool = read_jsonl(src / "train.jsonl") + read_jsonl(src / "valid.jsonl")
            splits, metrics[corpus] = split_pool(
                pool, read_jsonl(src / "test.jsonl"), params.valid, params.valid_size,
                params.folds, params.ngram_max, params.max_weight, params.seed)
            (Path(tmp) / corpus).mkdir()
            for name, rows in splits.items():
                write_jsonl(Path(tmp) / corpus / f"{name}.jsonl", rows)
            print(f"split: {corpus} {metrics[corpus]}", file=sys.stderr)
    write_json(args.metrics, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
