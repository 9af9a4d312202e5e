"""The retrieval task of the similarity family (:mod:`kexue.families.similarity`), without
Keras: the members of each article's class, the query sets of a split and their scores, shared
by the network and its peers (:mod:`kexue.peers.similarity`).

Evaluation is retrieval on the held-out articles of a split (valid, test), each article standing
as its lead sentence (first body sentence), with two query sets (top-1/5/10, MRR for each):

* headline → lead (``top1`` …): the query is an article's headline, the gold candidate its own
  lead. One query per article, ~265 per split: too few to separate systems that differ by a
  point or two (one query is 0.38 points).
* body sentence → article (``sentence_top1`` …, :func:`sentence_queries`): every distinct body
  sentence of at least :data:`SENTENCE_MIN_CHARS` characters is a query, its own article the
  gold, the candidates the same leads. The query sentence is taken out of its own article's
  representation, so the task is never an exact-match lookup: when the query *is* the lead,
  its article stands as its next sentence for that query (the article's lead once the query is
  removed; an article with nothing left gives no query), and a sentence found in more than one
  article of the split (a byline, a stock phrase) is no query — it names none of them. ~3.6k
  queries per split.

The per-query top-1 of the sentence set drives the ``comparison`` block (kexue against the
peer strongest on valid, paired bootstrap): more than ten times the queries of the headline
set narrow the 95% interval three- to five-fold. The headline → lead figures are still reported
beside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TOP_K = (1, 5, 10)
SENTENCE_MIN_CHARS = 6  # shorter body sentences are no queries (fixed: not a training choice)


# --- data ---------------------------------------------------------------------------------


def members(articles: Sequence[dict], min_chars: int, body_sentences: int = 0
            ) -> tuple[list[str], np.ndarray]:
    """(sentences, class ids): each article's headline and its body sentences of at least
    ``min_chars`` characters, labelled with the article's index. ``body_sentences`` = k > 0
    keeps the lead (whatever its length) and the next k − 1 of those body sentences only: the
    group the retrieval asks for, a headline and the sentences that open its article."""
    texts, labels = [], []
    for label, article in enumerate(articles):
        body = [s for s in article["sentences"] if len(s) >= min_chars]
        if body_sentences:
            lead = article["lead"]
            body = [lead, *[s for s in body if s != lead][: body_sentences - 1]]
        group = [article["headline"], *body]
        texts.extend(group)
        labels.extend([label] * len(group))
    return texts, np.asarray(labels, dtype=np.int32)


def queries_and_candidates(articles: Sequence[dict]) -> tuple[list[str], list[str]]:
    """Headlines (queries) and lead sentences (candidates); query i's answer is candidate i."""
    return [a["headline"] for a in articles], [a["lead"] for a in articles]


@dataclass(frozen=True)
class SentenceQueries:
    """Body sentence → article retrieval on one split (see the module doc). ``candidates`` are
    every article's lead, then the stand-ins (an article's next sentence, for the query that is
    its lead); ``columns[i, j]`` is the candidate that stands for article j in query i's
    ranking, ``gold[i]`` the query's own article."""

    queries: list[str]
    gold: np.ndarray  # (queries,) article index
    candidates: list[str]
    columns: np.ndarray  # (queries, articles) candidate index

    def gather(self, scores: np.ndarray) -> np.ndarray:
        """(queries, articles) scores out of (queries, candidates) scores."""
        return np.take_along_axis(np.asarray(scores), self.columns, axis=1)


def sentence_queries(articles: Sequence[dict], min_chars: int = SENTENCE_MIN_CHARS) -> SentenceQueries:
    """Each distinct body sentence of at least ``min_chars`` characters that occurs in no other
    article of ``articles``, as a query whose answer is its own article. An article stands as its
    lead; for the query that is the lead, as its first sentence other than the query (an article
    with none gives no such query)."""
    found_in = Counter(s for a in articles for s in {*a["sentences"], a["lead"]})
    candidates = [a["lead"] for a in articles]
    queries, gold, stand_ins = [], [], {}  # stand_ins: query index → candidate index
    for index, article in enumerate(articles):
        for sentence in dict.fromkeys(article["sentences"]):
            if len(sentence) < min_chars or found_in[sentence] > 1:
                continue
            if sentence == article["lead"]:
                rest = [s for s in article["sentences"] if s != sentence]
                if not rest:
                    continue
                stand_ins[len(queries)] = len(candidates)
                candidates.append(rest[0])
            queries.append(sentence)
            gold.append(index)
    columns = np.tile(np.arange(len(articles)), (len(queries), 1))
    for query, candidate in stand_ins.items():
        columns[query, gold[query]] = candidate
    return SentenceQueries(queries, np.asarray(gold, dtype=np.int64), candidates, columns)


