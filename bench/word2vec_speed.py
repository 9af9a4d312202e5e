"""Keras Word2Vec vs gensim Word2Vec words/s in one process, back to back, same settings.

The pipeline measures the two in separate stages (train_word2vec, baselines_word2vec); on a
shared machine the load can change between them. This bench trains both here, alternating
``--rounds`` times, on the tokenized corpora (run `dvc repro tokenize` first) with the
`word2vec` params (``--epochs`` overrides the epochs, default 1), and prints each words/s and
the median ratio.

    .venv/bin/python -m bench.word2vec_speed [--epochs 1 --rounds 2]

Result with the defaults (2 cores shared with another engineer's TensorFlow training, 1 epoch so
the Keras figure includes its XLA compile): ratios 0.42, 0.63, 0.66, 0.61 over four rounds
(Keras 164k-170k words/s, gensim 255k-278k). The pipeline's 5-epoch figure (stages
train_word2vec and baselines_word2vec of the same run) was 180.5k vs 234.3k, 0.77.

Those figures were loaded twice over: every epoch ended with a short batch whose size changed
with the epoch's subsampling, and XLA compiled a program for it each time (seconds per epoch).
With only full batches, on a quiet machine (`--epochs 5 --rounds 3`): ratios 0.474, 0.626,
0.682 (Keras 254k, 345k, 351k words/s; gensim 536k, 552k, 515k) — the first round of a process
also pays TensorFlow's start-up. Before that change, the same quiet machine gave 0.425 and
0.395 (Keras 231k/217k, gensim 544k/550k). The pipeline run after it: 287.0k vs 487.6k, 0.589.
"""

import argparse
import dataclasses
import json
import statistics
import sys

from kexue.config import load_section
from kexue.families.word2vec import Config, gensim_vectors, train_vectors
from kexue.text.tokenized import sentences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/tokenized")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    cfg = dataclasses.replace(load_section("word2vec", Config), epochs=args.epochs)
    corpus = list(sentences(args.data))
    rows = []
    for _ in range(args.rounds):
        _, ours = train_vectors(cfg, corpus)
        _, theirs = gensim_vectors(cfg, corpus)
        rows.append({"keras_words_per_second": ours["words_per_second"],
                     "gensim_words_per_second": theirs["words_per_second"],
                     "ratio": round(ours["words_per_second"] / theirs["words_per_second"], 3)})
        print(json.dumps(rows[-1]), file=sys.stderr)
    print(json.dumps({"config": dataclasses.asdict(cfg), "rounds": rows,
                      "median_ratio": statistics.median(r["ratio"] for r in rows)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
