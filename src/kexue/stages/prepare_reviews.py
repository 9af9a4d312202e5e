"""Stage `prepare_reviews`: deduplicate the reviews, drop label conflicts, split."""

import sys
from dataclasses import dataclass, field

from kexue.corpora.reviews import LABEL_FILES, prepare_reviews
from kexue.stages import _prepare


@dataclass(frozen=True)
class Params:
    test_fraction: float = field(metadata={"min": 0.01, "max": 0.9})
    valid_fraction: float = field(metadata={"min": 0.01, "max": 0.9})
    seed: int
    limit_per_label: int = field(metadata={"min": 0})


def build(args, params: Params):
    split = prepare_reviews(args.raw, params.test_fraction, params.valid_fraction, params.seed,
                            params.limit_per_label)
    return _prepare.split_parts(split), split.counts, {}


def main(argv: list[str] | None = None) -> int:
    return _prepare.run("prepare_reviews", __doc__, Params, LABEL_FILES.values(), build, argv,
                        raw="data/raw/reviews", out="data/prepared/reviews")


if __name__ == "__main__":
    sys.exit(main())
