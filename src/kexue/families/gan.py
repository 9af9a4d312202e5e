"""DCGAN-style GAN on Fashion-MNIST trained with one loss and one optimizer step.

苏剑林, "巧断梯度：单个loss实现GAN模型" (kexue.fm/archives/6387): a GAN alternates two
problems, min_D L_D(D, G) and min_G L_G(D, G). With the stop-gradient G_ng(z) =
stop_gradient(G(z)), the single loss

    L = λ · L_D(D; G_ng)  +  [ L_G(D(G(z))) − L_G(D(G_ng(z))) ]

has ∂L/∂θ_D = λ ∂L_D/∂θ_D — the bracket's two terms have the same value and the same
derivative in θ_D (G(z) and G_ng(z) are equal numbers), so they cancel — and
∂L/∂θ_G = ∂L_G/∂θ_G (only the first term depends on θ_G). One optimizer step on L is
therefore one step of D on its loss and one of G on its loss, taken together; λ is the ratio of
D's to G's step size under SGD (adaptive optimizers such as Adam divide each parameter's step by
its own gradient scale, which cancels a constant factor, so there λ matters little).

Losses are the hinge GAN's: L_D = E relu(1 − D(x)) + E relu(1 + D(G(z))), L_G = −E D(G(z)).
Generator: dense → 7×7 → two transposed convs to 28×28 (batch norm, ReLU, sigmoid output);
discriminator: two strided convs (leaky ReLU, optional spectral normalisation) → dense.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
from keras import ops

from kexue.families._generative import (
    EpochClock,
    load_models,
    save_models,
)
from kexue.fid import FidScorer, significant
from kexue.io import write_json
from kexue.nonfinite import StopOnNonFiniteLoss
from kexue.pixels import (
    DIMS,
    SIDE,
    bad_param,
    load_pixels,
    save_grid,
    to_pixels,
)
from kexue.train import FitConfig, build_optimizer, seed_everything


@dataclass(frozen=True)
class Config:
    latent: int = field(metadata={"min": 1})  # size of z ~ N(0, I)
    width: int = field(metadata={"min": 1})  # channels: D has width, 2·width; G has 2·width, width (×2 at 7×7)
    lam: float = field(metadata={"min": 0.0})  # λ: weight of D's loss in the single loss (D:G step-size ratio under SGD)
    spectral_norm: bool  # spectral normalisation of D's layers
    beta_1: float = field(metadata={"min": 0.0, "max": 0.999})  # Adam's first-moment decay (GANs like 0.5); ignored by other optimizers
    valid_size: int = field(metadata={"min": 1})  # held out from training (FID against valid)
    limit_train: int = field(metadata={"min": 0})
    fid_samples: int = field(metadata={"min": 2})
    fit: FitConfig


def check_config(cfg: Config) -> None:
    for name in ("latent", "width", "valid_size"):
        if getattr(cfg, name) < 1:
            raise bad_param(f"gan.{name}", getattr(cfg, name), "a value >= 1")
    if cfg.lam <= 0:
        raise bad_param("gan.lam", cfg.lam, "a value > 0 (0 would stop D from learning)")
    if cfg.fid_samples < 2:
        raise bad_param("gan.fid_samples", cfg.fid_samples, "a value >= 2")
    if cfg.fit.distribute != "none":
        raise bad_param("gan.fit.distribute", cfg.fit.distribute,
                        "none (the single-loss train step is written for one device)")


def build_generator(latent: int, width: int) -> keras.Model:
    """z (batch, latent) → images (batch, 28, 28) in [0, 1]."""
    z = keras.Input(shape=(latent,), name="z")
    h = keras.layers.Dense(7 * 7 * 4 * width, use_bias=False, name="g_dense")(z)
    h = keras.layers.BatchNormalization(name="g_dense_bn")(h)
    h = keras.layers.ReLU(name="g_dense_relu")(h)
    h = keras.layers.Reshape((7, 7, 4 * width), name="g_grid")(h)  # (batch, 7, 7, 4·width)
    h = keras.layers.Conv2DTranspose(2 * width, 4, strides=2, padding="same", use_bias=False,
                                     name="g_up1")(h)  # (batch, 14, 14, 2·width)
    h = keras.layers.BatchNormalization(name="g_up1_bn")(h)
    h = keras.layers.ReLU(name="g_up1_relu")(h)
    h = keras.layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="sigmoid",
                                     name="g_up2")(h)  # (batch, 28, 28, 1)
    images = keras.layers.Reshape((SIDE, SIDE), name="images")(h)
    return keras.Model(z, images, name="generator")


def build_discriminator(width: int, spectral_norm: bool) -> keras.Model:
    """images (batch, 28, 28) in [0, 1] → a score (batch,)."""
    def wrap(layer):
        return keras.layers.SpectralNormalization(layer, name=f"{layer.name}_sn") if spectral_norm else layer

    x = keras.Input(shape=(SIDE, SIDE), name="images")
    h = keras.layers.Rescaling(2.0, offset=-1.0, name="center")(x)
    h = keras.layers.Reshape((SIDE, SIDE, 1), name="add_channel")(h)
    h = wrap(keras.layers.Conv2D(width, 4, strides=2, padding="same", name="d_conv1"))(h)  # (batch, 14, 14, width)
    h = keras.layers.LeakyReLU(0.2, name="d_conv1_act")(h)
    h = wrap(keras.layers.Conv2D(2 * width, 4, strides=2, padding="same", name="d_conv2"))(h)  # (batch, 7, 7, 2·width)
    h = keras.layers.LeakyReLU(0.2, name="d_conv2_act")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    score = wrap(keras.layers.Dense(1, name="d_score"))(h)
    return keras.Model(x, keras.layers.Reshape((), name="score")(score), name="discriminator")


# ---------------------------------------------------------------------------------------------
# the losses


def hinge_d_loss(real_scores, fake_scores):
    """E relu(1 − D(x)) + E relu(1 + D(G(z)))."""
    return ops.mean(ops.relu(1.0 - real_scores)) + ops.mean(ops.relu(1.0 + fake_scores))


def hinge_g_loss(fake_scores):
    """−E D(G(z))."""
    return -ops.mean(fake_scores)


def single_loss(generator, discriminator, real, z, lam: float, training: bool = True):
    """(L, L_D, L_G): the one loss whose gradient is λ∇L_D for D and ∇L_G for G (see the module
    docstring), and the two losses' values for the logs."""
    fake = generator(z, training=training)  # (batch, 28, 28)
    fake_ng = ops.stop_gradient(fake)  # G_ng(z): the same images, no gradient to G
    real_scores = discriminator(real, training=training)
    fake_ng_scores = discriminator(fake_ng, training=training)
    fake_scores = discriminator(fake, training=training)
    d_loss = hinge_d_loss(real_scores, fake_ng_scores)
    g_loss = hinge_g_loss(fake_scores)
    loss = lam * d_loss + g_loss - hinge_g_loss(fake_ng_scores)
    return loss, d_loss, g_loss


