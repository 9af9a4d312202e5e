"""Variational autoencoder on Fashion-MNIST, scored as a density in bits/dim.

苏剑林, "变分自编码器（一）：原来是这么一回事" (kexue.fm/archives/5253): an encoder gives
q(z|x) = N(mean, diag(exp(logvar))), a sample z = mean + exp(logvar / 2)·eps goes through the
decoder, and the loss is the reconstruction term plus KL(q(z|x) || N(0, I)) — the negative ELBO.

The decoder's likelihood is a *discretised logistic* per pixel (as in PixelCNN++): pixel k gets
the logistic mass of its bin [k/256, (k+1)/256) (the two end bins extended to ±∞). Read as a
density on the dequantised data x = (pixel + u)/256 it is piecewise constant, p(x|z) =
256^D Π P(pixel_i | z), a proper density on [0, 1]^D — so the ELBO and the importance-sampled
log-likelihood are in the same bits/dim as NICE and the Gaussian-mixture peer
(see :mod:`kexue.families._generative`). Training minimises the negative ELBO in bits/dim.

Evaluation: the negative ELBO and the importance-sampled NLL (IWAE bound,
log p(x) ≥ log mean_k p(x, z_k) / q(z_k | x), k = ``importance_samples``) on the test set, both
from the same k samples per image (so NLL ≤ negative ELBO always holds). FMNIST-FID scores the
model's own samples (z ~ N(0, I), then x ~ p(x | z)), as for NICE, the GAN and the Gaussian
mixture; the decoder's mean images of the same z are scored beside it as ``fid_decoder_means``
(the smoother pictures VAE papers usually show, not comparable with the others); the latent traversal varies the two latent dimensions with the
largest average KL (the ones the model uses most) over normal quantiles, the others held at 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import keras
import numpy as np
from keras import ops

from kexue.families._generative import (
    load_models,
    train_density,
)
from kexue.fid import FidScorer, significant
from kexue.pixels import (
    DIMS,
    LOG_256,
    SIDE,
    bad_param,
    bits_per_dim,
    load_pixels,
    save_grid,
    to_pixels,
)
from kexue.train import FitConfig

MIN_LOG_SCALE = -7.0  # the logistic's scale stays above e^-7 ≈ 1/4 of a pixel bin


@dataclass(frozen=True)
class Config:
    arch: Literal["mlp", "conv"]  # encoder / decoder: dense layers, or strided convs
    latent: int = field(metadata={"min": 1})  # size of z
    width: int = field(metadata={"min": 1})  # mlp: hidden units; conv: channels of the first conv (×2 in the second)
    hidden_layers: int = field(metadata={"min": 1})  # mlp: dense layers in the encoder and in the decoder
    importance_samples: int = field(metadata={"min": 1})  # k of the importance-sampled test NLL
    valid_size: int = field(metadata={"min": 1})
    limit_train: int = field(metadata={"min": 0})  # >0 keeps that many training images (tiny runs); 0 = all
    fid_samples: int = field(metadata={"min": 2})  # samples for FMNIST-FID
    fit: FitConfig


def check_config(cfg: Config) -> None:
    if cfg.arch not in ("mlp", "conv"):
        raise bad_param("vae.arch", cfg.arch, "mlp | conv")
    for name in ("latent", "width", "hidden_layers", "importance_samples", "valid_size"):
        if getattr(cfg, name) < 1:
            raise bad_param(f"vae.{name}", getattr(cfg, name), "a value >= 1")
    if cfg.fid_samples < 2:
        raise bad_param("vae.fid_samples", cfg.fid_samples, "a value >= 2 (a covariance needs two)")


# ---------------------------------------------------------------------------------------------
# the likelihood


def discretized_logistic_log_prob(x, loc, log_scale):
    """log P(pixel | loc, scale) of each pixel of the dequantised ``x`` (its bin is
    floor(256 x)): the logistic mass of the bin, the end bins open to ±∞. All (batch, 784)."""
    pixel = ops.clip(ops.floor(x * 256.0), 0.0, 255.0)
    centered = (pixel + 0.5) / 256.0 - loc
    inv_scale = ops.exp(-log_scale)
    plus = inv_scale * (centered + 0.5 / 256.0)
    minus = inv_scale * (centered - 0.5 / 256.0)
    log_cdf_plus = plus - ops.softplus(plus)  # log sigmoid(plus): the mass below the bin's top
    log_sf_minus = -ops.softplus(minus)  # log (1 - sigmoid(minus)): the mass above its bottom
    delta = ops.sigmoid(plus) - ops.sigmoid(minus)
    mid = inv_scale * centered
    # where the bin's mass underflows float32, the density at its centre times its width
    log_mid = mid - log_scale - 2.0 * ops.softplus(mid) - LOG_256
    inner = ops.where(delta > 1e-5, ops.log(ops.maximum(delta, 1e-12)), log_mid)
    return ops.where(pixel < 0.5, log_cdf_plus, ops.where(pixel > 254.5, log_sf_minus, inner))


def log_px_given_z(x, decoded):
    """log p(x|z) of the dequantised images as a density on [0, 1]^784 (nats): the discrete
    log-probability plus D ln 256 (the density is constant in each bin). # (batch,)"""
    loc, log_scale = decoded[..., 0], ops.maximum(decoded[..., 1], MIN_LOG_SCALE)
    return ops.sum(discretized_logistic_log_prob(x, loc, log_scale), axis=-1) + DIMS * LOG_256


