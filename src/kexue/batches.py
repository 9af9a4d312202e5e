"""Length-bucketed batches of variable-length token sequences, reproducible per epoch.

Reviews run from a few characters to several hundred; padding every batch to the longest text
wastes most of an RNN's time. Batches here are built "sortish": shuffle, sort by length inside
chunks of 50 batches, cut into batches, shuffle the batch order. Each epoch's order depends only
on ``(seed, epoch)``, so a run resumed at epoch k sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np


def pad(sequences: Sequence[np.ndarray], length: int | None = None, fill: int = 0) -> np.ndarray:
    length = length or max(len(s) for s in sequences)
    out = np.full((len(sequences), length), fill, dtype=np.int32)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = seq[:length]
    return out


class SequenceBatches(keras.utils.PyDataset):
    """Batches of ``(padded ids, labels)``; ``shuffle=False`` keeps a fixed length-sorted order
    (for prediction use :meth:`order` to map outputs back).

    ``sequences`` is one list of id arrays, or a tuple of aligned lists (several inputs of the
    same length per example, e.g. characters and character bigrams); a tuple yields tuples.
    ``labels`` is one label per example, or (sequence labelling) one id array per example,
    padded per batch with ``label_pad`` (-1: positions the loss ignores). ``weights`` (one per
    example) makes batches ``(x, y, sample_weight)``.
    """

    def __init__(self, sequences: Sequence[np.ndarray] | tuple[Sequence[np.ndarray], ...],
                 labels: np.ndarray | None, batch_size: int, seed: int = 0, shuffle: bool = True,
                 chunk_batches: int = 50, label_pad: int = -1, weights: np.ndarray | None = None):
        super().__init__()
        self.multi = isinstance(sequences, tuple)
        self.inputs = [list(s) for s in sequences] if self.multi else [list(sequences)]
        if len({len(s) for s in self.inputs}) != 1:
            raise ValueError("SequenceBatches: the input lists differ in length")
        self.sequences = self.inputs[0]
        self.ragged_labels = labels is not None and len(labels) > 0 and np.ndim(labels[0]) == 1
        self.label_pad = label_pad
        self.labels = None if labels is None else (
            list(labels) if self.ragged_labels else np.asarray(labels))
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float32)
        if self.weights is not None and (labels is None or len(self.weights) != len(self.sequences)):
            raise ValueError("SequenceBatches: weights need labels and one weight per example")
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.chunk = batch_size * chunk_batches
        self.lengths = np.array([len(s) for s in self.sequences])
        self.epoch = 0
        self._batches = self._make_batches()

    def set_epoch(self, epoch: int) -> None:
        """Jump to ``epoch`` (used when resuming)."""
        self.epoch = epoch
        self._batches = self._make_batches()

    def _make_batches(self) -> list[np.ndarray]:
        n = len(self.sequences)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            return [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n)
        batches = []
        for start in range(0, n, self.chunk):
            chunk = order[start : start + self.chunk]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]

    @property
    def num_examples(self) -> int:
        return len(self.sequences)

    def order(self) -> np.ndarray:
        """Example indices in the order batches yield them."""
        return np.concatenate(self._batches)

    def __len__(self) -> int:
        return len(self._batches)

    def __getitem__(self, index: int):
        idx = self._batches[index]
        # Odd batches get one more padded step. Keras fixes the input signature from the first
        # two batches it peeks at, and a length they happen to share becomes a fixed dimension
        # that a later, shorter batch breaks; an extra padded step is masked and changes nothing.
        length = int(self.lengths[idx].max()) + index % 2
        xs = tuple(pad([inp[i] for i in idx], length) for inp in self.inputs)
        x = xs if self.multi else xs[0]
        if self.labels is None:
            return (x,)
        if self.ragged_labels:
            return x, pad([self.labels[i] for i in idx], fill=self.label_pad, length=xs[0].shape[1])
        if self.weights is not None:
            return x, self.labels[idx], self.weights[idx]
        return x, self.labels[idx]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.set_epoch(self.epoch + 1)
