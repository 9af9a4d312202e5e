"""Okapi BM25 through ``bm25s`` (its default Lucene variant): the lexical retrieval peer.

A document's score for a query is the sum over the query's tokens (a token the query repeats
counts each time, as ``bm25s`` scores a token list) of

    idf(t) · tf(t, d) / (tf(t, d) + k1 · (1 − b + b · |d| / avgdl)),
    idf(t) = ln(1 + (N − n_t + 0.5) / (n_t + 0.5))

(N documents, n_t of them contain t, |d| in tokens); tokens the collection lacks add nothing.
The caller tokenizes (``bm25s`` indexes any token lists): the similarity family gives it
characters and / or character bigrams.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def require_bm25s():
    try:
        import bm25s
    except ImportError:
        raise ImportError("the BM25 peer needs the package bm25s: "
                          "pip install bm25s==0.3.16 (make setup installs it)") from None
    return bm25s


def scores(documents: Sequence[Sequence[str]], queries: Sequence[Sequence[str]], k1: float = 1.5,
           b: float = 0.75) -> np.ndarray:
    """(queries, documents) BM25 scores, ``documents`` being the indexed collection."""
    if k1 < 0 or not 0 <= b <= 1:
        raise ValueError(f"BM25: need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
    bm25s = require_bm25s()
    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index([list(d) for d in documents], show_progress=False)
    out = np.zeros((len(queries), len(documents)), dtype=np.float64)
    for row, query in enumerate(queries):
        ids = retriever.get_tokens_ids(list(query))  # tokens the collection lacks are left out
        if ids:
            out[row] = retriever.get_scores_from_ids(ids)
    return out