def _gaussian_log_prob(z, mean, logvar):
    return -0.5 * ops.sum(ops.square(z - mean) * ops.exp(-logvar) + logvar + math.log(2 * math.pi), axis=-1)


@keras.saving.register_keras_serializable(package="kexue")
class GaussianSample(keras.layers.Layer):
    """z = mean + exp(logvar / 2) · eps, eps ~ N(0, I) (the reparameterisation trick);
    input (batch, 2·latent) = [mean, logvar]."""

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, stats):
        mean, logvar = ops.split(stats, 2, axis=-1)
        eps = keras.random.normal(ops.shape(mean), seed=self.generator)
        return mean + ops.exp(0.5 * logvar) * eps  # (batch, latent)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // 2)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="kexue")
class NegativeElbo(keras.layers.Layer):
    """Per-example negative ELBO in bits/dim from (x, [mean, logvar], decoder output)."""

    def call(self, inputs):
        x, stats, decoded = inputs
        mean, logvar = ops.split(stats, 2, axis=-1)
        kl = 0.5 * ops.sum(ops.exp(logvar) + ops.square(mean) - 1.0 - logvar, axis=-1)  # (batch,)
        nll = -log_px_given_z(x, decoded) + kl  # nats, density on [0, 1]^784
        return (nll + DIMS * LOG_256) / (DIMS * math.log(2.0))  # (batch,) bits/dim

    def compute_output_shape(self, input_shape):
        return input_shape[0][:-1]


# ---------------------------------------------------------------------------------------------
# the networks


def build_encoder(cfg: Config) -> keras.Model:
    """x (batch, 784) in [0, 1] → [mean, logvar] (batch, 2·latent)."""
    x = keras.Input(shape=(DIMS,), name="x")
    h = keras.layers.Rescaling(2.0, offset=-1.0, name="center")(x)  # (batch, 784) in [-1, 1]
    if cfg.arch == "mlp":
        for i in range(cfg.hidden_layers):
            h = keras.layers.Dense(cfg.width, activation="relu", name=f"enc_dense{i + 1}")(h)
    else:
        h = keras.layers.Reshape((SIDE, SIDE, 1), name="as_image")(h)
        h = keras.layers.Conv2D(cfg.width, 4, strides=2, padding="same", activation="relu",
                                name="enc_conv1")(h)  # (batch, 14, 14, width)
        h = keras.layers.Conv2D(2 * cfg.width, 4, strides=2, padding="same", activation="relu",
                                name="enc_conv2")(h)  # (batch, 7, 7, 2·width)
        h = keras.layers.Flatten(name="flatten")(h)
        h = keras.layers.Dense(16 * cfg.width, activation="relu", name="enc_dense")(h)
    stats = keras.layers.Dense(2 * cfg.latent, name="stats")(h)  # (batch, 2·latent)
    return keras.Model(x, stats, name="encoder")


def build_decoder(cfg: Config) -> keras.Model:
    """z (batch, latent) → per-pixel [loc, log_scale] of the discretised logistic (batch, 784, 2)."""
    z = keras.Input(shape=(cfg.latent,), name="z")
    if cfg.arch == "mlp":
        h = z
        for i in range(cfg.hidden_layers):
            h = keras.layers.Dense(cfg.width, activation="relu", name=f"dec_dense{i + 1}")(h)
        h = keras.layers.Dense(2 * DIMS, name="pixels")(h)  # (batch, 1568)
        h = keras.layers.Reshape((2, DIMS), name="split")(h)  # (batch, 2, 784)
        out = keras.layers.Permute((2, 1), name="per_pixel")(h)  # (batch, 784, 2)
    else:
        h = keras.layers.Dense(16 * cfg.width, activation="relu", name="dec_dense")(z)
        h = keras.layers.Dense(7 * 7 * 2 * cfg.width, activation="relu", name="dec_grid")(h)
        h = keras.layers.Reshape((7, 7, 2 * cfg.width), name="as_grid")(h)  # (batch, 7, 7, 2·width)
        h = keras.layers.Conv2DTranspose(cfg.width, 4, strides=2, padding="same", activation="relu",
                                         name="dec_deconv1")(h)  # (batch, 14, 14, width)
        h = keras.layers.Conv2DTranspose(2, 4, strides=2, padding="same",
                                         name="dec_deconv2")(h)  # (batch, 28, 28, 2)
        out = keras.layers.Reshape((DIMS, 2), name="per_pixel")(h)  # (batch, 784, 2)
    return keras.Model(z, out, name="decoder")


