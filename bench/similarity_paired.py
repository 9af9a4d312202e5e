"""Paired look at the similarity results: on how many queries do the model and a peer disagree?

With 265 queries per split, one query is 0.0038 of top-1, so the table alone cannot say whether
two scorers differ. For the trained model (``models/similarity``) against BM25 and TF-IDF at the
settings the baselines chose on valid (read from ``metrics/similarity.json``), this prints per
split the queries only the model gets right (top-1), those only the peer gets right, and the
two-sided exact sign test on those discordant queries. For a hybrid encoder it also counts the
queries each part alone gets right and the other does not, and the top-1 of an oracle that takes
the better part per query: the most any way of mixing the two parts could reach. Needs the
pipeline's outputs (``dvc repro evaluate@similarity``).

    python -m bench.similarity_paired
"""

import argparse
import json

import numpy as np
from scipy.stats import binomtest

from kexue import retrieval
from kexue.config import load_section
from kexue.corpora.prepared_articles import load_articles
from kexue.families import similarity as sim
from kexue.io import read_json
from kexue.peers import similarity as sim_peers


def _paired(model: np.ndarray, peer: np.ndarray) -> dict:
    only_model, only_peer = int((model & ~peer).sum()), int((peer & ~model).sum())
    n = only_model + only_peer
    p = binomtest(only_model, n).pvalue if n else 1.0
    return {"model_top1": round(float(model.mean()), 4), "peer_top1": round(float(peer.mean()), 4),
            "only_model": only_model, "only_peer": only_peer, "sign_test_p": round(float(p), 4)}


def _hits(scores: np.ndarray) -> np.ndarray:
    """Whether each query's own candidate ranks first (ties count against it)."""
    return retrieval.gold_ranks(scores) == 1


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/prepared/articles")
    parser.add_argument("--model", default="models/similarity")
    parser.add_argument("--metrics", default="metrics/similarity.json")
    args = parser.parse_args(argv)

    peers = read_json(args.metrics)["peers"]
    terms, k1, b = (peers["bm25"]["chosen"][key] for key in ("terms", "k1", "b"))
    ngram_max = peers["tfidf_char"]["chosen"]["ngram_max"]
    min_df = load_section("baselines.similarity", sim_peers.BaselineConfig).tfidf_min_df
    tfidf = sim_peers.fit_tfidf(retrieval.members(load_articles(args.data, "train"), 1)[0], ngram_max, min_df)
    encoder = sim.SentenceEncoder(args.model)
    out = {}
    for split in ("test", "valid"):
        queries, candidates = retrieval.queries_and_candidates(load_articles(args.data, split))
        model = _hits(encoder.vectors(queries) @ encoder.vectors(candidates).T)
        result = {
            "bm25": _paired(model, _hits(sim_peers.bm25_scores(queries, candidates, terms, k1, b))),
            "tfidf_char": _paired(model, _hits(sim_peers.tfidf_scores(tfidf, queries, candidates))),
        }
        if sim.is_hybrid(encoder.encoder):
            parts = encoder.part_scores(queries, candidates)
            learnt, bag = _hits(parts["learnt"]), _hits(parts["ngrams"])
            result["parts"] = {"only_learnt": int((learnt & ~bag).sum()), "only_ngrams": int((bag & ~learnt).sum()),
                               "oracle_top1": round(float((learnt | bag).mean()), 4)}
        out[split] = result
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
