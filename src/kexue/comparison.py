"""Paired bootstrap comparison of kexue with its strongest peer, on the same test items.

Each system is described per item by a row of additive statistics (``stats[i]``: e.g. ``[correct]``
for accuracy, ``[true positives, predicted, gold]`` for F1). A resample draws items with
replacement, sums the rows of both systems over the *same* draw and recomputes the corpus-level
metric from the sums, so F1 is an F1 of the resample, not a mean of per-item F1s (Koehn 2004,
"Statistical significance tests for machine translation evaluation").

The block every ``metrics/<family>.json`` carries::

    "comparison": {"metric": "f1", "peer": "<strongest on valid>", "resamples": 1000, "seed": 0,
                   "valid": {"kexue": .., "peer": .., "delta": .., "ci95": [lo, hi], "n": ..},
                   "test":  {...}}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

# metric(totals, n) -> value; totals: (..., k) sums of the per-item statistics over n items
Metric = Callable[[np.ndarray, int], np.ndarray]


def mean_metric(totals: np.ndarray, n: int) -> np.ndarray:
    """The mean of a per-item value (accuracy, top-1, ROUGE-L, bits/dim): stats ``[value]``."""
    return totals[..., 0] / n


def f1_metric(totals: np.ndarray, n: int) -> np.ndarray:
    """Corpus F1 from stats ``[true positives, predicted, gold]`` (0 when nothing was predicted
    or expected)."""
    tp, predicted, gold = totals[..., 0], totals[..., 1], totals[..., 2]
    denominator = predicted + gold
    return np.where(denominator > 0, 2.0 * tp / np.maximum(denominator, 1e-12), 0.0)


METRICS: dict[str, Metric] = {"mean": mean_metric, "f1": f1_metric}


def _as_stats(stats) -> np.ndarray:
    array = np.asarray(stats, dtype=np.float64)
    return array[:, None] if array.ndim == 1 else array


def paired_bootstrap(ours, theirs, metric: Metric = mean_metric, resamples: int = 1000,
                     seed: int = 0, chunk: int = 100) -> dict:
    """``{"kexue", "peer", "delta", "ci95", "n"}``: the metric of each system on all items, their
    difference (ours − theirs) and the 2.5th / 97.5th percentiles of that difference over
    ``resamples`` paired resamples of the items."""
    ours, theirs = _as_stats(ours), _as_stats(theirs)
    if ours.shape != theirs.shape:
        raise ValueError(f"paired bootstrap: the systems' statistics differ in shape "
                         f"({ours.shape} vs {theirs.shape}): score both on the same items")
    n = len(ours)
    if n == 0:
        raise ValueError("paired bootstrap: no items to resample")
    if resamples < 1:
        raise ValueError(f"paired bootstrap: resamples = {resamples}: expected at least 1")
    rng = np.random.default_rng(seed)
    deltas = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)  # (size, n)
        deltas.append(metric(counts @ ours, n) - metric(counts @ theirs, n))
    deltas = np.concatenate(deltas)
    a, b = float(metric(ours.sum(0), n)), float(metric(theirs.sum(0), n))
    low, high = np.percentile(deltas, [2.5, 97.5])
    return {"kexue": round(a, 4), "peer": round(b, 4), "delta": round(a - b, 4),
            "ci95": [round(float(low), 4), round(float(high), 4)], "n": int(n)}


def comparison_block(metric_name: str, ours: Mapping[str, np.ndarray],
                     peers: Mapping[str, Mapping[str, np.ndarray]], metric: str = "mean",
                     higher_is_better: bool = True, resamples: int = 1000, seed: int = 0) -> dict:
    """The ``comparison`` block: the peer strongest on *valid* (never test), and kexue's paired
    bootstrap difference from it on valid and on test. ``ours[split]`` and
    ``peers[name][split]`` hold per-item statistics of the same items in the same order."""
    if not peers:
        raise ValueError("comparison: no peer has per-item results to compare with")
    score = METRICS[metric]

    def valid_score(name: str) -> float:
        stats = _as_stats(peers[name]["valid"])
        return float(score(stats.sum(0), len(stats)))

    ranked = sorted(peers, key=valid_score, reverse=higher_is_better)
    best = ranked[0]
    block = {"metric": metric_name, "higher_is_better": higher_is_better, "peer": best,
             "resamples": resamples, "seed": seed}
    for split in ("valid", "test"):
        block[split] = paired_bootstrap(ours[split], peers[best][split], score, resamples, seed)
    return block


def attach(metrics: dict, peers: dict, resamples: int = 1000, seed: int = 0) -> dict:
    """Move the per-item results out of a family's ``metrics`` and ``peers`` (their ``items``:
    ``{"valid": [...], "test": [...]}``, and for kexue also ``metric``, ``kind`` — a key of
    :data:`METRICS` — and ``higher_is_better``) into ``metrics["comparison"]``; the per-item
    lists themselves are not kept. A family without per-item results gets no block."""
    ours = metrics.pop("items", None)
    theirs = {name: peer.pop("items") for name, peer in peers.items()
              if isinstance(peer, dict) and "items" in peer}
    if ours is not None and theirs:
        metrics["comparison"] = comparison_block(
            ours["metric"], {split: ours[split] for split in ("valid", "test")}, theirs,
            metric=ours.get("kind", "mean"), higher_is_better=ours.get("higher_is_better", True),
            resamples=resamples, seed=seed)
    return metrics