def build_model(cfg: Config) -> tuple[keras.Model, keras.Model, keras.Model]:
    """(training model: x → negative ELBO in bits/dim per example, encoder, decoder)."""
    check_config(cfg)
    encoder, decoder = build_encoder(cfg), build_decoder(cfg)
    x = keras.Input(shape=(DIMS,), name="x")
    stats = encoder(x)
    z = GaussianSample(cfg.fit.seed, name="sample_z")(stats)
    loss = NegativeElbo(name="negative_elbo")([x, stats, decoder(z)])
    return keras.Model(x, loss, name="vae"), encoder, decoder


# ---------------------------------------------------------------------------------------------
# training


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None) -> dict:
    """Fit on the dequantised training images (valid negative ELBO picks the epoch); write
    ``encoder.keras``, ``decoder.keras`` and ``train_info.json``."""
    check_config(cfg)

    def build():
        model, encoder, decoder = build_model(cfg)
        return model, {"encoder": encoder, "decoder": decoder}

    return train_density("vae", cfg, build, data_dir, model_dir, live_dir, resume_root)


# ---------------------------------------------------------------------------------------------
# evaluation


def load(model_dir: str | Path) -> tuple[keras.Model, keras.Model, dict]:
    (encoder, decoder), info = load_models(model_dir, ("encoder", "decoder"), "train_vae")
    return encoder, decoder, info


def log_weights(encoder, decoder, x: np.ndarray, k: int, seed: int, chunk: int = 10000) -> np.ndarray:
    """log p(x, z_j) − log q(z_j | x) for k samples z_j ~ q(z | x) of each image (nats, density
    on [0, 1]^784). # (n, k)"""
    rng = np.random.default_rng(seed)
    stats = keras.ops.convert_to_numpy(encoder(x, training=False)).astype(np.float64)
    mean, logvar = np.split(stats, 2, axis=-1)  # (n, latent) each
    out = np.empty((len(x), k))
    per = max(1, chunk // k)  # images per decoder call
    for start in range(0, len(x), per):
        m, lv, xs = mean[start:start + per], logvar[start:start + per], x[start:start + per]
        eps = rng.standard_normal((len(m), k, m.shape[1]))
        z = m[:, None] + np.exp(0.5 * lv)[:, None] * eps  # (b, k, latent)
        flat = z.reshape(-1, m.shape[1]).astype(np.float32)
        decoded = decoder(flat, training=False)  # (b·k, 784, 2)
        xr = np.repeat(xs, k, axis=0)
        log_px = keras.ops.convert_to_numpy(log_px_given_z(xr, decoded)).astype(np.float64)
        log_pz = -0.5 * np.sum(z ** 2 + math.log(2 * math.pi), axis=-1)  # (b, k)
        log_q = -0.5 * np.sum(eps ** 2 + lv[:, None] + math.log(2 * math.pi), axis=-1)
        out[start:start + len(m)] = log_px.reshape(len(m), k) + log_pz - log_q
    return out


def elbo_and_nll(encoder, decoder, x: np.ndarray, k: int, seed: int, per_image: bool = False) -> dict:
    """Negative ELBO (mean over the k samples of −log w) and importance-sampled NLL
    (−log mean_k w), both averaged over the images and in bits/dim; ``per_image`` adds
    ``"nll_per_image"``: each image's NLL in bits/dim (for the paired bootstrap)."""
    from scipy.special import logsumexp

    w = log_weights(encoder, decoder, x, k, seed)  # (n, k)
    neg_elbo = -w.mean(axis=1)
    nll = -(logsumexp(w, axis=1) - math.log(k))
    out = {"negative_elbo_bits_per_dim": round(float(bits_per_dim(neg_elbo.mean())), 4),
           "nll_bits_per_dim": round(float(bits_per_dim(nll.mean())), 4),
           "importance_samples": k, "examples": int(len(x))}
    if per_image:
        out["nll_per_image"] = bits_per_dim(nll)
    return out


def decode_mean(decoder, z: np.ndarray) -> np.ndarray:
    """The decoder's mean image for each z (the logistic's location, clipped to [0, 1]). # (n, 784)"""
    decoded = keras.ops.convert_to_numpy(decoder(np.asarray(z, np.float32), training=False))
    return np.clip(decoded[..., 0], 0.0, 1.0)


def draw_pixels(decoded: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A draw from p(x | z): per pixel, a logistic sample at the decoder's location and scale,
    binned as the likelihood bins it (the end bins take the tails). # (n, 28, 28) uint8"""
    loc, log_scale = decoded[..., 0], np.maximum(decoded[..., 1], MIN_LOG_SCALE)
    u = rng.uniform(1e-7, 1.0 - 1e-7, loc.shape)
    return to_pixels(loc + np.exp(log_scale) * (np.log(u) - np.log1p(-u)))


def sample(model_dir: str | Path, n: int, seed: int = 0, means: bool = False) -> np.ndarray:
    """``n`` generated images: z ~ N(0, I), then x ~ p(x | z) — the model's own samples, as FID
    scores every model and the peer — or, with ``means``, the decoder's mean image of each z
    (smoother; what VAE figures usually show). # (n, 28, 28) uint8"""
    _, decoder, info = load(model_dir)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, info["config"]["latent"]))
    out = []
    for i in range(0, n, 1000):
        if means:
            out.append(to_pixels(decode_mean(decoder, z[i:i + 1000])))
        else:
            decoded = keras.ops.convert_to_numpy(decoder(z[i:i + 1000].astype(np.float32), training=False))
            out.append(draw_pixels(decoded.astype(np.float64), rng))
    return np.concatenate(out) if out else np.zeros((0, SIDE, SIDE), np.uint8)


