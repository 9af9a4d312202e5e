"""Word vectors shared by the word2vec and glove families: the vocabulary of a tokenized corpus,
the saved vectors (``vectors.npy`` + ``words.json``), nearest neighbours, and the intrinsic
evaluation that needs no external data: neighbour POS agreement@k.

POS agreement@k: give every People's Daily word form its majority gold POS tag (over 199801.txt);
for each query word, the share of its k nearest neighbours (cosine, among a fixed candidate set)
that carry the query's majority tag, averaged over the queries. Syntactic neighbours (a verb's
neighbours are verbs, a place's are places) score high; a random embedding scores about the
share of the commonest tag. Every model is scored on the same queries and the same candidates
(the words of the candidate set that all compared vocabularies hold).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from kexue.io import atomic_path, atomic_write, read_json


def count_words(sentences: Iterable[Sequence[str]]) -> Counter:
    return Counter(w for sentence in sentences for w in sentence)


def build_vocab(counts: Counter, min_count: int) -> list[str]:
    """Words seen at least ``min_count`` times, most frequent first (ties by the word)."""
    return sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))


def encode_corpus(sentences: Iterable[Sequence[str]], index: dict[str, int]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The in-vocabulary tokens as one id array and, aligned with it, each token's sentence
    number (out-of-vocabulary tokens are dropped, as word2vec does, so windows span them)."""
    ids: list[int] = []
    sent: list[int] = []
    for number, sentence in enumerate(sentences):
        kept = [index[w] for w in sentence if w in index]
        ids.extend(kept)
        sent.extend([number] * len(kept))
    return np.asarray(ids, dtype=np.int32), np.asarray(sent, dtype=np.int32)


