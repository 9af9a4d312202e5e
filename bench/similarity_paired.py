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
from sklearn.feature_extraction.text import TfidfVectorizer

from kexue.config import load_section
from kexue.families import similarity as sim
from kexue.io import read_json


def _paired(model: np.ndarray, peer: np.ndarray) -> dict:
    only_model, only_peer = int((model & ~peer).sum()), int((peer & ~model).sum())
    n = only_model + only_peer
    p = binomtest(only_model, n).pvalue if n else 1.0
    return {"model_top1": round(float(model.mean()), 4), "peer_top1": round(float(peer.mean()), 4),
            "only_model": only_model, "only_peer": only_peer, "sign_test_p": round(float(p), 4)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/prepared/articles")
    parser.add_argument("--model", default="models/similarity")
    parser.add_argument("--metrics", default="metrics/similarity.json")
    args = parser.parse_args(argv)

    peers = read_json(args.metrics)["peers"]
    terms, k1, b = (peers["bm25"]["chosen"][key] for key in ("terms", "k1", "b"))
    ngram_max = peers["tfidf_char"]["chosen"]["ngram_max"]
    # the baselines' TF-IDF: sublinear tf, idf from the training sentences (min_df from params)
    min_df = load_section("baselines.similarity", sim.BaselineConfig).tfidf_min_df
    tfidf = TfidfVectorizer(analyzer="char", ngram_range=(1, ngram_max), min_df=min_df,
                            sublinear_tf=True).fit(sim.members(sim.load_articles(args.data, "train"), 1)[0])
    encoder = sim.SentenceEncoder(args.model)
    out = {}
    for split in ("test", "valid"):
        queries, candidates = sim.queries_and_candidates(sim.load_articles(args.data, split))
        hits = lambda scores: sim.gold_ranks(scores) == 1  # noqa: E731
        model = hits(encoder.vectors(queries) @ encoder.vectors(candidates).T)
        bm25 = sim.BM25([sim.bm25_terms(c, terms) for c in candidates], k1, b)
        result = {
            "bm25": _paired(model, hits(bm25.scores([sim.bm25_terms(q, terms) for q in queries]))),
            "tfidf_char": _paired(model, hits(np.asarray(
                (tfidf.transform(queries) @ tfidf.transform(candidates).T).todense()))),
        }
        if sim.is_hybrid(encoder.encoder):
            learnt, bag = (hits(encoder.part_vectors(queries, part) @ encoder.part_vectors(candidates, part).T)
                           for part in ("learnt", "ngrams"))
            result["parts"] = {"only_learnt": int((learnt & ~bag).sum()), "only_ngrams": int((bag & ~learnt).sum()),
                               "oracle_top1": round(float((learnt | bag).mean()), 4)}
        out[split] = result
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
