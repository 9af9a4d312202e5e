"""Stage `prepare_articles`: People's Daily articles (headline + body lines, recovered from the
order of the lines, see :mod:`kexue.corpora.articles`), split chronologically by article."""

import sys
from dataclasses import dataclass, field

from kexue.corpora.articles import prepare_articles
from kexue.stages import _prepare


@dataclass(frozen=True)
class Params:
    test_fraction: float = field(metadata={"min": 0.01, "max": 0.5})
    valid_fraction: float = field(metadata={"min": 0.01, "max": 0.5})
    max_headline_chars: int = field(metadata={"min": 1})
    min_body_lines: int = field(metadata={"min": 1})
    limit_articles: int = field(metadata={"min": 0})


def build(args, params: Params):
    split = prepare_articles(args.raw, params.test_fraction, params.valid_fraction,
                             params.max_headline_chars, params.min_body_lines,
                             params.limit_articles)
    return _prepare.split_parts(split), split.counts, {}


def main(argv: list[str] | None = None) -> int:
    return _prepare.run("prepare_articles", __doc__, Params, ["199801.txt"], build, argv,
                        raw="data/raw/people_daily", out="data/prepared/articles")


if __name__ == "__main__":
    sys.exit(main())
