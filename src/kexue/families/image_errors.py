"""The image classifier's most confident test errors, drawn to a PNG grid (stage ``errors_image``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kexue.corpora.fashion_mnist import CLASSES
from kexue.io import atomic_path


def confident_errors(probs: np.ndarray, y_true: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` wrong predictions made with the highest probability, most confident first."""
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != y_true)
    confidence = probs[wrong, pred[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:k]]


def plot_errors(images: np.ndarray, probs: np.ndarray, y_true: np.ndarray, path: str | Path,
                k: int = 24, columns: int = 8) -> int:
    """A PNG grid of the ``k`` most confident test errors (predicted class and probability over
    the true class); returns how many were drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = confident_errors(probs, y_true, k)
    rows = max(1, -(-len(idx) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.5, rows * 1.8))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, i in zip(np.ravel(axes), idx, strict=False):
        pred = int(probs[i].argmax())
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(f"{CLASSES[pred]} {probs[i, pred]:.2f}\n(true: {CLASSES[int(y_true[i])]})",
                     fontsize=6)
    fig.suptitle("Most confident test errors: predicted (probability) / true class", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return len(idx)
