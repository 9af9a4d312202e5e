"""Character ROUGE and BLEU for Chinese headlines.

ROUGE-1/2/L F1 come from the ``rouge-score`` package with a character tokenizer (its default
tokenizer keeps ASCII words only, so Chinese text would score 0); corpus BLEU from sacreBLEU over
character tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kexue.text.vocab import characters


class CharTokenizer:
    """A ``rouge-score`` tokenizer that keeps every non-space character as a token (the
    package's default keeps ASCII words only, so Chinese text would score 0)."""

    def tokenize(self, text: str) -> list[str]:
        return characters(text)


def rouge_scores(references: Sequence[str], hypotheses: Sequence[str]) -> dict:
    """Mean character ROUGE-1/2/L F1 over the pairs (``rouge-score``, character tokens)."""
    from rouge_score import rouge_scorer

    if len(references) != len(hypotheses):
        raise ValueError(f"rouge_scores: {len(references)} references but {len(hypotheses)} "
                         "hypotheses")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=CharTokenizer())
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for ref, hyp in zip(references, hypotheses, strict=True):
        scores = scorer.score(ref, hyp)  # score(target, prediction)
        for name in totals:
            totals[name] += scores[name].fmeasure
    return {name: total / max(len(references), 1) for name, total in totals.items()}


def rouge_l_items(references: Sequence[str], hypotheses: Sequence[str]) -> list[float]:
    """Character ROUGE-L F1 of each pair (their mean is :func:`rouge_scores`' rougeL): the
    per-article statistics of the paired bootstrap."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=CharTokenizer())
    return [round(scorer.score(ref, hyp)["rougeL"].fmeasure, 6)
            for ref, hyp in zip(references, hypotheses, strict=True)]


def corpus_bleu(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """sacreBLEU corpus BLEU (0–100) over character tokens."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], tokenize="char").score)


def headline_metrics(references: Sequence[str], hypotheses: Sequence[str]) -> dict:
    rouge = rouge_scores(references, hypotheses)
    return {**{k: round(v, 4) for k, v in rouge.items()},
            "bleu": round(corpus_bleu(references, hypotheses), 2),
            "mean_chars": round(float(np.mean([len(h) for h in hypotheses])), 2),
            "articles": len(references)}
