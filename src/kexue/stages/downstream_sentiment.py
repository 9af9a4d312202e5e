"""Stage `downstream_sentiment`: the sentiment family trained once per word-embedding choice
(`sentiment.embeddings` = none, word2vec, glove) at a small cost (one member, few epochs, the
rest of the `sentiment` section unchanged); metrics/sentiment_embeddings.json holds each one's
test and valid figures (``test`` = word2vec, ``peers`` = the others)."""

import argparse
import dataclasses
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kexue.config import ConfigError, load_section
from kexue.io import write_json


@dataclass(frozen=True)
class Params:
    embeddings: list[Literal["none", "word2vec", "glove"]]  # one model per choice; the first is the headline
    members: int = field(metadata={"min": 1})  # seed-ensemble size of each model
    epochs: int = field(metadata={"min": 1})  # training epochs of each model (best on valid kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/prepared/reviews")
    parser.add_argument("--vectors-root", default="models")
    parser.add_argument("--tokenized", default="data/tokenized")
    parser.add_argument("--out", default="metrics/sentiment_embeddings.json")
    args = parser.parse_args(argv)
    from kexue.families import sentiment

    try:
        params = load_section("downstream_sentiment", Params)
        base = load_section("sentiment", sentiment.Config)
    except ConfigError as err:
        print(f"downstream_sentiment: {err}", file=sys.stderr)
        return 2
    if not params.embeddings:
        print("downstream_sentiment: embeddings is empty: list at least one of none, word2vec, "
              "glove", file=sys.stderr)
        return 2
    results = {}
    for choice in params.embeddings:
        cfg = dataclasses.replace(base, embeddings=choice, members=params.members,
                                  fit=dataclasses.replace(base.fit, epochs=params.epochs))
        with tempfile.TemporaryDirectory(prefix="downstream-") as tmp:
            info = sentiment.train(cfg, args.data, Path(tmp) / "model", None, None,
                                   vectors_root=args.vectors_root, tokenized_dir=args.tokenized)
            metrics, _ = sentiment.evaluate(Path(tmp) / "model", args.data)
        results[choice] = {"test": metrics["test"], "valid": metrics["valid"],
                           "cost": {"train_seconds": info["train_seconds"],
                                    "params": info["params"], "best_epoch": info["best_epoch"]}}
        results[choice]["test"].pop("confusion", None)
        print(f"downstream_sentiment: {choice} test {results[choice]['test']}", file=sys.stderr)
    head, *rest = params.embeddings
    out = {"test": results[head]["test"], "valid": results[head]["valid"],
           "peers": {f"embeddings_{name}": results[name] for name in rest},
           "cost": results[head]["cost"], "headline": f"embeddings_{head}",
           "setting": {"members": params.members, "epochs": params.epochs}}
    write_json(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