def traversal(encoder, decoder, x: np.ndarray, steps: int = 8) -> tuple[np.ndarray, list[int]]:
    """Decoder means over a steps × steps grid of the two latent dimensions with the largest
    mean KL on ``x`` (normal quantiles 5%..95%), the other dimensions at 0.
    Returns ((steps², 28, 28) uint8, the two dimensions)."""
    from scipy.stats import norm

    stats = keras.ops.convert_to_numpy(encoder(x, training=False))
    mean, logvar = np.split(stats, 2, axis=-1)
    kl = 0.5 * np.mean(np.exp(logvar) + mean ** 2 - 1 - logvar, axis=0)
    dims = [int(d) for d in np.argsort(-kl)[:2]] if len(kl) > 1 else [0, 0]
    values = norm.ppf(np.linspace(0.05, 0.95, steps))
    z = np.zeros((steps * steps, len(kl)), np.float32)
    for r, a in enumerate(values[::-1]):
        for c, b in enumerate(values):
            z[r * steps + c, dims[0]] = a
            z[r * steps + c, dims[1]] = b
    return to_pixels(decode_mean(decoder, z)), dims


def evaluate(model_dir: str | Path, data_dir: str | Path, classifier_dir: str | Path | None,
             plots_dir: str | Path | None = None, scorer: FidScorer | None = None) -> dict:
    """Test and valid negative ELBO and importance-sampled NLL (bits/dim), FMNIST-FID of
    ``fid_samples`` samples, the sample grid and the latent traversal PNGs."""
    encoder, decoder, info = load(model_dir)
    cfg = info["config"]
    _, valid_px, test_px = load_pixels(data_dir, cfg["valid_size"], cfg["fit"]["seed"], cfg["limit_train"], "vae")
    seed = cfg["fit"]["seed"]
    x_test = (test_px.astype(np.float32) + 0.5) / 256  # the likelihood depends on the bin only
    x_valid = (valid_px.astype(np.float32) + 0.5) / 256
    test = elbo_and_nll(encoder, decoder, x_test, cfg["importance_samples"], seed, per_image=True)
    valid = elbo_and_nll(encoder, decoder, x_valid, min(cfg["importance_samples"], 50), seed + 1, per_image=True)
    # per image, for the paired bootstrap against the peer (kexue.comparison)
    items = {"metric": "nll_bits_per_dim", "kind": "mean", "higher_is_better": False,
             **{split: [round(float(v), 5) for v in part.pop("nll_per_image")]
                for split, part in (("valid", valid), ("test", test))}}
    metrics = {"test": test, "valid": valid, "items": items}
    samples = sample(model_dir, cfg["fid_samples"], seed)
    if classifier_dir is not None:
        scorer = scorer or FidScorer(classifier_dir, data_dir)
        metrics["test"]["fid"] = significant(scorer(samples))
        metrics["test"]["fid_decoder_means"] = significant(
            scorer(sample(model_dir, cfg["fid_samples"], seed, means=True)))
        metrics["test"]["fid_floor_test_vs_train"] = significant(scorer.floor())
    if plots_dir is not None:
        save_grid(samples[:64], Path(plots_dir) / "samples.png")
        grid, dims = traversal(encoder, decoder, x_test[:2000])
        save_grid(grid, Path(plots_dir) / "traversal.png")
        metrics["traversal_dims"] = dims
    metrics["cost"] = {"train_seconds": info["train_seconds"], "params": info["params"],
                       "examples_per_second": info["examples_per_second"],
                       "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"],
                       "arch": cfg["arch"], "latent": cfg["latent"]}
    return metrics