# --- metrics ------------------------------------------------------------------------------


def gold_ranks(scores: np.ndarray, gold: np.ndarray | None = None) -> np.ndarray:
    """1-based rank of query i's gold candidate (column ``gold[i]``; by default column i) in
    ``scores`` (queries, candidates). Ties count against the query (a candidate scoring the same
    as the gold one ranks above it), so a method that scores everything equal gets no credit for
    the order of the list."""
    scores = np.asarray(scores, dtype=np.float64)
    rows = np.arange(len(scores))
    gold_score = scores[rows, rows if gold is None else np.asarray(gold)][:, None]
    return 1 + (scores > gold_score).sum(axis=1) + (scores == gold_score).sum(axis=1) - 1


def retrieval_metrics(scores: np.ndarray, gold: np.ndarray | None = None) -> dict:
    """top-k accuracy (gold within the first k) and mean reciprocal rank of the gold."""
    ranks = gold_ranks(scores, gold)
    out = {f"top{k}": round(float((ranks <= k).mean()), 4) for k in TOP_K}
    out["mrr"] = round(float((1.0 / ranks).mean()), 4)
    out["queries"] = int(len(ranks))
    out["candidates"] = int(scores.shape[1])
    return out


def query_items(scores: np.ndarray, gold: np.ndarray | None = None) -> list[list[float]]:
    """Per query ``[top-1, reciprocal rank]``: 1 where its gold candidate ranks first (else 0), and
    1 / the gold's rank; the per-query statistics of the paired bootstrap (their column means are
    ``top1`` and ``mrr``)."""
    ranks = gold_ranks(scores, gold)
    return [[int(rank <= 1), round(1.0 / float(rank), 6)] for rank in ranks]


# what each target metric reads (``items["every_peer"]``, :mod:`kexue.every_peer`): columns of
# :func:`query_items` of the body-sentence queries, or of the headline queries' (``headline``)
ITEM_COLUMNS = {"sentence_top1": [0], "sentence_mrr": [1],
                "top1": {"items": "headline", "columns": [0]}}


def rank_rows(scores: np.ndarray) -> list[dict]:
    """Per test query, where its own lead ranked (for the stage's plot file)."""
    buckets = []
    for rank in gold_ranks(scores):
        bucket = ("1" if rank == 1 else "2-5" if rank <= 5 else "6-10" if rank <= 10 else ">10")
        buckets.append({"actual": "own lead", "predicted": f"rank {bucket}"})
    return buckets


def split_retrieval(articles: Sequence[dict], score) -> tuple[dict, dict] | dict:
    """Both query sets of one split scored by ``score(queries, candidates)`` → (queries,
    candidates) scores: the headline → lead metrics, the body sentence → article ones (keys
    ``sentence_…``), and per query ``[top-1, reciprocal rank]`` (:func:`query_items`) of each
    set, ``{"sentence": [...], "headline": [...]}`` (the comparisons' items). A ``score``
    that returns several named score matrices gets a dict of such pairs."""
    queries, candidates = queries_and_candidates(articles)
    by_sentence = sentence_queries(articles)
    headline = score(queries, candidates)
    sentence = score(by_sentence.queries, by_sentence.candidates)

    def one(headline_scores: np.ndarray, sentence_scores: np.ndarray) -> tuple[dict, dict]:
        metrics = retrieval_metrics(headline_scores)
        per_article = by_sentence.gather(sentence_scores)  # (queries, articles)
        metrics.update({f"sentence_{k}": v
                        for k, v in retrieval_metrics(per_article, by_sentence.gold).items()})
        return metrics, {"sentence": query_items(per_article, by_sentence.gold),
                         "headline": query_items(headline_scores)}

    if isinstance(headline, dict):
        return {name: one(headline[name], sentence[name]) for name in headline}
    return one(headline, sentence)


def selection_key(metrics: dict) -> tuple[float, float]:
    """What valid ranks peer settings by: the sentence set (the comparison's), top-1 then MRR."""
    return metrics["sentence_top1"], metrics["sentence_mrr"]
