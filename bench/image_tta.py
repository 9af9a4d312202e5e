"""Valid accuracy of a trained ``image`` model under more test-time views than the mirror image
(groundwork for the image family's TTA; test is never read).

    .venv/bin/python -m bench.image_tta --model models/image --out reports/image_tta_probe.json

Each view set averages the model's class probabilities over its views of every valid image: the
image and its mirror image (the family's ``tta``), each shifted by whole pixels (zero fill, as the
training's random translation fills). The sets are fixed here, not searched: ``flip`` (2 views),
``flip_cross1`` (±1 px along one axis: 10), ``flip_grid1`` (every shift in [-1, 1]²: 18),
``flip_grid2`` (every shift in [-2, 2]²: 50). The valid split is the model's own
(``train_info.json``: valid_size, seed, limit_train).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

VIEW_SETS = {
    "flip": [(0, 0)],
    "flip_cross1": [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)],
    "flip_grid1": [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)],
    "flip_grid2": [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)],
}


def shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``images`` (n, h, w) moved ``dy`` rows down and ``dx`` columns right, zeros filling in."""
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    src_y, dst_y = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    src_x, dst_x = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[:, dst_y, dst_x] = images[:, src_y, src_x]
    return out


def main(argv: list[str] | None = None) -> int:
    import keras

    from bench.image_speed import _machine
    from kexue.families.image import load_classifier
    from kexue.image_data import load_train_valid

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models/image")
    parser.add_argument("--data", default="data/raw/fashion_mnist")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    model, info = load_classifier(args.model)
    cfg = info["config"]
    (_, _), (images, labels) = load_train_valid(args.data, cfg["valid_size"], cfg["fit"]["seed"],
                                                cfg["limit_train"])

    def probs(x: np.ndarray) -> np.ndarray:
        return np.concatenate([keras.ops.convert_to_numpy(model(x[i:i + 500], training=False))
                               for i in range(0, len(x), 500)])

    machine = _machine()
    start = time.perf_counter()
    cache: dict = {}
    result: dict = {}
    for name, shifts in VIEW_SETS.items():
        total = 0.0
        for mirror in (False, True):
            for dy, dx in shifts:
                if (mirror, dy, dx) not in cache:
                    base = images[:, :, ::-1].copy() if mirror else images
                    cache[(mirror, dy, dx)] = probs(shifted(base, dy, dx))
                total = total + cache[(mirror, dy, dx)]
        result[name] = {"views": 2 * len(shifts),
                        "valid_accuracy": round(float(np.mean(total.argmax(1) == labels)), 4)}
    result["plain"] = {"views": 1, "valid_accuracy": round(float(np.mean(
        cache[(False, 0, 0)].argmax(1) == labels)), 4)}
    report = {"what": "valid accuracy of the model under test-time view sets (test not read)",
              "model": {k: cfg[k] for k in ("arch", "width", "precision", "erasing")} | {
                  "epochs": cfg["fit"]["epochs"], "best_valid_in_training": info.get("best_value"),
                  "train_seconds": info.get("train_seconds")},
              "valid_examples": int(len(labels)), "view_sets": result,
              "seconds": round(time.perf_counter() - start, 1), "machine": machine}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
