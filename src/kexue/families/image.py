"""Fashion-MNIST classification with a compact conv net for 28×28 grey images.

After the 科学空间 post "fashion mnist的一个baseline (MobileNet 95%)": a MobileNet-style net of
depthwise-separable convolutions with random horizontal flips reached 95.0% test accuracy.
Here the recipe is one Keras model whose first layers do the augmentation (RandomFlip,
RandomTranslation, optional RandomErasing — active only when ``training=True``, so the saved
model classifies raw uint8 images as they are), followed by either

- ``arch: mobilenet`` — 3×3 depthwise conv → 1×1 pointwise conv blocks (MobileNet v1),
- ``arch: resnet``    — basic residual blocks of two 3×3 convs (ResNet, pre-add BN),

in three stages at 28×28, 14×14 and 7×7 with ``width``, 2×``width`` and 4×``width`` channels,
then global average pooling, dropout and a 10-way softmax (computed in float32 also under a
``mixed_bfloat16`` policy). Batch-norm and the activation are params, for ablations.

Model selection uses a validation split carved from the training set
(:func:`kexue.corpora.fashion_mnist.train_valid_split`); the test set is only evaluated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import keras
import numpy as np

from kexue.corpora.fashion_mnist import CLASSES
from kexue.train import FitConfig

IMAGE_SIZE = 28


@dataclass(frozen=True)
class Config:
    arch: Literal["mobilenet", "resnet"]
    width: int = field(metadata={"min": 1})  # channels of the first stage; doubled per stage
    blocks: int = field(metadata={"min": 1})  # blocks per stage (3 stages)
    activation: Literal["relu", "relu6", "swish", "gelu", "elu"]
    batch_norm: bool  # BatchNormalization after every conv
    flip: bool  # random horizontal flips (the post's augmentation)
    shift: float = field(metadata={"min": 0.0, "max": 0.5})  # random translation, fraction of 28 px; 0 = off
    erasing: float = field(metadata={"min": 0.0, "max": 1.0})  # probability of random erasing; 0 = off
    dropout: float = field(metadata={"min": 0.0, "max": 0.95})  # before the classifier
    precision: Literal["float32", "mixed_bfloat16"]  # dtype policy of the conv layers
    valid_size: int = field(metadata={"min": 1})  # valid examples carved from the 60k train set
    fit: FitConfig


def check_config(cfg: Config) -> None:
    """Errors for values the dataclass types cannot catch (e.g. a Config built in Python)."""
    from kexue.config import ConfigError

    if cfg.arch not in ("mobilenet", "resnet"):
        raise ConfigError(f"image.arch = {cfg.arch!r} is not valid: expected mobilenet | resnet")
    if cfg.activation not in ("relu", "relu6", "swish", "gelu", "elu"):
        raise ConfigError(f"image.activation = {cfg.activation!r} is not valid: "
                          "expected relu | relu6 | swish | gelu | elu")
    if cfg.precision not in ("float32", "mixed_bfloat16"):
        raise ConfigError(f"image.precision = {cfg.precision!r} is not valid: "
                          "expected float32 | mixed_bfloat16")
    for name, low, high in (("width", 1, None), ("blocks", 1, None), ("shift", 0.0, 0.5),
                            ("erasing", 0.0, 1.0), ("dropout", 0.0, 0.95)):
        value = getattr(cfg, name)
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise ConfigError(f"image.{name} = {value!r} is not valid: expected a value {bound}")


def _augment(cfg: Config, x, seed: int):
    """Random flips / shifts / erasing; identity at inference."""
    if cfg.flip:
        x = keras.layers.RandomFlip("horizontal", seed=seed, name="random_flip")(x)  # (batch, 28, 28, 1)
    if cfg.shift > 0:
        x = keras.layers.RandomTranslation(cfg.shift, cfg.shift, fill_mode="constant", fill_value=0.0,
                                           seed=seed + 1, name="random_shift")(x)  # (batch, 28, 28, 1)
    if cfg.erasing > 0:
        # a random rectangle of 2-25% of the image set to black (the background colour)
        x = keras.layers.RandomErasing(factor=cfg.erasing, scale=(0.02, 0.25), fill_value=0.0,
                                       value_range=(0.0, 1.0), seed=seed + 2,
                                       name="random_erasing")(x)  # (batch, 28, 28, 1)
    return x


def _norm_act(cfg: Config, x, name: str):
    if cfg.batch_norm:
        x = keras.layers.BatchNormalization(name=f"{name}_bn", dtype=cfg.precision)(x)
    return keras.layers.Activation(cfg.activation, name=f"{name}_act", dtype=cfg.precision)(x)


def _separable_block(cfg: Config, x, filters: int, stride: int, name: str):
    """MobileNet v1 block: 3×3 depthwise (spatial) then 1×1 pointwise (channel mixing) conv."""
    x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=not cfg.batch_norm,
                                     name=f"{name}_dw", dtype=cfg.precision)(x)  # (batch, h / stride, w / stride, c_in)
    x = _norm_act(cfg, x, f"{name}_dw")
    x = keras.layers.Conv2D(filters, 1, use_bias=not cfg.batch_norm,
                            name=f"{name}_pw", dtype=cfg.precision)(x)  # (batch, h', w', filters)
    return _norm_act(cfg, x, f"{name}_pw")


def _residual_block(cfg: Config, x, filters: int, stride: int, name: str):
    """ResNet basic block: two 3×3 convs plus the input (projected by a 1×1 conv when the shape
    changes); the activation comes after the addition."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=not cfg.batch_norm,
                                       name=f"{name}_proj", dtype=cfg.precision)(x)  # (batch, h', w', filters)
        if cfg.batch_norm:
            shortcut = keras.layers.BatchNormalization(name=f"{name}_proj_bn", dtype=cfg.precision)(shortcut)
    y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=not cfg.batch_norm,
                            name=f"{name}_conv1", dtype=cfg.precision)(x)  # (batch, h', w', filters)
    y = _norm_act(cfg, y, f"{name}_conv1")
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=not cfg.batch_norm,
                            name=f"{name}_conv2", dtype=cfg.precision)(y)  # (batch, h', w', filters)
    if cfg.batch_norm:
        y = keras.layers.BatchNormalization(name=f"{name}_conv2_bn", dtype=cfg.precision)(y)
    y = keras.layers.Add(name=f"{name}_add", dtype=cfg.precision)([shortcut, y])  # (batch, h', w', filters)
    return keras.layers.Activation(cfg.activation, name=f"{name}_act", dtype=cfg.precision)(y)


