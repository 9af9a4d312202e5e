"""Named entities (person, place, organisation) as BIO character tagging with a CRF.

Labels come from People's Daily 1998's POS tags: nr → PER (a surname and a given name tagged nr
in sequence are one person), ns → LOC, nt → ORG. The network is :mod:`kexue.tagging`'s, the
same as the segmenter's; scoring is exact span match, per type and micro-averaged.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kexue.config import require_network
from kexue.corpora.people_daily import ENTITY_KINDS, bio_tags, load_rows, spans_from_bio
from kexue.spans import span_counts
from kexue.tagging import Tagger, TaggerConfig, tag_confusion_rows, train_tagger

KINDS = list(ENTITY_KINDS.values())  # PER, LOC, ORG
TAGS = ["O", *[f"{prefix}-{kind}" for kind in KINDS for prefix in ("B", "I")]]
Config = TaggerConfig

Span = tuple[int, int, str]


def _labelled(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    return [r["text"] for r in rows], [bio_tags(len(r["text"]), map(tuple, r["entities"]))
                                       for r in rows]


def entity_f1(gold: list[list[str]], predicted: list[list[str]]) -> float:
    """Micro entity F1 of BIO tag sequences."""
    return entity_scores([spans_from_bio(t) for t in gold], [spans_from_bio(t) for t in predicted])["f1"]


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None, family: str = "ner") -> dict:
    data_dir = Path(data_dir)
    train_rows = load_rows(data_dir, "train")
    return train_tagger(cfg, family, TAGS, _labelled(train_rows),
                        _labelled(load_rows(data_dir, "valid")), model_dir, live_dir, resume_root,
                        [data_dir / "train.jsonl", data_dir / "valid.jsonl"], entity_f1,
                        [r["words"] for r in train_rows])


class Recognizer:
    """A trained recogniser: ``spans(texts)`` → ``(start, end, type)`` character spans per text."""

    def __init__(self, model_dir: str | Path):
        self.tagger = Tagger(model_dir, family="ner")

    def spans(self, texts: Sequence[str]) -> list[list[Span]]:
        return [spans_from_bio(tags) for tags in self.tagger.tag(texts)]


def _prf(correct: int, n_pred: int, n_gold: int) -> dict:
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "gold": n_gold, "predicted": n_pred}


def entity_scores(gold: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]]) -> dict:
    """Exact-match entity precision / recall / F1 per type and micro-averaged over all types."""
    counts = {kind: [0, 0, 0] for kind in KINDS}  # correct, predicted, gold
    for gold_spans, pred_spans in zip(gold, predicted, strict=True):
        gold_set = {tuple(s) for s in gold_spans}
        for span in {tuple(s) for s in pred_spans}:
            counts[span[2]][1] += 1
            counts[span[2]][0] += span in gold_set
        for span in gold_set:
            counts[span[2]][2] += 1
    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    micro = _prf(*total)
    return {"precision": micro["precision"], "recall": micro["recall"], "f1": micro["f1"],
            "entities": micro["gold"], "per_type": {kind: _prf(*c) for kind, c in counts.items()}}


def evaluate(model_dir: str | Path, data_dir: str | Path) -> tuple[dict, list[dict]]:
    recognizer = Recognizer(model_dir)
    metrics: dict = {"items": {"metric": "f1", "kind": "f1"}}  # per line, for the bootstrap
    seconds = chars = 0.0
    for split in ("test", "valid"):
        rows = load_rows(data_dir, split)
        texts = [r["text"] for r in rows]
        start = time.perf_counter()
        predicted = recognizer.spans(texts)
        if split == "test":
            seconds, chars = time.perf_counter() - start, sum(len(t) for t in texts)
        metrics[split] = entity_scores([r["entities"] for r in rows], predicted)
        metrics["items"][split] = span_counts([r["entities"] for r in rows], predicted)
        if split == "test":
            gold_tags = [bio_tags(len(t), map(tuple, r["entities"])) for t, r in zip(texts, rows, strict=True)]
            pred_tags = [bio_tags(len(t), spans) for t, spans in zip(texts, predicted, strict=True)]
            confusion = tag_confusion_rows(gold_tags, pred_tags)
    info = recognizer.tagger.info
    metrics["cost"] = {"train_seconds": info["train_seconds"], "params": info["params"],
                       "train_chars_per_second": info["chars_per_second"],
                       "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"],
                       "inference_chars_per_second": round(chars / seconds, 1)}
    return metrics, confusion


def gazetteer_spans(text: str, lexicon: dict[str, str], longest: int) -> list[Span]:
    """Leftmost-longest lookup of the training set's entity strings (the lexicon a practitioner
    would grep with); a match's type is the type the string carried most often in training."""
    spans, i = [], 0
    while i < len(text):
        for size in range(min(longest, len(text) - i), 0, -1):
            kind = lexicon.get(text[i : i + size])
            if kind:
                spans.append((i, i + size, kind))
                i += size
                break
        else:
            i += 1
    return spans


