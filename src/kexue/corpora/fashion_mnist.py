"""Fashion-MNIST from its idx files (``data/raw/fashion_mnist/*.gz``, copied by ``acquire``).

The idx format: a big-endian header — magic ``0x00 0x00 <dtype code> <ndim>``, then ``ndim``
uint32 sizes — followed by the array in C order. Images are ``(n, 28, 28)`` uint8 (magic 2051),
labels ``(n,)`` uint8 (magic 2049). Files may be gzip-compressed (``.gz``) or plain.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from kexue.io import CorruptFileError

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_UBYTE = 0x08  # idx dtype code of unsigned bytes (the only one Fashion-MNIST uses)


class IdxError(CorruptFileError):
    """An idx file is not what its header says (or not an idx file at all)."""


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """The uint8 array stored in an idx file; ``ndim`` (if given) is checked against the header."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the acquire stage (`dvc repro acquire`)")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise IdxError(f"{path}: cannot read ({err}); the file is damaged — rerun acquire") from err
    if len(data) < 4:
        raise IdxError(f"{path}: {len(data)} bytes, too short for an idx header")
    zero, code, dims = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or code != _UBYTE or dims == 0:
        raise IdxError(
            f"{path}: bad magic number 0x{data[:4].hex()} (expected 0x000008NN: unsigned bytes, "
            f"NN dimensions, e.g. 0x00000803 for images, 0x00000801 for labels)"
        )
    if ndim is not None and dims != ndim:
        raise IdxError(f"{path}: {dims} dimensions in the header, expected {ndim}")
    header = 4 + 4 * dims
    if len(data) < header:
        raise IdxError(f"{path}: truncated header ({len(data)} bytes, need {header})")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise IdxError(f"{path}: {len(data)} bytes but the header {shape} implies {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_split(root: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images (n, 28, 28) uint8, labels (n,) uint8)`` of ``split`` (train | test)."""
    if split not in FILES:
        raise ValueError(f"fashion_mnist split {split!r}: expected one of {', '.join(FILES)}")
    image_file, label_file = FILES[split]
    images = read_idx(Path(root) / image_file, ndim=3)
    labels = read_idx(Path(root) / label_file, ndim=1)
    if len(images) != len(labels):
        raise IdxError(f"{root}: {len(images)} {split} images but {len(labels)} labels")
    if len(labels) and labels.max() >= len(CLASSES):
        raise IdxError(f"{Path(root) / label_file}: label {labels.max()} out of range 0-9")
    return images, labels


def train_valid_split(labels: np.ndarray, valid_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, valid)`` of a stratified random split of the training set, so model
    selection never looks at the test set."""
    if not 0 < valid_size < len(labels):
        raise ValueError(f"valid_size = {valid_size}: expected 1 .. {len(labels) - 1}")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    valid = []
    for index, c in enumerate(classes):
        members = rng.permutation(np.flatnonzero(labels == c))
        # spread the valid examples evenly over classes (the remainder goes to the first ones)
        share = valid_size // len(classes) + (index < valid_size % len(classes))
        valid.append(members[:share])
    valid_idx = np.sort(np.concatenate(valid))
    train_idx = np.setdiff1d(np.arange(len(labels)), valid_idx)
    return train_idx, valid_idx
