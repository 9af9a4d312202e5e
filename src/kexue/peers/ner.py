"""The NER peers (stage ``baselines@ner``): CRFsuite over character-window features (c1 and c2
chosen on valid), a gazetteer of the training entities (its shortest entry length chosen on
valid), and the ``ner`` network with a per-character softmax instead of the CRF. Each reports
entity scores on valid and test, characters per second and per-line span counts."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kexue.config import require_network
from kexue.corpora.people_daily import load_rows, spans_from_bio
from kexue.families import ner
from kexue.peers.dictionary import chars_per_second
from kexue.spans import Span, entity_f1, entity_scores, span_counts
from kexue.tagging import TaggerConfig as NetworkConfig

__all__ = ["BaselineConfig", "NetworkConfig", "baselines", "gazetteer_spans"]


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
              network: NetworkConfig | None = None) -> dict:
    data_dir = Path(data_dir)
    splits = {s: load_rows(data_dir, s) for s in ("test", "valid")}
    peers: dict = {}

    def score(name: str, spans_of, extra: dict | None = None) -> dict:
        peers[name] = {"items": {}}
        for split, rows in splits.items():
            predicted, speed = chars_per_second(spans_of, [r["text"] for r in rows])
            gold = [r["entities"] for r in rows]
            peers[name][split] = entity_scores(gold, predicted)
            peers[name]["items"][split] = span_counts(gold, predicted)
            if split == "test":
                peers[name]["chars_per_second"] = speed
        peers[name].update(extra or {})
        return peers[name]

    if cfg.crfsuite_max_iterations and cfg.crfsuite_c1 and cfg.crfsuite_c2:
        # CRFsuite over character-window features, BIO tags; c1 / c2 chosen on valid entity F1
        from kexue.peers import crfsuite

        start = time.perf_counter()
        model, chosen = crfsuite.tune(ner.labelled(load_rows(data_dir, "train")),
                                      ner.labelled(splits["valid"]), cfg.crfsuite_c1, cfg.crfsuite_c2,
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
            info = ner.train(net, data_dir, Path(tmp) / "model", None, None, family="ner_softmax")
            score("softmax_ablation", ner.Recognizer(Path(tmp) / "model").spans,
                  {"train_seconds": info["train_seconds"], "epochs_run": info["epochs_run"]})
    return peers
