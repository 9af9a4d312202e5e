"""What the generative families (vae, nice, gan) share: dequantised data, bits/dim, FMNIST-FID,
sample grids, and the scikit-learn GaussianMixture peer.

**Densities and bits/dim.** Every density is defined on the *dequantised* images
``x = (pixel + u) / 256`` with ``u ~ U(0, 1)^784``, so ``x`` lies in [0, 1]^784 and a model's
``p(x)`` is an ordinary density there. Scaling ``y = 256 x`` (the usual "pixel + noise" space)
multiplies a density by ``256^-D``, so

    bits/dim = (-log p(x) + D ln 256) / (D ln 2),      D = 784,

which is the number reported in the flow literature (the uniform density on [0, 1]^D gives
exactly 8). A density that is constant inside every pixel bin — the VAE's discretised logistic
likelihood — equals ``256^D · P(pixels)``, so for it this is the discrete ``-log2 P(pixels) / D``;
NICE and the Gaussian mixture are densities on all of R^D, whose mass outside the cube only makes
their score on [0, 1]^D worse, never better: the comparison is fair.

**FMNIST-FID.** The Fréchet distance between Gaussians fitted to the penultimate-layer features
(the input of the last layer) of the image family's trained classifier (``models/image``), as
FID does with Inception features; the floor is the distance between the test and training sets.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from kexue.corpora.fashion_mnist import load_split, train_valid_split
from kexue.io import atomic_path

SIDE = 28
DIMS = SIDE * SIDE
LOG_256 = math.log(256.0)


# ---------------------------------------------------------------------------------------------
# data


def significant(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits (FMNIST-FID values and their floor differ by
    orders of magnitude, so a fixed number of decimals would erase the floor)."""
    return float(f"{float(value):.{digits}g}")


def bad_param(key: str, value, expected: str):
    from kexue.config import ConfigError

    return ConfigError(f"params.yaml: {key} = {value!r} is not valid: expected {expected}. "
                       f"Fix it in params.yaml or run `dvc exp run -S {key}=<value>`.")


def load_pixels(data_dir: str | Path, valid_size: int, seed: int, limit_train: int = 0,
                family: str = "generative"):
    """``(train, valid, test)`` uint8 pixels, each (n, 784): the 60k training images (or a
    stratified ``limit_train`` of them) split into train / valid as the image family does."""
    images, labels = load_split(data_dir, "train")
    if 0 < limit_train < len(labels):
        _, keep = train_valid_split(labels, limit_train, seed)
        images, labels = images[keep], labels[keep]
    if not 0 < valid_size < len(labels):
        raise bad_param(f"{family}.valid_size", valid_size,
                        f"1 .. {len(labels) - 1} (the training set has {len(labels)} images)")
    train_idx, valid_idx = train_valid_split(labels, valid_size, seed)
    test, _ = load_split(data_dir, "test")
    flat = [a.reshape(len(a), DIMS) for a in (images[train_idx], images[valid_idx], test)]
    return tuple(flat)


