"""Fine-tuning on a few labels ("基于fine tune的图像分类"): the image network pretrained on some
Fashion-MNIST classes, then fine-tuned on a few labelled images of the others, against the same
network trained from scratch on the same images (stage ``finetune_image``).

Both arms get the same epoch rule, chosen on valid: a budget of ``epochs``, then twice that, and
so on up to ``max_epochs``, each budget a run of its own from the same start (the schedule decays
to zero at the end of every budget, so a longer budget is not a continuation of a shorter one).
The walk stops at the first budget that raises the arm's best valid accuracy by less than
``min_gain``, and keeps the budget best on valid; an arm that reaches ``max_epochs`` still gaining
says so (``still_improving``). Test accuracy is computed once, for the kept run of each arm, and
the two arms are compared by a paired bootstrap over the same valid and test images.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from kexue.comparison import comparison_block
from kexue.config import ConfigError
from kexue.corpora.fashion_mnist import CLASSES, load_split
from kexue.families.image import (
    Config,
    build_model,
    check_config,
    predict_classes,
    train_network,
)
from kexue.image_data import load_train_valid
from kexue.train import seed_everything


@dataclass(frozen=True)
class FinetuneConfig:
    pretrain_classes: list[int]  # the backbone learns these classes (all their training images)
    target_classes: list[int]  # the new task: these classes, from a few labels each
    labels_per_class: int = field(metadata={"min": 1})  # labelled training images per target class
    valid_per_class: int = field(metadata={"min": 1})  # labelled valid images per target class (picks the epoch)
    pretrain_epochs: int = field(metadata={"min": 1})
    epochs: int = field(metadata={"min": 1})  # first epoch budget of each arm (fine-tuned, from scratch)
    max_epochs: int = field(metadata={"min": 1})  # budgets double from `epochs` up to this
    # a budget must raise the arm's best valid accuracy by at least this much for the walk to go on
    min_gain: float = field(metadata={"min": 0.0, "max": 1.0})
    batch_size: int = field(metadata={"min": 1})
    learning_rate: float = field(metadata={"min": 0.0})  # of both small-data runs
    lr_multipliers: dict[str, float]  # fine-tuning: {layer pattern: multiplier} (kexue.optimizers)
    seed: int


def budgets(first: int, cap: int) -> list[int]:
    """The epoch budgets of the walk: ``first``, doubled while it stays within ``cap``, and ``cap``
    itself when doubling would pass it (30, 60 → [30, 60]; 30, 120 → [30, 60, 120]; 30, 100 →
    [30, 60, 100])."""
    if cap < first:
        raise ConfigError(f"finetune.max_epochs = {cap} is below finetune.epochs = {first}: "
                          "set max_epochs >= epochs")
    out = [first]
    while out[-1] < cap:
        out.append(min(2 * out[-1], cap))
    return out


def walk_budgets(train: Callable[[int], tuple[object, float, int]], first: int, cap: int,
                 min_gain: float) -> dict:
    """Train with each budget of :func:`budgets` in turn (``train(epochs)`` → ``(model, best
    valid accuracy, best epoch)``) until one raises the best valid accuracy by less than
    ``min_gain``; ``{"model", "kept", "runs", "stopped", "still_improving"}``, where ``kept`` is
    the run best on valid (the earlier one on a tie) and ``runs`` lists every budget tried."""
    runs, best, kept_model = [], None, None
    stopped = "max_epochs"
    for epochs in budgets(first, cap):
        model, valid, best_epoch = train(epochs)
        runs.append({"epochs": epochs, "best_epoch": int(best_epoch), "valid_accuracy": round(float(valid), 4)})
        gain = None if best is None else valid - best["valid_accuracy"]
        if best is None or valid > best["valid_accuracy"]:
            best, kept_model = runs[-1] | {"valid_accuracy": float(valid)}, model
        if gain is not None and gain < min_gain:
            stopped = "gain_below_min_gain"
            break
    kept = {**best, "valid_accuracy": round(best["valid_accuracy"], 4)}
    return {"model": kept_model, "kept": kept, "runs": runs, "stopped": stopped,
            "still_improving": stopped == "max_epochs" and len(runs) > 1}


def class_subset(images, labels, classes, per_class: int | None, seed: int):
    """Images of ``classes`` with labels renumbered 0..len(classes)-1; ``per_class`` keeps a
    seeded random sample of that many per class (None: all)."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in classes:
        members = np.flatnonzero(labels == c)
        if per_class is not None:
            if len(members) < per_class:
                raise ValueError(f"class {c} has {len(members)} images, fewer than the "
                                 f"{per_class} asked for")
            members = np.sort(rng.choice(members, per_class, replace=False))
        keep.append(members)
    idx = np.concatenate(keep)
    remap = {c: i for i, c in enumerate(classes)}
    return images[idx], np.array([remap[int(y)] for y in labels[idx]], dtype=np.int64)


def with_new_head(model: keras.Model, classes: int, name: str) -> keras.Model:
    """The backbone of ``model`` (everything up to the pooled features' dropout) under a new
    softmax layer of ``classes`` outputs; the backbone's layers (and weights) are shared."""
    features = model.get_layer("dropout").output  # (batch, features)
    probs = keras.layers.Dense(classes, activation="softmax", dtype="float32", name="new_probs")(features)
    return keras.Model(model.inputs, probs, name=name)


