"""Stage `prepare_people_daily`: People's Daily lines with words, POS and entity spans, split
chronologically (train, then valid, then test)."""

import sys
from dataclasses import dataclass, field

from kexue.corpora.people_daily import prepare_people_daily
from kexue.stages import _prepare


@dataclass(frozen=True)
class Params:
    test_fraction: float = field(metadata={"min": 0.01, "max": 0.5})
    valid_fraction: float = field(metadata={"min": 0.01, "max": 0.5})
    limit_lines: int = field(metadata={"min": 0})


def build(args, params: Params):
    split = prepare_people_daily(args.raw, params.test_fraction, params.valid_fraction,
                                 params.limit_lines)
    return _prepare.split_parts(split), split.counts, {}


def main(argv: list[str] | None = None) -> int:
    return _prepare.run("prepare_people_daily", __doc__, Params, ["199801.txt"], build, argv,
                        raw="data/raw/people_daily", out="data/prepared/people_daily")


if __name__ == "__main__":
    sys.exit(main())
