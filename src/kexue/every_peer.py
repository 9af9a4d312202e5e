"""kexue against *every* peer on each of a family's target metrics, each with its paired bootstrap.

The ``comparison`` block (:mod:`kexue.comparison`) pits kexue against the one peer strongest on
valid, on one metric. Where a family's target names several metrics and several peers ("top-1
and MRR above BM25, TF-IDF and the m = 0 ablation"), each pair needs its own interval. A family
asks for them with ``items["every_peer"]``: metric name → the columns of its per-item statistics
that metric reads (the same columns for kexue and every peer), or ``{"items": key, "columns":
[...]}`` for a second item set kept under ``items[key]`` = ``{"valid", "test"}`` by kexue and every
peer alike (e.g. another query set); the metric is computed from those columns with the family's
``kind`` (a key of :data:`kexue.comparison.METRICS`). The block::

    "comparisons": {"resamples": 1000, "seed": 0,
                    "<metric>": {"higher_is_better": true,
                                 "<peer>": {"valid": {"kexue", "peer", "delta", "ci95", "n"},
                                            "test": {...}}}}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from kexue.comparison import METRICS, paired_bootstrap


def _columns(stats, columns: Sequence[int]) -> np.ndarray:
    array = np.asarray(stats, dtype=np.float64)
    array = array[:, None] if array.ndim == 1 else array
    if max(columns) >= array.shape[1]:
        raise ValueError(f"every peer: column {max(columns)} asked for, but the per-item statistics "
                         f"have {array.shape[1]} columns")
    return array[:, list(columns)]


def _item_set(items: Mapping, key: str | None, metric: str, owner: str) -> Mapping:
    if key is None:
        return items
    if key not in items:
        raise ValueError(f"every peer: {metric} reads the item set {key!r}, which {owner}'s "
                         "per-item results lack")
    return items[key]


def every_peer_block(ours: Mapping, peers: Mapping[str, Mapping], resamples: int = 1000,
                     seed: int = 0) -> dict | None:
    """The ``comparisons`` block from kexue's ``items`` (with ``every_peer``, ``kind`` and
    optionally ``higher_is_better``) and each peer's ``items`` (``{"valid", "test"}``); None when
    kexue asks for none. Peers without per-item results are left out."""
    wanted = ours.get("every_peer")
    if not wanted:
        return None
    score = METRICS[ours.get("kind", "mean")]
    block: dict = {"resamples": resamples, "seed": seed}
    for metric, spec in wanted.items():
        key, columns = (spec["items"], spec["columns"]) if isinstance(spec, dict) else (None, spec)

        rows: dict = {"higher_is_better": ours.get("higher_is_better", True)}
        mine = _item_set(ours, key, metric, "kexue")
        for name, items in peers.items():
            theirs = _item_set(items, key, metric, name)
            rows[name] = {split: paired_bootstrap(_columns(mine[split], columns),
                                                  _columns(theirs[split], columns), score,
                                                  resamples, seed)
                          for split in ("valid", "test")}
        block[metric] = rows
    return block


def attach_every_peer(metrics: dict, peers: Mapping, resamples: int = 1000, seed: int = 0) -> dict:
    """Add ``metrics["comparisons"]`` from the per-item results still in ``metrics["items"]`` and
    the peers' ``items`` (call before :func:`kexue.comparison.attach`, which drops them);
    ``every_peer`` itself is removed from the items."""
    ours = metrics.get("items")
    if not isinstance(ours, dict) or "every_peer" not in ours:
        return metrics
    theirs = {name: peer["items"] for name, peer in peers.items()
              if isinstance(peer, dict) and "items" in peer}
    block = every_peer_block(ours, theirs, resamples, seed)
    del ours["every_peer"]
    if block is not None and theirs:
        metrics["comparisons"] = block
    return metrics