@dataclass(frozen=True)
class BaselineConfig:
    gazetteer_min_count: int = field(metadata={"min": 0})  # entity strings seen this often in train form the lexicon (0 = off)
    # shortest entity string kept in the lexicon, each tried; the best on valid F1 is kept (one-
    # character strings such as the surnames 王 and 周 match everywhere)
    gazetteer_min_lengths: list[int]
    softmax_ablation: bool  # train the `ner` network with a per-character softmax instead of the CRF
    crfsuite_c1: list[float] = field(default_factory=list)  # CRFsuite L1 penalties tried; the best valid entity F1 is kept
    crfsuite_c2: list[float] = field(default_factory=list)  # L2 penalties tried, crossed with crfsuite_c1
    crfsuite_max_iterations: int = field(default=0, metadata={"min": 0})  # L-BFGS iterations per fit; 0 = no CRFsuite peer


def baselines(cfg: BaselineConfig, data_dir: str | Path, work_dir: str | Path | None = None,
              network: Config | None = None) -> dict:
    data_dir = Path(data_dir)
    splits = {s: load_rows(data_dir, s) for s in ("test", "valid")}
    peers: dict = {}

    def score(name: str, spans_of, extra: dict | None = None) -> dict:
        peers[name] = {"items": {}}
        for split, rows in splits.items():
            texts = [r["text"] for r in rows]
            start = time.perf_counter()
            gold, predicted = [r["entities"] for r in rows], spans_of(texts)
            seconds = time.perf_counter() - start
            peers[name][split] = entity_scores(gold, predicted)
            peers[name]["items"][split] = span_counts(gold, predicted)
            if split == "test" and seconds > 0:
                peers[name]["chars_per_second"] = round(sum(map(len, texts)) / seconds, 1)
        peers[name].update(extra or {})
        return peers[name]

    if cfg.crfsuite_max_iterations and cfg.crfsuite_c1 and cfg.crfsuite_c2:
        # CRFsuite over character-window features, BIO tags; c1 / c2 chosen on valid entity F1
        from kexue.peers import crfsuite

        start = time.perf_counter()
        model, chosen = crfsuite.tune(_labelled(load_rows(data_dir, "train")),
                                      _labelled(splits["valid"]), cfg.crfsuite_c1, cfg.crfsuite_c2,
                                      cfg.crfsuite_max_iterations, entity_f1)
        tuning_seconds = round(time.perf_counter() - start, 1)
        score("crfsuite", lambda texts: [spans_from_bio(tags) for tags in crfsuite.predict(model, texts)],
              {"chosen": chosen, "tuning_seconds": tuning_seconds})

    if cfg.gazetteer_min_count:
        kinds: dict[str, Counter] = {}
        for row in load_rows(data_dir, "train"):
            for start, end, kind in row["entities"]:
                kinds.setdefault(row["text"][start:end], Counter())[kind] += 1
        if not cfg.gazetteer_min_lengths:
            raise ValueError("baselines.ner.gazetteer_min_lengths is empty: list at least one "
                             "shortest entity length to try, e.g. [1, 2, 3]")
        candidates = {}
        for min_length in cfg.gazetteer_min_lengths:
            lexicon = {text: c.most_common(1)[0][0] for text, c in kinds.items()
                       if sum(c.values()) >= cfg.gazetteer_min_count and len(text) >= min_length}
            longest = max(map(len, lexicon), default=1)
            candidates[min_length] = score(
                "gazetteer", lambda texts, lex=lexicon, n=longest: [gazetteer_spans(t, lex, n) for t in texts],
                {"lexicon_size": len(lexicon), "min_length": min_length})
        best = max(candidates, key=lambda n: (candidates[n]["valid"]["f1"], -n))  # valid only
        peers["gazetteer"] = {**candidates[best], "tried": {
            str(n): {"valid_f1": c["valid"]["f1"], "lexicon_size": c["lexicon_size"]}
            for n, c in candidates.items()}}
    if cfg.softmax_ablation:
        import tempfile

        net = dataclasses.replace(require_network(network, "ner"), head="softmax")
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            info = train(net, data_dir, Path(tmp) / "model", None, None, family="ner_softmax")
            score("softmax_ablation", Recognizer(Path(tmp) / "model").spans,
                  {"train_seconds": info["train_seconds"], "epochs_run": info["epochs_run"]})
    return peers
