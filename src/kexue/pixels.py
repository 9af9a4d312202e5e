"""Fashion-MNIST as pixels for the density models: the train / valid / test pixels, their
dequantisation, bits/dim, and sample grids. No Keras: the Gaussian-mixture peer uses it alone.

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
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kexue.corpora.fashion_mnist import load_split, train_valid_split
from kexue.io import atomic_path

SIDE = 28  # Fashion-MNIST images are SIDE × SIDE
DIMS = SIDE * SIDE
LOG_256 = math.log(256.0)


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
