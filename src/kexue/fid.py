"""FMNIST-FID: the Fréchet distance between Gaussians fitted to the penultimate-layer features (the
input of the last layer) of the image family's trained classifier (``models/image``), as FID does
with Inception features; the floor is the distance between the test and training sets. And its
paired bootstrap: FID is a statistic of whole sets, so each resample recomputes it from resampled
moments, never averaging per image."""

from __future__ import annotations

import weakref
from pathlib import Path

import keras
import numpy as np

from kexue.corpora.fashion_mnist import load_split
from kexue.pixels import SIDE


def significant(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits (FMNIST-FID values and their floor differ by
    orders of magnitude, so a fixed number of decimals would erase the floor)."""
    return float(f"{float(value):.{digits}g}")


def load_classifier(model_dir: str | Path) -> keras.Model:
    """The image family's saved classifier (``model_dir/model.keras``) — loaded here, not through
    the family's module, so a change to how the classifier is trained does not make the
    generative families' code stale (its trained weights are their data dependency)."""
    from kexue.io import require_files

    path = require_files(model_dir, ["model.keras"], "train_image") / "model.keras"
    return keras.saving.load_model(path, safe_mode=True, compile=False)


def feature_extractor(classifier: keras.Model) -> keras.Model:
    """The classifier cut before its last layer: uint8 images (n, 28, 28) → penultimate
    features (the last layer's input)."""
    last = classifier.layers[-1]
    return keras.Model(classifier.inputs[0], last.input, name="fid_features")


_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # extractor → its traced call


def _graph(extractor: keras.Model):
    """``extractor(images, training=False)`` traced once as a TensorFlow graph (any batch size):
    the same kernels as the eager call, without its per-layer Python dispatch."""
    if extractor not in _GRAPHS:
        import tensorflow as tf

        _GRAPHS[extractor] = tf.function(lambda images: extractor(images, training=False),
                                         input_signature=[tf.TensorSpec((None, SIDE, SIDE), tf.uint8)])
    return _GRAPHS[extractor]


def image_features(extractor: keras.Model, pixels: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Penultimate features of uint8 images (n, 28, 28) or (n, 784). # (n, features) float64"""
    pixels = np.asarray(pixels, dtype=np.uint8).reshape(-1, SIDE, SIDE)
    call = _graph(extractor)
    out = [keras.ops.convert_to_numpy(call(pixels[i:i + batch_size]))
           for i in range(0, len(pixels), batch_size)]
    return np.concatenate(out).astype(np.float64)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`` between two Gaussians.

    Why eigh and not ``sqrtm(S1 @ S2)``: the product of two covariances is not symmetric and its
    square root comes out complex with round-off; tr((S1 S2)^(1/2)) equals the sum of the square
    roots of the eigenvalues of the symmetric PSD matrix S1^(1/2) S2 S1^(1/2) (same spectrum as
    S1 S2), which ``eigh`` computes stably."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    w, v = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # S1^(1/2)
    middle = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def feature_moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (n, f)."""
    return frechet_distance(*feature_moments(features_a), *feature_moments(features_b))


class FidScorer:
    """FMNIST-FID against the test set with the classifier in ``classifier_dir``; the test and
    training features are computed once (the training ones only when :meth:`floor` is asked).
    ``floor``: the floor when it is already known — computed with the same classifier and data
    elsewhere — so the 60k training images need not go through the classifier again."""

    def __init__(self, classifier_dir: str | Path, data_dir: str | Path, floor: float | None = None):
        self.extractor = feature_extractor(load_classifier(classifier_dir))
        self.test_features = image_features(self.extractor, load_split(data_dir, "test")[0])
        self.test_moments = feature_moments(self.test_features)
        self.data_dir = data_dir
        self._floor = None if floor is None else float(floor)

    def floor(self) -> float:
        """FID(test set, the 60k training images): the score of real data."""
        if self._floor is None:
            train = image_features(self.extractor, load_split(self.data_dir, "train")[0])
            self._floor = frechet_distance(*self.test_moments, *feature_moments(train))
        return self._floor

    def __call__(self, pixels: np.ndarray) -> float:
        return frechet_distance(*feature_moments(image_features(self.extractor, pixels)),
                                *self.test_moments)


def _weighted_moments(centred: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof 1, as :func:`feature_moments`) of a resample given as counts,
    from features already centred on their own mean (the mean returned is relative to it).

    Only the drawn rows enter, each scaled by the square root of its count, so the weighted sum
    of outer products is one ``Z.T @ Z`` (NumPy hands it to BLAS's symmetric rank-k update); the
    resample's own mean is taken out afterwards, ``S = (Σ c y yᵀ − n d dᵀ) / (n − 1)`` — the
    centred covariance, and without cancellation since ``d`` is small next to the spread."""
    drawn = np.flatnonzero(counts)
    weights = counts[drawn].astype(np.float64)
    n = weights.sum()
    rows = centred[drawn]
    mean = weights @ rows / n
    scaled = rows * np.sqrt(weights)[:, None]
    return mean, (scaled.T @ scaled - n * np.outer(mean, mean)) / (n - 1)


def fid_comparison(reference: dict[str, np.ndarray], ours: np.ndarray, theirs: np.ndarray,
                   peer: str, resamples: int = 1000, seed: int = 0) -> dict:
    """The ``comparison`` block (:mod:`kexue.comparison`) for FMNIST-FID, lower is better.

    ``reference[split]`` holds the features of the real images of that split (valid, test);
    ``ours`` and ``theirs`` the features of each model's samples. A resample draws the real
    images with replacement — the same draw for both models (paired) — and each model's samples
    with replacement, and recomputes both FIDs from the resampled moments: FID is a statistic of
    whole sets, so it is recomputed per resample, never averaged per image.

    The resamples run with BLAS on one thread: their algebra is small, and BLAS threads cost
    more in synchronisation than they save (busy-waiting for a core on a loaded machine)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)

    def draw(n: int) -> np.ndarray:  # how often each of n items is drawn, n draws in all
        return rng.multinomial(n, np.full(n, 1 / n))

    block = {"metric": "fid", "higher_is_better": False, "peer": peer, "resamples": resamples,
             "seed": seed}
    mine, other = feature_moments(ours), feature_moments(theirs)
    # each set centred on its mean once: a resample's moments are then relative to it
    ours_c, theirs_c = ours - mine[0], theirs - other[0]
    for split in ("valid", "test"):
        real = reference[split]
        real_mean = real.mean(axis=0)
        real_c = real - real_mean
        a = frechet_distance(*mine, *feature_moments(real))
        b = frechet_distance(*other, *feature_moments(real))
        deltas = np.empty(resamples)
        with threadpool_limits(1, user_api="blas"):
            for r in range(resamples):
                # per resample the real images', our samples' and the peer's draws, in this order
                real_d, real_cov = _weighted_moments(real_c, draw(len(real)))
                ours_d, ours_cov = _weighted_moments(ours_c, draw(len(ours)))
                theirs_d, theirs_cov = _weighted_moments(theirs_c, draw(len(theirs)))
                real_moments = (real_mean + real_d, real_cov)
                deltas[r] = (frechet_distance(mine[0] + ours_d, ours_cov, *real_moments)
                             - frechet_distance(other[0] + theirs_d, theirs_cov, *real_moments))
        low, high = np.percentile(deltas, [2.5, 97.5])
        block[split] = {"kexue": significant(a), "peer": significant(b), "delta": significant(a - b),
                        "ci95": [significant(low), significant(high)], "n": int(len(real)),
                        "samples": [int(len(ours)), int(len(theirs))]}
    return block
