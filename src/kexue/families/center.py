"""Center loss beside softmax on Fashion-MNIST (科学空间, "Keras中自定义复杂的loss函数", 2017).

The post's pattern (:mod:`kexue.layers.center`): the labels enter the training model as an
input, the class centres are a trainable table looked up by them, and λ · ||f − c_y||² is added
to the softmax cross-entropy so that the features of one class gather round their centre. The
classifier kept for inference maps images to probabilities and takes no labels.

One small conv net (a VGG-style stack of the image family's blocks, then a ``feature_dim``
linear feature layer and the softmax) is trained twice on the same batches: with
each λ of ``center_weights``, the best on valid kept (stage ``train_center``) and with λ = 0, softmax alone (the peer, stage
``baselines_center``). Both are scored the same way (:func:`score`): accuracy, and what the
loss is meant to change, the learnt features — compactness (mean distance to the class mean over
mean distance between class means, class means from the training features), nearest-centroid
accuracy and k-NN accuracy (k picked on valid) on those features.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import keras
import numpy as np

from kexue.corpora.fashion_mnist import CLASSES, load_split
from kexue.families.image import (
    _augment,
    _norm_act,
    _plain_block,
    classification_scores,
    require_xla,
    schedule_knots,
)
from kexue.image_data import IMAGE_SIZE, ImageBatches, load_train_valid
from kexue.io import atomic_path, read_json, require_files, write_json
from kexue.layers.center import compile_losses, with_center_loss
from kexue.train import FitConfig, build_optimizer, fit, make_strategy, run_key, seed_everything

FEATURES = "features"  # the layer whose output the center loss gathers


@dataclass(frozen=True)
class Config:
    width: int = field(metadata={"min": 1})  # channels at 28×28; ×2 at 14×14, ×4 at 7×7
    feature_dim: int = field(metadata={"min": 1})  # size of the feature vector the loss gathers
    center_weights: list[float]  # λ tried (each > 0); the one with the best valid accuracy is kept
    activation: Literal["relu", "relu6", "swish", "gelu", "elu"]
    batch_norm: bool
    flip: bool  # random left-right flips
    shift: float = field(metadata={"min": 0.0, "max": 0.5})  # random translation, fraction of 28 px
    erasing: float = field(metadata={"min": 0.0, "max": 1.0})  # random erasing probability; 0 = off
    precision: Literal["float32", "mixed_bfloat16"]  # the convs' dtype policy (features: float32)
    xla: bool  # compile the training step with XLA (Keras's "auto" leaves it off on CPU-only machines)
    valid_size: int = field(metadata={"min": 1})  # valid images carved from the 60k training set
    limit_train: int = field(metadata={"min": 0})  # >0 keeps that many training images; 0 = all
    warmup_epochs: float = field(metadata={"min": 0.0})  # linear warm-up, then linear decay to 0
    momentum: float = field(metadata={"min": 0.0, "max": 0.999})  # Nesterov momentum (sgd)
    label_smoothing: float = field(metadata={"min": 0.0, "max": 0.5})
    knn_neighbours: list[int]  # k tried for the k-NN accuracy of the features; the best on valid kept
    plot_images: int = field(metadata={"min": 1})  # test images in the 2-D feature plot
    tta: bool  # must stay false: no mirror-image averaging (read by `kexue classify`)
    fit: FitConfig


@dataclass(frozen=True)
class BaselineConfig:
    softmax: bool  # the same network and batches with λ = 0 (softmax alone)


def check_config(cfg: Config) -> None:
    from kexue.config import ConfigError

    if not cfg.knn_neighbours or any(int(k) < 1 for k in cfg.knn_neighbours):
        raise ConfigError(f"center.knn_neighbours = {cfg.knn_neighbours!r} is not valid: expected "
                          "a non-empty list of integers >= 1")
    if not cfg.center_weights or any(not w > 0 for w in cfg.center_weights):
        raise ConfigError(f"center.center_weights = {cfg.center_weights!r} is not valid: expected a "
                          "non-empty list of weights > 0 (λ = 0, softmax alone, is the peer's arm)")
    if cfg.tta:
        raise ConfigError("center.tta must be false: the family scores single images")
    if cfg.fit.optimizer.schedule:
        raise ConfigError("center.fit.optimizer.schedule must be {}: the family computes its own "
                          "(linear warm-up over center.warmup_epochs, then linear decay to 0)")
    if cfg.warmup_epochs >= cfg.fit.epochs:
        raise ConfigError(f"center.warmup_epochs = {cfg.warmup_epochs} is not valid: expected fewer "
                          f"than center.fit.epochs = {cfg.fit.epochs}")


def build_classifier(cfg: Config, name: str = "center") -> keras.Model:
    """uint8 images (batch, 28, 28) → probabilities (batch, 10), through a layer ``features``
    (batch, feature_dim) that the center loss gathers."""
    images = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE), dtype="uint8", name="images")  # (batch, 28, 28)
    x = keras.layers.Rescaling(1.0 / 255, name="scale")(images)
    x = keras.layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1), name="add_channel")(x)  # (batch, 28, 28, 1)
    x = _augment(cfg, x, cfg.fit.seed)
    x = keras.layers.Conv2D(cfg.width, 3, padding="same", use_bias=not cfg.batch_norm, name="stem",
                            dtype=cfg.precision)(x)  # (batch, 28, 28, width)
    x = _norm_act(cfg, x, "stem")
    x = _plain_block(cfg, x, cfg.width, 1, "stem2")  # (batch, 28, 28, width)
    for stage in (1, 2):  # 14×14 with 2·width channels, 7×7 with 4·width
        x = keras.layers.MaxPooling2D(2, name=f"stage{stage}_pool", dtype=cfg.precision)(x)
        x = _plain_block(cfg, x, cfg.width * 2 ** stage, 1, f"stage{stage}_block1")
    x = keras.layers.GlobalAveragePooling2D(name="pool", dtype=cfg.precision)(x)  # (batch, 4 * width)
    features = keras.layers.Dense(cfg.feature_dim, dtype="float32", name=FEATURES)(x)  # (batch, feature_dim)
    probs = keras.layers.Dense(len(CLASSES), activation="softmax", dtype="float32",
                               name="probs")(features)  # (batch, 10)
    return keras.Model(images, probs, name=name)


class LabelledBatches(ImageBatches):
    """:class:`~kexue.image_data.ImageBatches` in the training model's form:
    ``({"images", "labels"}, {"probs": targets, "center": zeros})`` (the center output's loss
    ignores its target)."""

    def __init__(self, images, labels, batch_size, seed=0, shuffle=True, label_smoothing=0.0):
        super().__init__(images, labels, batch_size, seed=seed, shuffle=shuffle,
                         label_smoothing=label_smoothing)
        self.labels = np.asarray(labels, dtype=np.int32)

    def __getitem__(self, index: int):
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        return ({"images": self.images[idx], "labels": self.labels[idx]},
                {"probs": self.targets[idx], "center": np.zeros(len(idx), np.float32)})


def predict(model: keras.Model, images: np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities (n, 10), features (n, feature_dim))`` of uint8 images (n, 28, 28)."""
    both = keras.Model(model.input, [model.output, model.get_layer(FEATURES).output])
    probs, feats = [], []
    for start in range(0, len(images), batch_size):
        p, f = both(np.asarray(images[start:start + batch_size]), training=False)
        probs.append(keras.ops.convert_to_numpy(p))
        feats.append(keras.ops.convert_to_numpy(f))
    if not probs:
        return np.zeros((0, len(CLASSES)), np.float32), np.zeros((0, model.get_layer(FEATURES).units))
    return np.concatenate(probs), np.concatenate(feats)


