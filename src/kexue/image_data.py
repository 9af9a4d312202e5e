"""The image classifiers' data: the train / valid split of Fashion-MNIST's 60k training images,
label-smoothed batches in a seeded order, and a user's picture read as a Fashion-MNIST image.

Shared by the classifier (:mod:`kexue.families.image`), the center-loss family, the fine-tuning
experiment, the scikit-learn peers and the ``kexue classify`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import keras
import numpy as np

from kexue.corpora.fashion_mnist import CLASSES, load_split, train_valid_split

IMAGE_SIZE = 28


def load_train_valid(data_dir: str | Path, valid_size: int, seed: int, limit: int = 0):
    """``(x_train, y_train), (x_valid, y_valid)``: the 60k training images (or a stratified
    ``limit`` of them) split by :func:`train_valid_split` (test is never touched here)."""
    images, labels = load_split(data_dir, "train")
    if 0 < limit < len(labels):
        _, keep = train_valid_split(labels, limit, seed)  # a stratified sample of `limit` images
        images, labels = images[keep], labels[keep]
    if not 0 < valid_size < len(labels):
        from kexue.config import ConfigError

        raise ConfigError(f"image.valid_size = {valid_size} is not valid: expected 1 .. "
                          f"{len(labels) - 1} (the training set has {len(labels)} images)")
    train_idx, valid_idx = train_valid_split(labels, valid_size, seed)
    return ((images[train_idx], labels[train_idx].astype(np.int64)),
            (images[valid_idx], labels[valid_idx].astype(np.int64)))


class ImageBatches(keras.utils.PyDataset):
    """Batches ``(uint8 images (b, 28, 28), targets (b, 10))`` with label-smoothed one-hot
    targets; each epoch's order depends only on ``(seed, epoch)`` (so a resumed run sees the
    batches an uninterrupted one sees; :class:`kexue.callbacks.EpochSync` sets the epoch)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int = 0,
                 shuffle: bool = True, label_smoothing: float = 0.0, classes: int = len(CLASSES)):
        super().__init__()
        if len(images) != len(labels):
            raise ValueError(f"ImageBatches: {len(images)} images but {len(labels)} labels")
        self.images = np.asarray(images, dtype=np.uint8)
        targets = np.eye(classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]
        self.targets = targets * (1 - label_smoothing) + label_smoothing / classes  # (n, classes)
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.epoch = 0
        self._order = self._make_order()

    def _make_order(self) -> np.ndarray:
        n = len(self.images)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._order = self._make_order()

    @property
    def num_examples(self) -> int:
        return len(self.images)

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __getitem__(self, index: int):
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.images[idx], self.targets[idx]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.set_epoch(self.epoch + 1)


def read_image(path: str | Path, invert: Literal["auto", "yes", "no"] = "auto") -> np.ndarray:
    """A picture file as a Fashion-MNIST-like uint8 (28, 28) image: grey, resized to 28×28
    (Lanczos; a non-square picture is squashed), and — as Fashion-MNIST shows light garments on
    black — inverted when ``invert`` says so; ``auto`` inverts when the border is light (mean of
    the outermost pixels above 127), as in a photo of an item on a white background."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with Image.open(path) as picture:
            grey = picture.convert("L")
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not a readable image ({err}); give a PNG, JPEG or similar") from err
    if grey.size != (IMAGE_SIZE, IMAGE_SIZE):
        grey = grey.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.uint8)  # (28, 28)
    if invert not in ("auto", "yes", "no"):
        raise ValueError(f"invert = {invert!r}: expected auto | yes | no")
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if invert == "yes" or (invert == "auto" and border.mean() > 127):
        pixels = 255 - pixels
    return pixels
