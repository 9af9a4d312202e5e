"""Stage `prepare_people_daily`: People's Daily lines with words, POS and entity spans, split
chronologically (train, then valid, then test)."""

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kexue.config import ConfigError, load_section
from kexue.corpora.people_daily import prepare_people_daily
from kexue.corpora.sources import AcquireError, add_no_verify, verify_raw
from kexue.io import CorruptFileError, atomic_dir, write_json, write_jsonl


@dataclass(frozen=True)
class Params:
    test_fraction: float = field(metadata={"min": 0.01, "max": 0.5})
    valid_fraction: float = field(metadata={"min": 0.01, "max": 0.5})
    limit_lines: int = field(metadata={"min": 0})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", default="data/raw/people_daily")
    parser.add_argument("--out", default="data/prepared/people_daily")
    parser.add_argument("--metrics", default="metrics/people_daily_data.json")
    add_no_verify(parser)
    args = parser.parse_args(argv)
    try:
        params = load_section("prepare_people_daily", Params)
    except ConfigError as err:
        print(f"prepare_people_daily: {err}", file=sys.stderr)
        return 2
    try:
        if not args.no_verify:
            verify_raw(args.raw, ["199801.txt"])
        split = prepare_people_daily(args.raw, params.test_fraction, params.valid_fraction,
                                     params.limit_lines)
    except (AcquireError, CorruptFileError, FileNotFoundError) as err:
        print(f"prepare_people_daily: {err}", file=sys.stderr)
        return 1
    with atomic_dir(args.out) as tmp:
        for name in ("train", "valid", "test"):
            write_jsonl(Path(tmp) / f"{name}.jsonl", getattr(split, name))
    write_json(args.metrics, split.counts)
    print(f"prepare_people_daily: {split.counts['splits']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