class SingleLossGAN(keras.Model):
    """Holds G and D; ``train_step`` takes one optimizer step on :func:`single_loss`
    (TensorFlow backend: the gradient comes from ``tf.GradientTape``)."""

    def __init__(self, generator, discriminator, latent: int, lam: float, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.generator, self.discriminator = generator, discriminator
        self.latent, self.lam = latent, lam
        self.noise = keras.random.SeedGenerator(seed)

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def train_step(self, data):
        import tensorflow as tf

        real = data[0] if isinstance(data, tuple) else data
        z = keras.random.normal((ops.shape(real)[0], self.latent), seed=self.noise)
        with tf.GradientTape() as tape:
            loss, d_loss, g_loss = single_loss(self.generator, self.discriminator, real, z, self.lam)
        variables = self.generator.trainable_variables + self.discriminator.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        return {"loss": loss, "d_loss": d_loss, "g_loss": g_loss}


class RealBatches(keras.utils.PyDataset):
    """Batches of real images (b, 28, 28) float32 in [0, 1], order seeded by (seed, epoch)."""

    def __init__(self, pixels: np.ndarray, batch_size: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.images = pixels.reshape(-1, SIDE, SIDE)
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.images) // self.batch_size  # full batches only: the three D passes share a size

    def __getitem__(self, index: int):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))
        idx = order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.images[idx].astype(np.float32) / 255.0

    def on_epoch_end(self) -> None:
        self.set_epoch(self.epoch + 1)


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None) -> dict:
    """Train G and D with the single loss for ``fit.epochs`` epochs; write ``generator.keras``,
    ``discriminator.keras`` and ``train_info.json``. The last epoch's generator is kept (a GAN's
    losses do not measure sample quality, so there is no best-epoch pick); ``resume_root`` is
    accepted for the shared stage and unused."""
    from kexue.callbacks import EpochSync, LiveCurves, open_live

    check_config(cfg)
    data_dir, model_dir = Path(data_dir), Path(model_dir)
    train_px, valid_px, _ = load_pixels(data_dir, cfg.valid_size, cfg.fit.seed, cfg.limit_train, "gan")
    if len(train_px) < cfg.fit.batch_size:
        raise bad_param("gan.fit.batch_size", cfg.fit.batch_size,
                        f"at most the {len(train_px)} training images")
    seed_everything(cfg.fit.seed, cfg.fit.deterministic)
    generator = build_generator(cfg.latent, cfg.width)
    discriminator = build_discriminator(cfg.width, cfg.spectral_norm)
    gan = SingleLossGAN(generator, discriminator, cfg.latent, cfg.lam, seed=cfg.fit.seed, name="gan")
    optimizer = build_optimizer(cfg.fit.optimizer)
    if hasattr(optimizer, "beta_1"):
        optimizer.beta_1 = cfg.beta_1
    gan.compile(optimizer=optimizer)
    batches = RealBatches(train_px, cfg.fit.batch_size, seed=cfg.fit.seed)
    callbacks: list[keras.callbacks.Callback] = [StopOnNonFiniteLoss("gan"), EpochSync(batches), EpochClock()]
    if live_dir is not None:
        callbacks.append(LiveCurves(open_live(live_dir)))
    start = time.perf_counter()
    history = gan.fit(batches, epochs=cfg.fit.epochs, callbacks=callbacks, shuffle=False, verbose=2)
    seconds = time.perf_counter() - start
    save_models(model_dir, {"generator": generator, "discriminator": discriminator})
    losses = [float(v) for v in history.history["g_loss"]]
    info = {"config": dataclasses.asdict(cfg),
            "params": int(generator.count_params() + discriminator.count_params()),
            "generator_params": int(generator.count_params()),
            "train_examples": int(len(train_px)), "valid_examples": int(len(valid_px)),
            "epochs_run": len(losses), "best_epoch": len(losses), "monitor": "g_loss",
            "best_value": losses[-1], "train_seconds": round(seconds, 2),
            "examples_per_second": round(len(batches) * cfg.fit.batch_size * len(losses) / seconds, 1),
            "history": {k: [float(v) for v in vals] for k, vals in history.history.items()}}
    write_json(model_dir / "train_info.json", info)
    return info


