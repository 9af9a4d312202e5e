"""The generative families' peer (stage ``baselines_generative``): scikit-learn's GaussianMixture on
the same dequantised training images, each covariance type's n_components grown until valid
bits/dim stops improving, each fit's EM iterations stopped on valid bits/dim as the networks'
epochs are; scored by bits/dim (mean and per image, for the paired bootstrap). Its samples are
kept for the evaluate stages, which score them by FMNIST-FID with the same classifier as each
model's (so retraining the classifier does not refit the mixture)."""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from kexue.io import atomic_path
from kexue.pixels import (
    bad_param,
    bits_per_dim,
    dequantize,
    load_pixels,
    save_grid,
    to_pixels,
)


@dataclass(frozen=True)
class BaselineConfig:
    components: dict[str, list[int]]  # {covariance type: ascending n_components candidates}; each walk stops at the first candidate that does not improve valid bits/dim
    reg_covar: float = field(metadata={"min": 0.0})  # added to the covariance diagonals (x in [0, 1]: the dequantisation noise variance is 1/(12·256²) ≈ 1.3e-6)
    max_train: int = field(metadata={"min": 0})  # fit on this many training images (seeded sample); 0 = all
    init_params: Literal["kmeans", "k-means++", "random_from_data"]  # GaussianMixture's initialisation (k-means++ seeding alone skips Lloyd's iterations, which dominate at large n_components)
    max_iter: int = field(metadata={"min": 1})  # EM iterations per fit at most
    eval_every: int = field(metadata={"min": 1})  # EM iterations between two valid bits/dim checks of a fit
    min_gain: float = field(metadata={"min": 0.0})  # a fit stops at the first check that improves valid bits/dim by less than this (its best check is kept)
    valid_size: int = field(metadata={"min": 1})  # valid images carved from the training set (same split as the networks)
    fid_samples: int = field(metadata={"min": 2})  # samples drawn for FMNIST-FID and the grid
    seed: int


COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")


def check_baseline(cfg: BaselineConfig) -> None:
    if not cfg.components:
        raise bad_param("baselines.generative.components", cfg.components,
                        "a mapping {covariance type: [n_components, ...]} with at least one entry")
    for kind, ks in cfg.components.items():
        if kind not in COVARIANCE_TYPES:
            raise bad_param(f"baselines.generative.components.{kind}", ks,
                            f"a covariance type among {' | '.join(COVARIANCE_TYPES)} as the key")
        if not ks or min(ks) < 1 or list(ks) != sorted(set(ks)):
            raise bad_param(f"baselines.generative.components.{kind}", ks,
                            "a non-empty ascending list of distinct values >= 1")


def walk_grid(candidates: list[int], score) -> tuple[list[tuple[int, float]], bool]:
    """Score ascending ``candidates`` (lower is better) until one does not improve on the one
    before it. Returns the ``(candidate, score)`` pairs tried and whether the walk ended because
    the scores stopped improving (False: the largest candidate was still improving — the grid
    should be extended)."""
    tried: list[tuple[int, float]] = []
    for k in candidates:
        value = score(k)
        tried.append((k, value))
        if len(tried) > 1 and value >= tried[-2][1]:
            return tried, True
    return tried, False


def fit_on_valid(model, x_train: np.ndarray, x_valid: np.ndarray,
                 cfg: BaselineConfig) -> tuple[object, float, dict]:
    """Run EM on ``x_train`` in rounds of ``cfg.eval_every`` iterations (``model`` is a
    warm-started GaussianMixture, so each ``fit`` continues the last), scoring valid bits/dim after
    each round; stop when a round improves it by less than ``cfg.min_gain``, EM converges, or
    ``cfg.max_iter`` iterations have run. Returns the best round's model, its valid bits/dim and
    how the fit ended (``em_iterations``, ``stopped``, ``valid_trace``)."""
    from sklearn.exceptions import ConvergenceWarning

    done, best, trace, stopped = 0, None, [], "max_iter"
    while done < cfg.max_iter:
        model.max_iter = min(cfg.eval_every, cfg.max_iter - done)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a round is meant to stop short
            model.fit(x_train)
        done += model.n_iter_
        bpd = float(bits_per_dim(-model.score(x_valid)))
        trace.append([done, round(bpd, 4)])
        gained = best is None or bpd < best[1] - cfg.min_gain
        if best is None or bpd < best[1]:
            best = (copy.deepcopy(model), bpd, done)
        if model.converged_:
            stopped = "EM converged"
            break
        if not gained:
            stopped = "valid gain below min_gain"
            break
    kept, bpd, iterations = best
    return kept, bpd, {"em_iterations": iterations, "stopped": stopped, "valid_trace": trace}


