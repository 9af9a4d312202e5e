"""NICE flow on Fashion-MNIST: exact log-likelihood in bits/dim.

苏剑林, "细水长flow之NICE：流模型的基本概念与实现" (kexue.fm/archives/5776), after Dinh et al.
(2014): uniform dequantisation x = (pixel + u)/256, ``couplings`` additive coupling layers with
alternating interleaved splits (:class:`kexue.layers.AdditiveCoupling`), then a diagonal scale
exp(s) (:class:`kexue.layers.DiagonalScale`); with h = f(x),

    log p(x) = log p_H(h) + sum(s)

(the couplings have unit Jacobian determinant). The prior p_H is a product of standard
logistics, as in the paper (log p = −softplus(h) − softplus(−h)), or of standard normals.

``preprocess: logit`` adds RealNVP's fixed map t = logit(α + (1 − 2α)x) before the flow; its
log-determinant sum(log(1 − 2α) − log u − log(1 − u)), u = α + (1 − 2α)x, is added too, so
the density stays one on x. The NICE paper reports 4.36 bits/dim on MNIST (1500 epochs).
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
from kexue.layers.coupling import AdditiveCoupling, DiagonalScale
from kexue.pixels import (
    DIMS,
    LOG_256,
    bad_param,
    bits_per_dim,
    dequantize,
    load_pixels,
    save_grid,
    to_pixels,
)
from kexue.train import FitConfig


@dataclass(frozen=True)
class Config:
    couplings: int = field(metadata={"min": 1})  # additive coupling layers (alternating halves)
    depth: int = field(metadata={"min": 1})  # hidden layers of each coupling's shift MLP
    width: int = field(metadata={"min": 1})  # units of those hidden layers
    prior: Literal["logistic", "gaussian"]
    preprocess: Literal["none", "logit"]  # logit: t = logit(alpha + (1 - 2 alpha) x), its log-det counted
    logit_alpha: float = field(metadata={"min": 0.0, "max": 0.49})
    valid_size: int = field(metadata={"min": 1})
    limit_train: int = field(metadata={"min": 0})  # >0 keeps that many training images (tiny runs); 0 = all
    fid_samples: int = field(metadata={"min": 2})
    temperature: float = field(metadata={"min": 0.0})  # samples: h = temperature · prior draw (1 = the model's own density)
    fit: FitConfig


def check_config(cfg: Config) -> None:
    if cfg.prior not in ("logistic", "gaussian"):
        raise bad_param("nice.prior", cfg.prior, "logistic | gaussian")
    if cfg.preprocess not in ("none", "logit"):
        raise bad_param("nice.preprocess", cfg.preprocess, "none | logit")
    for name in ("couplings", "depth", "width", "valid_size"):
        if getattr(cfg, name) < 1:
            raise bad_param(f"nice.{name}", getattr(cfg, name), "a value >= 1")
    if cfg.preprocess == "logit" and not 0.0 < cfg.logit_alpha < 0.5:
        raise bad_param("nice.logit_alpha", cfg.logit_alpha, "a value in (0, 0.5) with preprocess: logit")
    if cfg.fid_samples < 2:
        raise bad_param("nice.fid_samples", cfg.fid_samples, "a value >= 2")


@keras.saving.register_keras_serializable(package="kexue")
class NiceFlow(keras.layers.Layer):
    """x (batch, dim) → per-example negative log-likelihood in bits/dim of the 8-bit data
    (``call``); ``forward`` gives (h, log|det J|), ``inverse`` maps h back to x."""

    def __init__(self, couplings: int = 4, depth: int = 5, width: int = 1000,
                 prior: str = "logistic", preprocess: str = "none", logit_alpha: float = 0.05,
                 **kwargs):
        super().__init__(**kwargs)
        self.couplings, self.depth, self.width = couplings, depth, width
        self.prior, self.preprocess, self.logit_alpha = prior, preprocess, logit_alpha
        self.layers_ = [AdditiveCoupling(i % 2, width, depth, name=f"coupling{i + 1}")
                        for i in range(couplings)]
        self.scale = DiagonalScale(name="scale")

    def build(self, input_shape):
        for layer in self.layers_:
            layer.build(input_shape)
        self.scale.build(input_shape)

    def _pre(self, x):
        """x → the flow's input and the log-det of this fixed map. (batch, dim), (batch,)"""
        if self.preprocess == "none":
            return x, ops.zeros(ops.shape(x)[:1], dtype=x.dtype)
        a = self.logit_alpha
        u = a + (1.0 - 2.0 * a) * x
        t = ops.log(u) - ops.log1p(-u)
        log_det = ops.sum(math.log(1.0 - 2.0 * a) - ops.log(u) - ops.log1p(-u), axis=-1)
        return t, log_det

    def _pre_inverse(self, t):
        if self.preprocess == "none":
            return t
        a = self.logit_alpha
        return (ops.sigmoid(t) - a) / (1.0 - 2.0 * a)

    def forward(self, x):
        """(h, log|det dh/dx|) of x. # (batch, dim), (batch,)"""
        h, log_det = self._pre(x)
        for layer in self.layers_:
            h = layer(h)  # log-det 0
        return self.scale(h), log_det + self.scale.log_det_jacobian(h)

    def inverse(self, h):
        h = self.scale.inverse(h)
        for layer in reversed(self.layers_):
            h = layer.inverse(h)
        return self._pre_inverse(h)

    def log_prior(self, h):
        if self.prior == "logistic":
            return -ops.sum(ops.softplus(h) + ops.softplus(-h), axis=-1)
        return -0.5 * ops.sum(ops.square(h) + math.log(2 * math.pi), axis=-1)

    def log_prob(self, x):
        """log p(x), nats, density on the data space. # (batch,)"""
        h, log_det = self.forward(x)
        return self.log_prior(h) + log_det

    def call(self, x):
        dims = ops.cast(ops.shape(x)[-1], x.dtype)
        return (-self.log_prob(x) + dims * LOG_256) / (dims * math.log(2.0))  # (batch,) bits/dim

    def compute_output_shape(self, input_shape):
        return input_shape[:-1]

    def get_config(self):
        return {**super().get_config(), "couplings": self.couplings, "depth": self.depth,
                "width": self.width, "prior": self.prior, "preprocess": self.preprocess,
                "logit_alpha": self.logit_alpha}