class ValidAccuracy(keras.callbacks.Callback):
    """Logs ``val_accuracy``: the classifier's (labels-free) accuracy on the valid images."""

    def __init__(self, classifier: keras.Model, images: np.ndarray, labels: np.ndarray):
        super().__init__()
        self.classifier, self.images, self.labels = classifier, images, labels

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            probs, _ = predict(self.classifier, self.images)
            logs["val_accuracy"] = float(np.mean(probs.argmax(1) == self.labels))


def train_arm(cfg: Config, weight: float, data_dir: str | Path, live_dir=None,
              resume_root: str | Path | None = None, family: str = "center", live_prefix: str = "",
              keep_curves: bool = False):
    """Train the classifier with the center loss at weight ``weight`` (0 = softmax alone) and
    return ``(classifier, fit result, train images, train labels)``; the classifier holds the
    best-on-valid weights."""
    check_config(cfg)
    data_dir = Path(data_dir)
    (x_train, y_train), (x_valid, y_valid) = load_train_valid(data_dir, cfg.valid_size, cfg.fit.seed,
                                                             cfg.limit_train)
    resume_dir = None
    if resume_root is not None:
        key = run_key({**dataclasses.asdict(cfg), "center_weight": weight},
                      sorted(data_dir.glob("train-*")))
        resume_dir = Path(resume_root) / family / key
    seed_everything(cfg.fit.seed, cfg.fit.deterministic)
    with make_strategy(cfg.fit.distribute).scope():
        classifier = build_classifier(cfg, name=family)
        model = with_center_loss(classifier, FEATURES, weight)
        batches = LabelledBatches(x_train, y_train, cfg.fit.batch_size, seed=cfg.fit.seed,
                                  label_smoothing=cfg.label_smoothing)
        opt_cfg = dataclasses.replace(cfg.fit.optimizer, schedule=schedule_knots(
            cfg.warmup_epochs, cfg.fit.epochs, len(batches)))
        optimizer = build_optimizer(opt_cfg, model, momentum=cfg.momentum)
        if hasattr(optimizer, "exclude_from_weight_decay"):
            optimizer.exclude_from_weight_decay(var_names=["centers"])  # decay would pull them to 0
        model.compile(optimizer=optimizer, **compile_losses(weight),
                      metrics={"probs": ["accuracy"]}, jit_compile=cfg.xla)
        require_xla(model, cfg.xla, family)
    valid = LabelledBatches(x_valid, y_valid, 512, shuffle=False)
    result = fit(model, batches, valid, cfg.fit, monitor="val_accuracy", mode="max",
                 live_dir=live_dir, resume_dir=resume_dir, live_prefix=live_prefix,
                 keep_curves=keep_curves, scorers=[ValidAccuracy(classifier, x_valid, y_valid)])
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)
    return classifier, result, x_train, y_train


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None) -> dict:
    """Train with each λ of ``center_weights`` (curves under ``lambda_<λ>/``) and keep the one
    with the best valid accuracy (ties: the smaller λ); write its labels-free classifier
    ``model.keras`` and ``train_info.json`` into ``model_dir``."""
    check_config(cfg)
    best = None
    by_weight = {}
    start = time.perf_counter()
    for index, weight in enumerate(sorted(set(cfg.center_weights))):
        classifier, result, x_train, _ = train_arm(
            cfg, weight, data_dir, live_dir, resume_root, live_prefix=f"lambda_{weight:g}/",
            keep_curves=index > 0)
        by_weight[f"{weight:g}"] = {"valid_accuracy": round(result.best_value, 4),
                                    "best_epoch": result.best_epoch,
                                    "train_seconds": result.train_seconds}
        if best is None or result.best_value > best[2].best_value:
            best = (weight, classifier, result)
    weight, classifier, result = best
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / "model.keras") as tmp:
        classifier.save(tmp)
    info = {"config": dataclasses.asdict(cfg), "classes": CLASSES, "center_weight": weight,
            "by_weight": by_weight, "params": int(classifier.count_params()),
            "train_examples": int(len(x_train)), **result.to_dict(),
            "train_seconds": round(time.perf_counter() - start, 2)}  # every λ's fit
    write_json(model_dir / "train_info.json", info)
    return info