def copy_backbone(source: keras.Model, target: keras.Model) -> int:
    """Copy the weights of every layer ``target`` shares by name with ``source``, except the
    heads (``probs``, ``new_probs``); returns how many layers were copied. (A copy rather than
    the same layer objects: retraining layers in a second graph crashed TensorFlow's oneDNN
    convolution gradients on this CPU.)"""
    copied = 0
    names = {layer.name for layer in source.layers}
    for layer in target.layers:
        if layer.name in names and layer.name not in ("probs", "new_probs") and layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())
            copied += 1
    return copied


def finetune(cfg: FinetuneConfig, image_cfg: Config, data_dir: str | Path) -> dict:
    """Pretrain the image network on ``pretrain_classes``, then fine-tune it (with
    ``lr_multipliers``) on ``labels_per_class`` images of each target class, against the same
    network trained from scratch on the same images; both walk the same epoch budgets, and are
    scored on the target classes' valid and test images."""
    check_config(image_cfg)
    overlap = set(cfg.pretrain_classes) & set(cfg.target_classes)
    if overlap:
        raise ConfigError(f"finetune: classes {sorted(overlap)} are both pretraining and target "
                          "classes; the target task must be new to the backbone")
    budgets(cfg.epochs, cfg.max_epochs)  # a bad cap is an error before any training
    (x_train, y_train), (x_valid, y_valid) = load_train_valid(data_dir, image_cfg.valid_size,
                                                             image_cfg.fit.seed, image_cfg.limit_train)
    x_test, y_test = load_split(data_dir, "test")

    def run_cfg(epochs, batch_size, learning_rate):
        opt = dataclasses.replace(image_cfg.fit.optimizer, learning_rate=learning_rate,
                                  lr_multipliers={})
        fit_cfg = dataclasses.replace(image_cfg.fit, epochs=epochs, batch_size=batch_size,
                                      seed=cfg.seed, optimizer=opt)
        return dataclasses.replace(image_cfg, fit=fit_cfg,
                                   warmup_epochs=min(image_cfg.warmup_epochs, epochs / 4))

    # 1. the backbone: every training image of the pretraining classes
    pre = dataclasses.replace(run_cfg(cfg.pretrain_epochs, image_cfg.fit.batch_size,
                                      image_cfg.fit.optimizer.learning_rate), tta=False)
    xp, yp = class_subset(x_train, y_train, cfg.pretrain_classes, None, cfg.seed)
    xpv, ypv = class_subset(x_valid, y_valid, cfg.pretrain_classes, None, cfg.seed)
    seed_everything(cfg.seed, image_cfg.fit.deterministic)  # the initial weights, too
    base = with_new_head(build_model(pre, name="pretrained"), len(cfg.pretrain_classes), "pretrained")
    start = time.perf_counter()
    base, pre_result = train_network(pre, xp, yp, xpv, ypv, model=base)
    pretrain_seconds = time.perf_counter() - start

    # 2. the small task, fine-tuned and from scratch on the same images
    xs, ys = class_subset(x_train, y_train, cfg.target_classes, cfg.labels_per_class, cfg.seed)
    xsv, ysv = class_subset(x_valid, y_valid, cfg.target_classes, cfg.valid_per_class, cfg.seed + 1)
    xt, yt = class_subset(x_test, y_test.astype(np.int64), cfg.target_classes, None, cfg.seed)
    results, correct, copied = {}, {}, 0
    for arm in ("finetuned", "scratch"):
        def train(epochs, arm=arm):
            nonlocal copied
            small = run_cfg(epochs, cfg.batch_size, cfg.learning_rate)
            seed_everything(cfg.seed, image_cfg.fit.deterministic)  # the same start for every budget
            model = with_new_head(build_model(small, name=arm), len(cfg.target_classes), arm)
            multipliers = {}
            if arm == "finetuned":  # the pretrained backbone's weights, copied layer by layer
                copied = copy_backbone(base, model)
                multipliers = cfg.lr_multipliers
            model, result = train_network(small, xs, ys, xsv, ysv, model=model,
                                          lr_multipliers=multipliers)
            return model, float(result.best_value), result.best_epoch

        start = time.perf_counter()
        walk = walk_budgets(train, cfg.epochs, cfg.max_epochs, cfg.min_gain)
        seconds = time.perf_counter() - start
        model = walk["model"]
        correct[arm] = {"valid": predict_classes(model, xsv, tta=image_cfg.tta) == ysv,
                        "test": predict_classes(model, xt, tta=image_cfg.tta) == yt}
        results[arm] = {"test_accuracy": round(float(np.mean(correct[arm]["test"])), 4),
                        "valid_accuracy": walk["kept"]["valid_accuracy"],
                        "best_epoch": walk["kept"]["best_epoch"], "epochs": walk["kept"]["epochs"],
                        "stopped": walk["stopped"], "still_improving": walk["still_improving"],
                        "budgets": walk["runs"], "train_seconds": round(seconds, 1)}
    results["finetuned"]["layers_copied"] = copied
    comparison = comparison_block("accuracy", correct["finetuned"], {"from_scratch": correct["scratch"]})
    return {
        "pretrain": {"classes": [CLASSES[c] for c in cfg.pretrain_classes],
                     "train_images": int(len(xp)), "valid_accuracy": round(float(pre_result.best_value), 4),
                     "epochs": cfg.pretrain_epochs, "train_seconds": round(pretrain_seconds, 1)},
        "task": {"classes": [CLASSES[c] for c in cfg.target_classes],
                 "train_images": int(len(xs)), "valid_images": int(len(xsv)), "test_images": int(len(xt))},
        **results,
        "gain_points": round(100 * (results["finetuned"]["test_accuracy"]
                                    - results["scratch"]["test_accuracy"]), 2),
        "comparison": comparison,
        "lr_multipliers": cfg.lr_multipliers,
    }
