"""The sentiment model explained (stage ``saliency@sentiment``): which words of a review drive
its prediction, scored with the model-agnostic methods of :mod:`kexue.text.saliency`."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from kexue.plots import cjk_font
from kexue.text.saliency import (
    METHODS,
    Config,
    GradientXInput,
    check,
    curve_rows,
    explain,
    render_html,
    render_png,
    summarize,
    text_words,
)


def sentiment_saliency(cfg: Config, model_dir: str | Path, data_dir: str | Path,
                       tokenized_dir: str | Path, plots_dir: str | Path) -> dict:
    """Score ``cfg.texts`` sampled test reviews of the sentiment model (words cut by the learnt
    lexicon); write ``deletion.json`` (the mean deletion curves), ``words.html`` and
    ``words.png`` (the first ``cfg.render`` reviews) into ``plots_dir``; return the metrics."""
    from kexue.batches import pad
    from kexue.families.sentiment_classifier import LABELS, SentimentClassifier
    from kexue.families.sentiment_inputs import encode, word_ids
    from kexue.io import read_jsonl, write_json
    from kexue.text.tokenized import load_segmenter

    check(cfg)
    font = cjk_font()  # fail before the long part
    start = time.perf_counter()
    clf = SentimentClassifier(model_dir)
    segment = load_segmenter(tokenized_dir)
    rows = read_jsonl(Path(data_dir) / "test.jsonl")
    if not rows:
        raise ValueError(f"{Path(data_dir) / 'test.jsonl'} is empty: rerun prepare_reviews")
    texts, labels = [r["text"] for r in rows], [int(r["label"]) for r in rows]
    rng = np.random.default_rng(cfg.seed)
    chosen = [int(i) for i in rng.choice(len(texts), size=min(cfg.texts, len(texts)), replace=False)]
    words_list = [text_words(texts[i], segment) for i in chosen]
    keep = [j for j, w in enumerate(words_list) if w]  # a text of whitespace has no words
    chosen, words_list = [chosen[j] for j in keep], [words_list[j] for j in keep]

    def sequences(batch: list[str]) -> list[list[np.ndarray]]:
        encoded = encode(clf.vocab, batch, clf.maxlen, clf.bigram_vocab)
        seqs = list(encoded) if isinstance(encoded, tuple) else [encoded]
        if clf.word_vocab is not None:
            seqs.append(word_ids(clf.word_vocab, clf.segment, batch, clf.maxlen))
        return seqs

    def model_inputs(batch: list[str]) -> list[np.ndarray]:
        return [pad(s) for s in sequences(batch)]

    explained = explain(clf.predict_proba, GradientXInput(clf.model), model_inputs,
                        words_list, chosen, cfg)
    summary = summarize(explained)
    write_json(Path(plots_dir) / "deletion.json", curve_rows(summary), indent=None)
    items = [{"id": rows[chosen[j]].get("id", f"test line {chosen[j]}"), "label": LABELS[labels[chosen[j]]],
              "predicted": LABELS[int(explained.classes[j])],
              "probability": float(explained.base[j]), "words": explained.words[j],
              "scores": {m: explained.scores[m][j] for m in METHODS}}
             for j in range(min(cfg.render, len(chosen)))]
    title = "sentiment: word importance for the predicted class"
    render_html(Path(plots_dir) / "words.html", items, title,
                note=f"Words cut by the learnt lexicon; the model reads the first {clf.maxlen} "
                     "characters. Hover a word for its score.")
    render_png(Path(plots_dir) / "words.png", items, "occlusion",
               f"{title} (occlusion; red supports, blue opposes)", font)
    return {"test": summary,
            "cost": {**{f"{k}_seconds": v for k, v in explained.seconds.items()},
                     "total_seconds": round(time.perf_counter() - start, 2),
                     "members": max(len(clf.member_names()), 1)}}