def build_model(cfg: Config, name: str = "image") -> keras.Model:
    """The classifier ``cfg`` describes: uint8 images (batch, 28, 28) in, class probabilities
    (batch, 10) out. Augmentation layers are seeded from ``cfg.fit.seed``."""
    check_config(cfg)
    block = {"mobilenet": _separable_block, "resnet": _residual_block}[cfg.arch]
    images = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE), dtype="uint8", name="images")  # (batch, 28, 28)
    x = keras.layers.Rescaling(1.0 / 255, name="scale")(images)  # (batch, 28, 28) in [0, 1]
    x = keras.layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1), name="add_channel")(x)  # (batch, 28, 28, 1)
    x = _augment(cfg, x, cfg.fit.seed)
    # every layer is named: resuming restores state by layer name
    x = keras.layers.Conv2D(cfg.width, 3, padding="same", use_bias=not cfg.batch_norm,
                            name="stem", dtype=cfg.precision)(x)  # (batch, 28, 28, width)
    x = _norm_act(cfg, x, "stem")
    for stage in range(3):  # 28×28, 14×14, 7×7
        filters = cfg.width * 2 ** stage
        for index in range(cfg.blocks):
            stride = 2 if stage > 0 and index == 0 else 1
            x = block(cfg, x, filters, stride, f"stage{stage + 1}_block{index + 1}")  # (batch, 28 / 2^stage, ., filters)
    x = keras.layers.GlobalAveragePooling2D(name="pool", dtype=cfg.precision)(x)  # (batch, 4 * width)
    x = keras.layers.Dropout(cfg.dropout, name="dropout")(x)
    probs = keras.layers.Dense(len(CLASSES), activation="softmax", dtype="float32",
                               name="probs")(x)  # (batch, 10), float32 under any policy
    return keras.Model(images, probs, name=name)


class EpochClock(keras.callbacks.Callback):
    """Adds ``elapsed_seconds`` (wall time since training began, validation included) to each
    epoch's logs, so time-to-accuracy can be read off the curve."""

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["elapsed_seconds"] = time.perf_counter() - self.start


def time_to_reach(values: list[float], seconds: list[float], threshold: float) -> float | None:
    """Seconds until ``values`` (a per-epoch curve, e.g. val_accuracy) first reaches
    ``threshold``, from the matching cumulative ``seconds``; None when it never does."""
    if len(values) != len(seconds):
        raise ValueError(f"time_to_reach: {len(values)} values but {len(seconds)} times")
    for value, at in zip(values, seconds, strict=True):
        if value >= threshold:
            return float(at)
    return None


def predict_classes(model: keras.Model, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Arg-max class of each uint8 image (n, 28, 28)."""
    return np.argmax(model.predict(images, batch_size=batch_size, verbose=0), axis=-1)