def gaussian_mixture_peer(cfg: BaselineConfig, data_dir: str | Path,
                          grid_path: str | Path | None = None, limit_train: int = 0,
                          samples_path: str | Path | None = None) -> dict:
    """Fit a GaussianMixture per candidate on dequantised training images (for each covariance
    type, growing n_components until valid bits/dim stops improving), keep the one with the best
    valid bits/dim, score it on the (dequantised) test set — mean and per image, for the paired
    bootstrap; ``samples_path`` keeps ``cfg.fid_samples`` samples (``.npy``, uint8 (n, 28, 28))
    for the evaluate stages' FMNIST-FID, so every model's FID is drawn on the same footing."""
    from sklearn.mixture import GaussianMixture

    check_baseline(cfg)
    train, valid, test = load_pixels(data_dir, cfg.valid_size, cfg.seed, limit_train,
                                     family="baselines.generative")
    rng = np.random.default_rng([cfg.seed, 7])
    if 0 < cfg.max_train < len(train):
        train = train[np.sort(rng.choice(len(train), cfg.max_train, replace=False))]
    x_train = dequantize(train, rng).astype(np.float64)
    x_valid = dequantize(valid, np.random.default_rng([cfg.seed, 8])).astype(np.float64)
    x_test = dequantize(test, np.random.default_rng([cfg.seed, 9])).astype(np.float64)
    tried, fitted, walks = [], {}, {}
    grid_start = time.perf_counter()
    for kind, candidates in cfg.components.items():
        def score(k: int, kind: str = kind) -> float:
            start = time.perf_counter()
            model = GaussianMixture(k, covariance_type=kind, reg_covar=cfg.reg_covar,
                                    init_params=cfg.init_params, random_state=cfg.seed,
                                    warm_start=True)
            model, bpd, fit = fit_on_valid(model, x_train, x_valid, cfg)
            seconds = time.perf_counter() - start
            tried.append({"n_components": k, "covariance_type": kind,
                          "valid_bits_per_dim": round(bpd, 4), "fit_seconds": round(seconds, 1),
                          **fit})
            fitted[(kind, k)] = (model, bpd, seconds)
            print(f"gmm: {kind} k={k} valid {bpd:.4f} bits/dim after {fit['em_iterations']} EM "
                  f"iterations ({fit['stopped']}, {seconds:.0f}s)", flush=True)
            return bpd

        walk, stopped = walk_grid(list(candidates), score)
        walks[kind] = "stopped improving" if stopped else "still improving at the largest candidate"
        # only the best of each walk is kept in memory
        best_k = min(walk, key=lambda pair: pair[1])[0]
        for k, _ in walk:
            if k != best_k:
                fitted.pop((kind, k), None)
    best, best_bpd, best_seconds = min(fitted.values(), key=lambda entry: entry[1])
    per_image = {split: bits_per_dim(-best.score_samples(x)) for split, x in
                 (("valid", x_valid), ("test", x_test))}
    result = {"test": {"bits_per_dim": round(float(per_image["test"].mean()), 4)},
              "valid": {"bits_per_dim": round(best_bpd, 4)},
              "n_components": int(best.n_components), "covariance_type": best.covariance_type,
              "train_images": int(len(x_train)), "train_seconds": round(best_seconds, 1),
              "grid_seconds": round(time.perf_counter() - grid_start, 1), "grid": walks, "candidates": tried,
              "items": {split: [round(float(v), 5) for v in values]
                        for split, values in per_image.items()}}
    samples, _ = best.sample(cfg.fid_samples)
    samples = to_pixels(samples[np.random.default_rng(cfg.seed).permutation(len(samples))])  # sample() orders by component
    if samples_path is not None:
        samples_path = Path(samples_path)
        samples_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(samples_path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, samples)
    if grid_path is not None:
        save_grid(samples[:64], grid_path)
    return result
