"""What the generative families (vae, nice, gan) share: dequantised batches, training, sample
grids, and the FID comparison of a trained model with the peer's samples.

Dequantised data and bits/dim are in :mod:`kexue.pixels`, **FMNIST-FID** in :mod:`kexue.fid`,
the GaussianMixture peer in :mod:`kexue.peers.generative`.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np

from kexue.fid import FidScorer, fid_comparison, image_features
from kexue.io import atomic_path
from kexue.pixels import dequantize, load_pixels

# ---------------------------------------------------------------------------------------------
# data


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
# FMNIST-FID of a trained model against the peer's samples (the measure itself: kexue.fid)


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