def build_model(cfg: Config, dims: int = DIMS) -> keras.Model:
    """x (batch, dims) → bits/dim per example; the flow is the layer named ``flow``."""
    check_config(cfg)
    x = keras.Input(shape=(dims,), name="x")
    flow = NiceFlow(cfg.couplings, cfg.depth, cfg.width, cfg.prior, cfg.preprocess, cfg.logit_alpha,
                    name="flow")
    return keras.Model(x, flow(x), name="nice")


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None) -> dict:
    """Maximum likelihood on freshly dequantised training images each epoch (valid bits/dim
    picks the epoch); writes ``model.keras`` and ``train_info.json``."""
    check_config(cfg)

    def build():
        model = build_model(cfg)
        return model, {"model": model}

    return train_density("nice", cfg, build, data_dir, model_dir, live_dir, resume_root)


def load(model_dir: str | Path) -> tuple[NiceFlow, dict]:
    (model,), info = load_models(model_dir, ("model",), "train_nice")
    return model.get_layer("flow"), info


def image_bits_per_dim(flow: NiceFlow, pixels: np.ndarray, seed: int, batch_size: int = 1000) -> np.ndarray:
    """Exact bits/dim of each dequantised image (fixed noise from ``seed``). # (n,) float64"""
    x = dequantize(pixels, np.random.default_rng(seed))
    nll = np.concatenate([-keras.ops.convert_to_numpy(flow.log_prob(keras.ops.convert_to_tensor(x[i:i + batch_size])))
                          for i in range(0, len(x), batch_size)]).astype(np.float64)
    return bits_per_dim(nll, pixels.shape[1])


def sample_prior(prior: str, shape, rng: np.random.Generator) -> np.ndarray:
    if prior == "logistic":
        u = rng.uniform(1e-6, 1 - 1e-6, shape)
        return np.log(u) - np.log1p(-u)
    return rng.standard_normal(shape)


def sample(model_dir: str | Path, n: int, seed: int = 0, temperature: float | None = None) -> np.ndarray:
    """``n`` images: x = f^-1(h), h ~ prior (scaled by ``temperature``; default the model's
    ``temperature`` param). # (n, 28, 28) uint8"""
    flow, info = load(model_dir)
    cfg = info["config"]
    t = cfg["temperature"] if temperature is None else temperature
    h = t * sample_prior(cfg["prior"], (n, DIMS), np.random.default_rng(seed))
    x = [keras.ops.convert_to_numpy(flow.inverse(keras.ops.convert_to_tensor(h[i:i + 1000].astype(np.float32))))
         for i in range(0, n, 1000)]
    return to_pixels(np.concatenate(x) if x else np.zeros((0, DIMS)))


def evaluate(model_dir: str | Path, data_dir: str | Path, classifier_dir: str | Path | None,
             plots_dir: str | Path | None = None, scorer: FidScorer | None = None) -> dict:
    """Exact test and valid bits/dim, FMNIST-FID of ``fid_samples`` samples, the sample grid."""
    flow, info = load(model_dir)
    cfg = info["config"]
    seed = cfg["fit"]["seed"]
    _, valid_px, test_px = load_pixels(data_dir, cfg["valid_size"], seed, cfg["limit_train"], "nice")
    per_image = {"test": image_bits_per_dim(flow, test_px, seed + 2),
                 "valid": image_bits_per_dim(flow, valid_px, seed + 1)}
    metrics = {"test": {"bits_per_dim": round(float(per_image["test"].mean()), 4),
                        "examples": int(len(test_px))},
               "valid": {"bits_per_dim": round(float(per_image["valid"].mean()), 4)},
               # per image, for the paired bootstrap against the peer (kexue.comparison)
               "items": {"metric": "bits_per_dim", "kind": "mean", "higher_is_better": False,
                         **{split: [round(float(v), 5) for v in values]
                            for split, values in per_image.items()}}}
    samples = sample(model_dir, cfg["fid_samples"], seed)
    if classifier_dir is not None:
        scorer = scorer or FidScorer(classifier_dir, data_dir)
        metrics["test"]["fid"] = significant(scorer(samples))
        metrics["test"]["fid_temperature"] = cfg["temperature"]
        metrics["test"]["fid_floor_test_vs_train"] = significant(scorer.floor())
    if plots_dir is not None:
        save_grid(samples[:64], Path(plots_dir) / "samples.png")
    metrics["cost"] = {"train_seconds": info["train_seconds"], "params": info["params"],
                       "examples_per_second": info["examples_per_second"],
                       "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"],
                       "couplings": cfg["couplings"], "depth": cfg["depth"], "width": cfg["width"]}
    return metrics