class WordVectors:
    """A word list and its (n_words, dim) float32 matrix, with cosine nearest neighbours."""

    def __init__(self, words: Sequence[str], matrix: np.ndarray, counts: Sequence[int] | None = None):
        if len(words) != len(matrix):
            raise ValueError(f"WordVectors: {len(words)} words but {len(matrix)} vectors")
        self.words = list(words)
        self.matrix = np.asarray(matrix, dtype=np.float32)
        self.counts = list(counts) if counts is not None else [0] * len(self.words)
        self.index = {w: i for i, w in enumerate(self.words)}
        norms = np.linalg.norm(self.matrix, axis=1, keepdims=True)
        self.unit = self.matrix / np.maximum(norms, 1e-12)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.matrix[self.index[word]]

    def most_similar(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` words of highest cosine similarity to ``word`` (itself excluded)."""
        if word not in self.index:
            raise KeyError(word)
        sims = self.unit @ self.unit[self.index[word]]
        sims[self.index[word]] = -np.inf
        k = min(k, len(self.words) - 1)
        top = np.argpartition(-sims, k)[:k] if k < len(sims) else np.arange(len(sims))
        top = top[np.argsort(-sims[top], kind="stable")][:k]
        return [(self.words[i], round(float(sims[i]), 4)) for i in top]

    def save(self, model_dir: str | Path) -> None:
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(model_dir / "vectors.npy") as tmp:
            np.save(tmp, self.matrix)
        with atomic_write(model_dir / "words.json") as handle:
            json.dump({"words": self.words, "counts": [int(c) for c in self.counts]}, handle,
                      ensure_ascii=False)

    @classmethod
    def load(cls, model_dir: str | Path) -> WordVectors:
        model_dir = Path(model_dir)
        for name in ("vectors.npy", "words.json"):
            if not (model_dir / name).is_file():
                raise FileNotFoundError(
                    f"{model_dir / name} not found: train the vectors first "
                    f"(`dvc repro train@{model_dir.name}`)")
        data = read_json(model_dir / "words.json")
        return cls(data["words"], np.load(model_dir / "vectors.npy"), data.get("counts"))


def majority_pos(tagged_lines: Iterable[Sequence[tuple[str, str]]]) -> dict[str, tuple[str, int]]:
    """``{word: (majority POS, count)}`` over gold ``[(word, pos)]`` lines; ties go to the
    alphabetically first tag."""
    tags: dict[str, Counter] = defaultdict(Counter)
    for line in tagged_lines:
        for word, pos in line:
            tags[word][pos] += 1
    return {w: (min(c, key=lambda t: (-c[t], t)), sum(c.values())) for w, c in tags.items()}


def pos_agreement_shares(vectors: WordVectors, queries: Sequence[str], candidates: Sequence[str],
                         pos: dict[str, str], k: int = 10, batch: int = 512) -> np.ndarray:
    """Per query of ``queries``, the share of its ``k`` nearest ``candidates`` (cosine, the query
    itself excluded) whose tag in ``pos`` equals the query's."""
    if not queries:
        raise ValueError("pos_agreement_at_k: no query words")
    if len(candidates) <= k:
        raise ValueError(f"pos_agreement_at_k: {len(candidates)} candidates, need more than k={k}")
    cand = vectors.unit[[vectors.index[w] for w in candidates]]  # (n_cand, dim)
    cand_tags = np.array([pos[w] for w in candidates], dtype=object)
    cand_pos = {w: i for i, w in enumerate(candidates)}
    shares = []
    for start in range(0, len(queries), batch):
        chunk = list(queries[start : start + batch])
        sims = vectors.unit[[vectors.index[w] for w in chunk]] @ cand.T  # (chunk, n_cand)
        for row, word in enumerate(chunk):
            if word in cand_pos:
                sims[row, cand_pos[word]] = -np.inf
        top = np.argpartition(-sims, k, axis=1)[:, :k]  # (chunk, k), unordered: a share needs no order
        for row, word in enumerate(chunk):
            shares.append(float(np.mean(cand_tags[top[row]] == pos[word])))
    return np.asarray(shares)


def pos_agreement_at_k(vectors: WordVectors, queries: Sequence[str], candidates: Sequence[str],
                       pos: dict[str, str], k: int = 10, batch: int = 512) -> float:
    """Mean over ``queries`` of :func:`pos_agreement_shares`."""
    return float(np.mean(pos_agreement_shares(vectors, queries, candidates, pos, k, batch)))


def evaluation_words(tokenized_dir: str | Path, candidate_min_count: int, query_min_count: int,
                     ) -> dict:
    """The fixed word sets of the POS agreement evaluation, from the tokenize stage's folder:
    ``candidates`` = words of the tokenized corpus seen ``candidate_min_count`` times that are
    People's Daily gold words (punctuation, tag w, left out); ``valid`` / ``test`` = the
    candidates whose gold count is at least ``query_min_count``, ranked by that count and dealt
    alternately (rank 0, 2, 4, ... test; 1, 3, 5, ... valid); ``pos`` = their majority tags."""
    from kexue.text.tokenized import sentences

    tokenized_dir = Path(tokenized_dir)
    path = tokenized_dir / "gold_pos.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the tokenize stage (`dvc repro tokenize`)")
    gold = read_json(path)
    counts = count_words(sentences(tokenized_dir))
    candidates = [w for w in build_vocab(counts, candidate_min_count)
                  if w in gold and gold[w][0] != "w"]
    queries = sorted((w for w in candidates if gold[w][1] >= query_min_count),
                     key=lambda w: (-gold[w][1], w))
    return {"candidates": candidates, "test": queries[0::2], "valid": queries[1::2],
            "pos": {w: gold[w][0] for w in candidates}}


def agreement_scores(vectors: WordVectors, words: dict, k: int) -> dict:
    """``{"test": {...}, "valid": {...}, "items": {...}}`` of :func:`pos_agreement_at_k` on the
    sets of :func:`evaluation_words` (every candidate must be in ``vectors``); ``items`` holds
    the per-query shares, for the paired bootstrap of :func:`kexue.comparison.attach`."""
    missing = [w for w in words["candidates"] if w not in vectors]
    if missing:
        raise ValueError(f"{len(missing)} evaluation words have no vector (e.g. {missing[:5]}): "
                         f"the model's min_count must not exceed the evaluation's candidate_min_count")
    metric = f"pos_agreement_at_{k}"
    out: dict = {"items": {"metric": metric}}
    for split in ("test", "valid"):
        shares = pos_agreement_shares(vectors, words[split], words["candidates"], words["pos"], k)
        out[split] = {metric: round(float(np.mean(shares)), 4), "queries": len(words[split]),
                      "candidates": len(words["candidates"])}
        out["items"][split] = [round(float(x), 4) for x in shares]
    return out
