"""Overhead of each optimizer wrapper on the sentiment model: steps/s with and without, in one run.

Same model, same 40 batches of real reviews for every variant, after 5 warm-up batches (tracing);
variants are interleaved over ``--repeats`` rounds and the median is reported. Needs
``data/prepared/reviews`` (run the pipeline first).

    python -m bench.optimizer_overhead --repeats 2
"""

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

VARIANTS = {
    "plain adam": {},
    "lr multipliers": {"lr_multipliers": {"char_embedding": 0.1, "bigram_embedding": 0.5}},
    "lookahead k=5": {"lookahead_k": 5},
    "keras ema": {"use_ema": True},
    "keras accumulation x2": {"gradient_accumulation_steps": 2},
    "piecewise-linear schedule": {"schedule": {100: 1.0, 1000: 0.1}},
    "all of the above": {"lr_multipliers": {"char_embedding": 0.1}, "lookahead_k": 5,
                         "use_ema": True, "gradient_accumulation_steps": 2,
                         "schedule": {100: 1.0, 1000: 0.1}},
}


def steps_per_second(cfg, batches, vocab_sizes, overrides, warmup=5, steps=40) -> float:
    import keras

    from kexue.families import sentiment
    from kexue.train import build_optimizer

    keras.utils.set_random_seed(0)
    opt_cfg = dataclasses.replace(cfg.fit.optimizer, **overrides)
    model = sentiment.build_model(cfg, *vocab_sizes)
    model.compile(optimizer=build_optimizer(opt_cfg, model), loss="binary_crossentropy")
    for i in range(warmup):
        model.train_on_batch(*batches[i])
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        model.train_on_batch(*batches[i % len(batches)])
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    data = Path("data/prepared/reviews")
    if not (data / "train.jsonl").is_file():
        sys.exit("bench: data/prepared/reviews missing; run `dvc repro prepare_reviews` first")
    from kexue.batches import SequenceBatches
    from kexue.config import load_section
    from kexue.families import sentiment
    from kexue.io import read_jsonl
    from kexue.text.vocab import Vocab

    cfg = load_section("sentiment", sentiment.Config)
    rows = read_jsonl(data / "train.jsonl")[:4000]
    texts = [r["text"] for r in rows]
    vocab = Vocab.build(sentiment.tokens(t) for t in texts)
    pairs = Vocab.build(sentiment.bigrams(sentiment.tokens(t)) for t in texts)
    ds = SequenceBatches(sentiment.encode(vocab, texts, cfg.maxlen, pairs),
                         [r["label"] for r in rows], cfg.fit.batch_size, seed=0)
    batches = [ds[i] for i in range(45)]
    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name, overrides in VARIANTS.items():
            results[name].append(steps_per_second(cfg, batches, (len(vocab), len(pairs)), overrides))
    base = statistics.median(results["plain adam"])
    print(f"{'variant':<28} steps/s  ratio to plain (median of {args.repeats})")
    for name, values in results.items():
        value = statistics.median(values)
        print(f"{name:<28} {value:7.2f}  {value / base:5.3f}")


if __name__ == "__main__":
    main()
