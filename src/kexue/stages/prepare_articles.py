"""Stage `prepare_articles`: People's Daily articles (headline + body lines, recovered from the
order of the lines, see :mod:`kexue.corpora.articles`), split chronologically by article."""

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kexue.config import ConfigError, load_section
from kexue.corpora.articles import prepare_articles
from kexue.corpora.sources import AcquireError, add_no_verify, verify_raw
from kexue.io import CorruptFileError, atomic_dir, write_json, write_jsonl


@dataclass(frozen=True)
class Params:
    test_fraction: float = field(metadata={"min": 0.01, "max": 0.5})
    valid_fraction: float = field(metadata={"min": 0.01, "max": 0.5})
    max_headline_chars: int = field(metadata={"min": 1})
    min_body_lines: int = field(metadata={"min": 1})
    limit_articles: int = field(metadata={"min": 0})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", default="data/raw/people_daily")
    parser.add_argument("--out", default="data/prepared/articles")
    parser.add_argument("--metrics", default="metrics/articles_data.json")
    add_no_verify(parser)
    args = parser.parse_args(argv)
    try:
        params = load_section("prepare_articles", Params)
    except ConfigError as err:
        print(f"prepare_articles: {err}", file=sys.stderr)
        return 2
    try:
        if not args.no_verify:
            verify_raw(args.raw, ["199801.txt"])
        split = prepare_articles(args.raw, params.test_fraction, params.valid_fraction,
                                 params.max_headline_chars, params.min_body_lines,
                                 params.limit_articles)
    except (AcquireError, CorruptFileError, FileNotFoundError) as err:
        print(f"prepare_articles: {err}", file=sys.stderr)
        return 1
    with atomic_dir(args.out) as tmp:
        for name in ("train", "valid", "test"):
            write_jsonl(Path(tmp) / f"{name}.jsonl", getattr(split, name))
    write_json(args.metrics, split.counts)
    print(f"prepare_articles: {split.counts['splits']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
