"""Stage `compare_validation`: does adversarial validation stand in for the test set better than a
random validation set? For each choice (same pool, same size, same discriminator scores), the
|valid − test| gap of the sentiment model and, over a sweep of TF-IDF + LR models: Kendall's τ
(with its p-value) between valid and test scores, the mean valid − test gap, the model the
validation set picks, that model's test score and its regret against the sweep's best test score
(metrics/validation.json; `kexue.text.advsplit.selection_agreement`). Reviews: sentiment accuracy;
People's Daily: multi-label tag-kind micro F1 (the sweep only: the per-choice neural model is the
sentiment one)."""

import argparse
import dataclasses
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kexue.config import ConfigError, load_section
from kexue.io import read_jsonl, write_json, write_jsonl
from kexue.stages.split import Params as SplitParams
from kexue.text.advsplit import (
    score_test_likeness,
    selection_agreement,
    split_pool,
    sweep_models,
    sweep_scores,
)

CHOICES = ("random", "adversarial")


@dataclass(frozen=True)
class Params:
    c_grid: list[float]  # the sweep: logistic-regression C values ...
    ngram_max: list[int]  # ... times character n-gram ranges 1..n
    sentiment_members: int = field(metadata={"min": 1})  # ensemble size of the sentiment model per choice


def _sentiment_gap(splits: dict, members: int, vectors_root: Path, tokenized: Path) -> dict:
    """Train the `sentiment` section's model on one split; its valid and test accuracy."""
    from kexue.families import sentiment

    cfg = load_section("sentiment", sentiment.Config)
    # augment off: the augment stage's variants come from the `split` stage's training set, not
    # from the split built here
    cfg = dataclasses.replace(cfg, members=members, augment=False)
    with tempfile.TemporaryDirectory(prefix="compare-validation-") as tmp:
        for name, rows in splits.items():
            write_jsonl(Path(tmp) / "data" / f"{name}.jsonl", rows)
        sentiment.train(cfg, Path(tmp) / "data", Path(tmp) / "model", None, None,
                        vectors_root=vectors_root, tokenized_dir=tokenized)
        metrics, _ = sentiment.evaluate(Path(tmp) / "model", Path(tmp) / "data")
    valid, test = metrics["valid"]["accuracy"], metrics["test"]["accuracy"]
    return {"valid": valid, "test": test, "gap": round(abs(valid - test), 4), "members": members}


def compare(prepared: Path, split: SplitParams, params: Params, vectors_root: Path,
            tokenized: Path) -> dict:
    from kexue.corpora.tag_labels import label_vector

    tasks = {"reviews": lambda rows: [r["label"] for r in rows],
             "people_daily": lambda rows: np.stack([label_vector(r["pos"]) for r in rows])}
    names = sweep_models(params.c_grid, params.ngram_max)
    out: dict = {}
    for corpus, labels in tasks.items():
        pool = read_jsonl(prepared / corpus / "train.jsonl") + read_jsonl(prepared / corpus / "valid.jsonl")
        test = read_jsonl(prepared / corpus / "test.jsonl")
        likeness = score_test_likeness([r["text"] for r in pool], [r["text"] for r in test],
                                       folds=split.folds, ngram_max=split.ngram_max, seed=split.seed)
        out[corpus] = {"discriminator_auc": round(likeness.auc, 4),
                       "score": "accuracy" if corpus == "reviews" else "micro_f1"}
        for choice in CHOICES:
            splits, _ = split_pool(pool, test, choice, split.valid_size, split.folds, split.ngram_max,
                                   split.max_weight, split.seed, likeness=likeness)
            result = {}
            # reviews: the sentiment recipe's density-ratio weights, and none for reference;
            # People's Daily: unweighted, as the multilabel family trains
            for weighted in ((True, False) if corpus == "reviews" else (False,)):
                v, t = sweep_scores(splits, labels, params.c_grid, params.ngram_max, weighted, split.seed)
                result["sweep_density_ratio" if weighted else "sweep_unweighted"] = {
                    **selection_agreement(v, t, names), "candidates": names,
                    "valid": [round(x, 4) for x in v], "test": [round(x, 4) for x in t]}
            if corpus == "reviews":
                result["sentiment_model"] = _sentiment_gap(splits, params.sentiment_members,
                                                           vectors_root, tokenized)
            out[corpus][choice] = result
            print(f"compare_validation: {corpus} {choice}: "
                  f"{ {k: v.get('kendall_tau', v.get('gap')) for k, v in result.items()} }", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prepared", default="data/prepared")
    parser.add_argument("--vectors-root", required=True,
                        help="holds word2vec/ and glove/ (the sentiment model's word channel)")
    parser.add_argument("--tokenized", required=True, help="the learnt lexicon (stage tokenize)")
    parser.add_argument("--out", default="metrics/validation.json")
    args = parser.parse_args(argv)
    try:
        params = load_section("compare_validation", Params)
        split = load_section("split", SplitParams)
    except ConfigError as err:
        print(f"compare_validation: {err}", file=sys.stderr)
        return 2
    if not params.c_grid or not params.ngram_max or len(params.c_grid) * len(params.ngram_max) < 2:
        print("compare_validation: the sweep needs at least 2 models: list more c_grid or ngram_max "
              "values", file=sys.stderr)
        return 2
    write_json(args.out, compare(Path(args.prepared), split, params, Path(args.vectors_root),
                                 Path(args.tokenized)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
