"""The multilabel task's view of People's Daily: which kinds of tagged words a line holds
(persons, places, idioms, ...), one 0/1 label per kind."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kexue.corpora.people_daily import load_rows

# label → PKU tag. A line has the label when any of its words carries the tag. Chosen from the
# tags present in every split with usable counts (lines with the label in train / valid / test
# of the default split: person 7053/352/931 ... foreign 238/22/18; see metrics "labels").
LABELS: dict[str, str] = {
    "person": "nr",
    "place": "ns",
    "organisation": "nt",
    "other_proper_noun": "nz",
    "time": "t",
    "number": "m",
    "idiom": "i",
    "fixed_expression": "l",
    "abbreviation": "j",
    "modal_particle": "y",
    "foreign": "nx",  # Latin-letter strings: ＶＣＤ, ＣＤＭＡ, ＧＤＰ
}
LABEL_NAMES = list(LABELS)


def label_vector(pos_tags: Sequence[str]) -> np.ndarray:
    """0/1 per label of :data:`LABELS`: does any word of the line carry the label's tag."""
    present = set(pos_tags)
    return np.array([tag in present for tag in LABELS.values()], dtype=np.float32)


def load_split(data_dir: str | Path, split: str) -> tuple[list[str], np.ndarray]:
    """(line texts, labels (lines, num_labels)) of a prepared People's Daily split."""
    rows = load_rows(data_dir, split)
    labels = np.stack([label_vector(r["pos"]) for r in rows])
    return [r["text"] for r in rows], labels


def label_counts(labels: np.ndarray) -> dict:
    """Lines per label, lines without any label, mean labels per line."""
    return {"lines": int(len(labels)),
            "per_label": {name: int(n) for name, n in zip(LABEL_NAMES, labels.sum(0), strict=True)},
            "no_label": int((labels.sum(1) == 0).sum()),
            "mean_labels_per_line": round(float(labels.sum(1).mean()), 3) if len(labels) else 0.0}
