"""Stage `evaluate_vectors`: neighbour POS agreement@k of kexue's word2vec and glove vectors on
the same word sets as the gensim peer; writes metrics/word2vec.json and metrics/glove.json, each
with the other two beside it."""

import argparse
import sys
from pathlib import Path

from kexue.config import ConfigError, load_section
from kexue.families.word2vec import BaselineConfig, evaluate
from kexue.io import read_json, write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/tokenized")
    parser.add_argument("--models", nargs="+", default=["models/word2vec", "models/glove"],
                        help="vector folders; each one's metrics go to <metrics>/<folder name>.json")
    parser.add_argument("--peers", default="models/baselines/word2vec.json")
    parser.add_argument("--metrics", default="metrics")
    args = parser.parse_args(argv)
    try:
        cfg = load_section("baselines.word2vec", BaselineConfig)
    except ConfigError as err:
        print(f"evaluate_vectors: {err}", file=sys.stderr)
        return 2
    results = evaluate({Path(m).name: m for m in args.models}, args.data, read_json(args.peers), cfg)
    for name, metrics in results.items():
        write_json(Path(args.metrics) / f"{name}.json", metrics)
        print(f"evaluate_vectors: {name} test {metrics['test']} cost {metrics['cost']}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