def load(model_dir: str | Path) -> tuple[keras.Model, dict]:
    (generator,), info = load_models(model_dir, ("generator",), "train_gan")
    return generator, info


def sample(model_dir: str | Path, n: int, seed: int = 0) -> np.ndarray:
    """``n`` images G(z), z ~ N(0, I). # (n, 28, 28) uint8"""
    generator, info = load(model_dir)
    z = np.random.default_rng(seed).standard_normal((n, info["config"]["latent"])).astype(np.float32)
    out = [keras.ops.convert_to_numpy(generator(z[i:i + 1000], training=False)) for i in range(0, n, 1000)]
    return to_pixels(np.concatenate(out) if out else np.zeros((0, DIMS)))


def evaluate(model_dir: str | Path, data_dir: str | Path, classifier_dir: str | Path | None,
             plots_dir: str | Path | None = None, scorer: FidScorer | None = None) -> dict:
    """FMNIST-FID of ``fid_samples`` samples against the test set (and against the valid
    images), the floor, the sample grid. A GAN has no likelihood to report."""
    _, info = load(model_dir)
    cfg = info["config"]
    seed = cfg["fit"]["seed"]
    samples = sample(model_dir, cfg["fid_samples"], seed)
    metrics: dict = {"test": {"samples": int(len(samples))}, "valid": {}}
    if classifier_dir is not None:
        from kexue.fid import feature_moments, frechet_distance, image_features

        scorer = scorer or FidScorer(classifier_dir, data_dir)
        metrics["test"]["fid"] = significant(scorer(samples))
        metrics["test"]["fid_floor_test_vs_train"] = significant(scorer.floor())
        _, valid_px, _ = load_pixels(data_dir, cfg["valid_size"], seed, cfg["limit_train"], "gan")
        valid = feature_moments(image_features(scorer.extractor, valid_px))
        metrics["valid"]["fid"] = significant(frechet_distance(
            *feature_moments(image_features(scorer.extractor, samples)), *valid))
    if plots_dir is not None:
        save_grid(samples[:64], Path(plots_dir) / "samples.png")
    metrics["cost"] = {"train_seconds": info["train_seconds"], "params": info["params"],
                       "examples_per_second": info["examples_per_second"],
                       "epochs_run": info["epochs_run"], "latent": cfg["latent"], "width": cfg["width"],
                       "lam": cfg["lam"]}
    return metrics