def load_classifier(model_dir: str | Path) -> tuple[keras.Model, dict]:
    """The trained classifier (images → probabilities) and its ``train_info.json``."""
    model_dir = require_files(model_dir, ("model.keras", "train_info.json"), "train_center")
    model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True, compile=False)
    return model, read_json(model_dir / "train_info.json")


# ---------------------------------------------------------------------------------------------
# scoring the features


def compactness(features: np.ndarray, labels: np.ndarray, means: np.ndarray) -> dict:
    """Mean distance of each vector to its class mean (``intra``), mean distance between the
    class means (``inter``, over the pairs) and their ratio: lower = tighter classes, and the
    ratio does not change when all features are scaled."""
    intra = float(np.mean(np.linalg.norm(features - means[labels], axis=1)))
    gaps = np.linalg.norm(means[:, None, :] - means[None, :, :], axis=-1)  # (classes, classes)
    upper = gaps[np.triu_indices(len(means), k=1)]
    inter = float(np.mean(upper))
    return {"intra": round(intra, 4), "inter": round(inter, 4),
            "ratio": round(intra / inter, 4) if inter > 0 else None}


def class_means(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(classes, dim): the mean feature vector of each class 0 .. max(labels); every class must
    have a vector."""
    classes = int(np.max(labels)) + 1
    missing = [c for c in range(classes) if not np.any(labels == c)]
    if missing:
        raise ValueError(f"class_means: no training vector of class(es) {missing}")
    return np.stack([features[labels == c].mean(0) for c in range(classes)])


def feature_scores(train: tuple, valid: tuple, test: tuple, neighbours: list[int]) -> dict:
    """Compactness, nearest-centroid and k-NN accuracy of ``(features, labels)`` on valid and
    test, with the class means and the k-NN index from ``train``; k picked on valid."""
    from sklearn.neighbors import KNeighborsClassifier

    means = class_means(*train)
    out: dict = {"compactness": {}, "nearest_centroid_accuracy": {}}
    for split, (feats, labels) in (("valid", valid), ("test", test)):
        out["compactness"][split] = compactness(feats, labels, means)
        nearest = np.argmin(np.linalg.norm(feats[:, None, :] - means[None], axis=-1), axis=1)
        out["nearest_centroid_accuracy"][split] = round(float(np.mean(nearest == labels)), 4)
    knn = KNeighborsClassifier(n_neighbors=max(neighbours), n_jobs=1).fit(*train)
    by_k = {}
    for k in sorted(set(int(k) for k in neighbours)):
        knn.set_params(n_neighbors=k)
        by_k[k] = round(float(np.mean(knn.predict(valid[0]) == valid[1])), 4)
    best = max(by_k, key=lambda k: (by_k[k], -k))  # ties: the smaller k
    knn.set_params(n_neighbors=best)
    out["knn"] = {"k": best, "valid_by_k": {str(k): v for k, v in by_k.items()},
                  "valid": by_k[best], "test": round(float(np.mean(knn.predict(test[0]) == test[1])), 4)}
    return out


def projection(features: np.ndarray, count: int) -> list[list[float]]:
    """The first ``count`` vectors in 2-D: as they are when ``feature_dim`` is 2, else their first
    two principal components (PCA fitted on these vectors)."""
    feats = np.asarray(features[:count], dtype=np.float64)
    if feats.shape[1] > 2:
        from sklearn.decomposition import PCA

        feats = PCA(n_components=2, random_state=0).fit_transform(feats)
    return np.round(feats, 4).tolist()


def score(classifier: keras.Model, cfg: Config, data_dir: str | Path) -> dict:
    """The metrics both arms get: test and valid accuracy (with per-image right/wrong for the
    paired bootstrap), the feature scores and the 2-D points of the first ``plot_images`` test
    images."""
    (x_train, y_train), (x_valid, y_valid) = load_train_valid(data_dir, cfg.valid_size, cfg.fit.seed,
                                                             cfg.limit_train)
    x_test, y_test = load_split(data_dir, "test")
    y_test = y_test.astype(np.int64)
    out: dict = {"items": {}}
    feats = {}
    for split, (x, y) in (("train", (x_train, y_train)), ("valid", (x_valid, y_valid)),
                          ("test", (x_test, y_test))):
        probs, feats[split] = predict(classifier, x)
        if split == "train":
            continue
        pred = probs.argmax(1)
        out[split] = classification_scores(y, pred)
        out["items"][split] = (pred == y).astype(int).tolist()
    out["features"] = feature_scores((feats["train"], y_train), (feats["valid"], y_valid),
                                     (feats["test"], y_test), cfg.knn_neighbours)
    out["projection"] = {"labels": y_test[:cfg.plot_images].tolist(),
                         "points": projection(feats["test"], cfg.plot_images)}
    return out


def evaluate(model_dir: str | Path, data_dir: str | Path) -> tuple[dict, list[dict]]:
    """The center-loss model's scores (:func:`score`) and its training cost; test confusion rows."""
    from kexue.config import parse

    classifier, info = load_classifier(model_dir)
    cfg = parse(Config, info["config"], "center", source="train_info.json")
    scores = score(classifier, cfg, data_dir)
    scores.pop("projection")  # the plot stage draws it; the metrics file stays small
    metrics = {"items": {"metric": "accuracy", "kind": "mean", **scores.pop("items")}, **scores}
    metrics["center_weight"] = {"chosen": info["center_weight"], "by_weight": info["by_weight"]}
    metrics["cost"] = {"train_seconds": info["train_seconds"], "params": info["params"],
                       "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"],
                       "feature_dim": cfg.feature_dim}
    x_test, y_test = load_split(data_dir, "test")
    pred = predict(classifier, x_test)[0].argmax(1)
    rows = [{"actual": CLASSES[int(a)], "predicted": CLASSES[int(p)]}
            for a, p in zip(y_test, pred, strict=True)]
    return metrics, rows