def dequantize(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(pixels + u) / 256``, u ~ U(0, 1): continuous data in [0, 1). # (n, 784) float32"""
    noise = rng.random(pixels.shape, dtype=np.float32)
    return (pixels.astype(np.float32) + noise) / 256.0


def to_pixels(x: np.ndarray) -> np.ndarray:
    """Continuous images in [0, 1] back to uint8 pixels (the bin each value falls in). # (n, 28, 28)"""
    x = np.asarray(x, dtype=np.float64).reshape(-1, SIDE, SIDE)
    return np.clip(np.floor(x * 256.0), 0, 255).astype(np.uint8)


def bits_per_dim(nll: np.ndarray | float, dims: int = DIMS) -> np.ndarray | float:
    """``-log p(x)`` (nats, density on [0, 1]^dims) → bits per dimension of the 8-bit data."""
    return (np.asarray(nll, dtype=np.float64) + dims * LOG_256) / (dims * math.log(2.0))


def nll_from_bits(bpd, dims: int = DIMS):
    """Inverse of :func:`bits_per_dim`: bits/dim → ``-log p(x)`` in nats."""
    return np.asarray(bpd, dtype=np.float64) * dims * math.log(2.0) - dims * LOG_256


class DequantizedBatches(keras.utils.PyDataset):
    """Batches ``(x (b, 784) float32, zeros (b,))`` of freshly dequantised images; the order and
    the noise depend only on ``(seed, epoch)``, so a resumed run sees what an uninterrupted one
    sees (:class:`kexue.callbacks.EpochSync` sets the epoch). ``shuffle=False``: fixed order and
    fixed noise every epoch (validation)."""

    def __init__(self, pixels: np.ndarray, batch_size: int, seed: int = 0, shuffle: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.pixels, self.batch_size, self.seed, self.shuffle = pixels, batch_size, seed, shuffle
        self.epoch = 0
        self._fixed = None if shuffle else dequantize(pixels, np.random.default_rng(seed))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def num_examples(self) -> int:
        return len(self.pixels)

    def __len__(self) -> int:
        return -(-len(self.pixels) // self.batch_size)

    def __getitem__(self, index: int):
        if not self.shuffle:
            x = self._fixed[index * self.batch_size:(index + 1) * self.batch_size]
            return x, np.zeros(len(x), np.float32)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.pixels))
        idx = order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        return dequantize(self.pixels[idx], rng), np.zeros(len(idx), np.float32)

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.set_epoch(self.epoch + 1)


def output_as_loss(y_true, y_pred):
    """The model's output *is* the per-example loss (bits/dim); Keras averages it."""
    return y_pred


class EpochClock(keras.callbacks.Callback):
    """Adds ``elapsed_seconds`` (wall time since training began) to each epoch's logs."""

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        from kexue.checkpoint import resumed_seconds

        if logs is not None:  # a resumed run's clock continues from the interrupted run's
            logs["elapsed_seconds"] = (resumed_seconds(self.model)
                                       + time.perf_counter() - self.start)


# ---------------------------------------------------------------------------------------------
# training and saved models


def save_models(model_dir: str | Path, parts: dict[str, keras.Model]) -> None:
    """Each model of ``parts`` as ``model_dir/<name>.keras`` (atomic writes)."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        with atomic_path(model_dir / f"{name}.keras") as tmp:
            part.save(tmp)


def load_models(model_dir: str | Path, names: tuple[str, ...], stage: str) -> tuple[list[keras.Model], dict]:
    """``model_dir/<name>.keras`` for each name and ``train_info.json``; a missing file is an
    error naming the DVC stage that writes it."""
    from kexue.io import read_json, require_files

    model_dir = require_files(model_dir, (*(f"{n}.keras" for n in names), "train_info.json"), stage)
    models = [keras.saving.load_model(model_dir / f"{n}.keras", safe_mode=True, compile=False)
              for n in names]
    return models, read_json(model_dir / "train_info.json")


def train_density(family: str, cfg, build, data_dir: str | Path, model_dir: str | Path,
                  live_dir: str | Path | None, resume_root: str | Path | None = None) -> dict:
    """Maximum likelihood for a density family (``vae``, ``nice``): ``build()`` returns the
    model whose output is the per-example loss in bits/dim and the ``{name: model}`` parts to
    save. Freshly dequantised training images each epoch, fixed-noise valid images; the valid
    loss picks the epoch. Writes the parts and ``train_info.json`` into ``model_dir``."""
    import dataclasses
    import shutil

    from kexue.io import write_json
    from kexue.train import build_optimizer, fit, make_strategy, run_key, seed_everything

    data_dir, model_dir = Path(data_dir), Path(model_dir)
    train_px, valid_px, _ = load_pixels(data_dir, cfg.valid_size, cfg.fit.seed, cfg.limit_train, family)
    seed_everything(cfg.fit.seed, cfg.fit.deterministic)
    resume_dir = None
    if resume_root is not None:
        key = run_key(dataclasses.asdict(cfg), sorted(data_dir.glob("train-*")))
        resume_dir = Path(resume_root) / family / key
    with make_strategy(cfg.fit.distribute).scope():
        model, parts = build()
        model.compile(optimizer=build_optimizer(cfg.fit.optimizer, model), loss=output_as_loss)
    batches = DequantizedBatches(train_px, cfg.fit.batch_size, seed=cfg.fit.seed)
    valid = DequantizedBatches(valid_px, 500, seed=cfg.fit.seed + 1, shuffle=False)
    result = fit(model, batches, valid, cfg.fit, monitor="val_loss", mode="min", live_dir=live_dir,
                 resume_dir=resume_dir, scorers=[EpochClock()])
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)
    save_models(model_dir, parts)
    info = {"config": dataclasses.asdict(cfg), "params": int(model.count_params()),
            "train_examples": int(len(train_px)), "valid_examples": int(len(valid_px)),
            **result.to_dict()}
    write_json(model_dir / "train_info.json", info)
    return info


# ---------------------------------------------------------------------------------------------
# FMNIST-FID


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
    training features are computed once. ``floor``: the floor when it is already known — as
    computed with the same classifier and data elsewhere (the Gaussian-mixture peer's JSON
    records it) — so the 60k training images need not go through the classifier again."""

    def __init__(self, classifier_dir: str | Path, data_dir: str | Path, floor: float | None = None):
        from kexue.families.image import load_classifier

        classifier, _ = load_classifier(classifier_dir)
        self.extractor = feature_extractor(classifier)
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


def model_fid_comparison(family: str, model_dir: str | Path, data_dir: str | Path, scorer: FidScorer,
                         peer_samples: np.ndarray, peer: str = "gaussian_mixture",
                         resamples: int = 1000) -> dict:
    """:func:`fid_comparison` of a trained ``family`` model (its own ``fid_samples`` samples,
    drawn as its evaluation draws them) with the peer's samples, against the valid images of the
    model's split and the test set."""
    import importlib

    from kexue.io import read_json

    module = importlib.import_module(f"kexue.families.{family}")
    cfg = read_json(Path(model_dir) / "train_info.json")["config"]
    seed = cfg["fit"]["seed"]
    _, valid_px, _ = load_pixels(data_dir, cfg["valid_size"], seed, cfg["limit_train"], family)
    reference = {"valid": image_features(scorer.extractor, valid_px), "test": scorer.test_features}
    ours = image_features(scorer.extractor, module.sample(model_dir, cfg["fid_samples"], seed))
    theirs = image_features(scorer.extractor, peer_samples)
    return fid_comparison(reference, ours, theirs, peer, resamples=resamples, seed=seed)


# ---------------------------------------------------------------------------------------------
# pictures


def save_grid(pixels: np.ndarray, path: str | Path, columns: int = 8, zoom: int = 2,
              gap: int = 2) -> Path:
    """A PNG of uint8 images (n, 28, 28) in rows of ``columns``, light on black as the data."""
    from PIL import Image

    pixels = np.asarray(pixels, dtype=np.uint8).reshape(-1, SIDE, SIDE)
    n = len(pixels)
    rows = max(1, -(-n // columns))
    cell = SIDE + gap
    canvas = np.full((rows * cell + gap, columns * cell + gap), 64, np.uint8)
    for i, image in enumerate(pixels):
        r, c = divmod(i, columns)
        canvas[gap + r * cell: gap + r * cell + SIDE, gap + c * cell: gap + c * cell + SIDE] = image
    picture = Image.fromarray(canvas).resize((canvas.shape[1] * zoom, canvas.shape[0] * zoom),
                                             Image.Resampling.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")
    return path


# ---------------------------------------------------------------------------------------------
# the peer: scikit-learn GaussianMixture on the same dequantised data


@dataclass(frozen=True)
class BaselineConfig:
    components: dict[str, list[int]]  # {covariance type: ascending n_components candidates}; each walk stops at the first candidate that does not improve valid bits/dim
    reg_covar: float = field(metadata={"min": 0.0})  # added to the covariance diagonals (x in [0, 1]: the dequantisation noise variance is 1/(12·256²) ≈ 1.3e-6)
    max_train: int = field(metadata={"min": 0})  # fit on this many training images (seeded sample); 0 = all
    max_iter: int = field(metadata={"min": 1})  # EM iterations per fit
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


def gaussian_mixture_peer(cfg: BaselineConfig, data_dir: str | Path, classifier_dir: str | Path | None,
                          grid_path: str | Path | None = None, limit_train: int = 0,
                          samples_path: str | Path | None = None) -> dict:
    """Fit a GaussianMixture per candidate on dequantised training images (for each covariance
    type, growing n_components until valid bits/dim stops improving), keep the one with the best
    valid bits/dim, score it on the (dequantised) test set — mean and per image, for the paired
    bootstrap — and its samples by FMNIST-FID; ``samples_path`` keeps the samples (``.npy``,
    uint8 (n, 28, 28)) so every model's FID comparison can be drawn on the same footing."""
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
    for kind, candidates in cfg.components.items():
        def score(k: int, kind: str = kind) -> float:
            start = time.perf_counter()
            model = GaussianMixture(k, covariance_type=kind, reg_covar=cfg.reg_covar,
                                    max_iter=cfg.max_iter, random_state=cfg.seed)
            model.fit(x_train)
            seconds = time.perf_counter() - start
            bpd = float(bits_per_dim(-model.score(x_valid)))
            tried.append({"n_components": k, "covariance_type": kind,
                          "valid_bits_per_dim": round(bpd, 4), "fit_seconds": round(seconds, 1),
                          "converged": bool(model.converged_)})
            fitted[(kind, k)] = (model, bpd, seconds)
            print(f"gmm: {kind} k={k} valid {bpd:.4f} bits/dim ({seconds:.0f}s)", flush=True)
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
              "grid": walks, "candidates": tried,
              "items": {split: [round(float(v), 5) for v in values]
                        for split, values in per_image.items()}}
    samples, _ = best.sample(cfg.fid_samples)
    samples = to_pixels(samples[np.random.default_rng(cfg.seed).permutation(len(samples))])  # sample() orders by component
    if samples_path is not None:
        samples_path = Path(samples_path)
        samples_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(samples_path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, samples)
    if classifier_dir is not None:
        scorer = FidScorer(classifier_dir, data_dir)
        result["test"]["fid"] = significant(scorer(samples))
        result["test"]["fid_floor_test_vs_train"] = significant(scorer.floor())
    if grid_path is not None:
        save_grid(samples[:64], grid_path)
    return result