def baselines(cfg: BaselineConfig, data_dir: str | Path, network: Config) -> dict:
    """The softmax-alone peer: ``network`` (the ``center`` section) trained with λ = 0 on the same
    batches, scored like the network (its 2-D test points kept for the feature plot)."""
    if not cfg.softmax:
        return {}
    start = time.perf_counter()
    classifier, result, _, _ = train_arm(network, 0.0, data_dir, family="center_softmax")
    seconds = time.perf_counter() - start
    scores = score(classifier, network, data_dir)
    for split in ("test", "valid"):
        scores[split].pop("per_class")
    return {"softmax": {**scores, "train_seconds": round(seconds, 1),
                        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run}}


def plot_features(model_dir: str | Path, data_dir: str | Path, peer_projection: dict | None,
                  path: str | Path) -> None:
    """A PNG of the test features in 2-D, softmax alone (``peer_projection``, the ``projection``
    the peer's scores carry) beside softmax + center loss, coloured by class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kexue.config import parse

    classifier, info = load_classifier(model_dir)
    cfg = parse(Config, info["config"], "center", source="train_info.json")
    x_test, y_test = load_split(data_dir, "test")
    _, feats = predict(classifier, x_test[:cfg.plot_images])
    panels = []
    if peer_projection is not None:
        panels.append(("softmax alone", np.asarray(peer_projection["points"]),
                       np.asarray(peer_projection["labels"])))
    panels.append((f"softmax + center loss (λ = {info['center_weight']:g}, picked on valid)",
                   np.asarray(projection(feats, cfg.plot_images)), y_test[:cfg.plot_images]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 5), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, (title, points, labels) in zip(axes[0], panels, strict=True):
        for c, name in enumerate(CLASSES):
            mask = labels == c
            ax.scatter(points[mask, 0], points[mask, 1], s=3, color=colours(c), label=name)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    how = ("the 2-d features" if cfg.feature_dim == 2 else
           f"first two principal components of the {cfg.feature_dim}-d features")
    fig.suptitle(f"Fashion-MNIST test images (first {len(y_test[:cfg.plot_images])}): {how}", fontsize=9)
    axes[0][-1].legend(fontsize=6, markerscale=3, loc="best")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
