"""Fashion-MNIST classification with a compact conv net for 28×28 grey images.

After the 科学空间 post "fashion mnist的一个baseline (MobileNet 95%)": a MobileNet-style net of
depthwise-separable convolutions with random horizontal flips reached 95.0% test accuracy.
Here the recipe is one Keras model whose first layers do the augmentation (RandomFlip,
RandomTranslation, optional RandomErasing — active only when ``training=True``, so the saved
model classifies raw uint8 images as they are), followed by either

- ``arch: mobilenet`` — 3×3 depthwise conv → 1×1 pointwise conv blocks (MobileNet v1),
- ``arch: resnet``    — basic residual blocks of two 3×3 convs (ResNet, pre-add BN),
- ``arch: vgg``       — plain 3×3 convs (two at 28×28, then ``blocks`` per stage) with max-pooling
  between stages: the cheapest per parameter on this CPU (wide convs at low resolution),

in three stages at 28×28, 14×14 and 7×7 with ``width``, 2×``width`` and 4×``width`` channels,
then global average pooling, dropout and a 10-way softmax (computed in float32 also under a
``mixed_bfloat16`` policy). Batch-norm and the activation are params, for ablations.

Model selection uses a validation split carved from the training set
(:func:`kexue.corpora.fashion_mnist.train_valid_split`); the test set is only evaluated.
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
from kexue.image_data import IMAGE_SIZE, ImageBatches, load_train_valid
from kexue.io import atomic_path, read_json, write_json
from kexue.train import FitConfig, build_optimizer, fit, make_strategy, run_key, seed_everything


@dataclass(frozen=True)
class Config:
    arch: Literal["mobilenet", "resnet", "vgg"]
    width: int = field(metadata={"min": 1})  # channels of the first stage; doubled per stage
    blocks: int = field(metadata={"min": 1})  # blocks per stage (3 stages)
    activation: Literal["relu", "relu6", "swish", "gelu", "elu"]
    batch_norm: bool  # BatchNormalization after every conv
    flip: bool  # random horizontal flips (the post's augmentation)
    shift: float = field(metadata={"min": 0.0, "max": 0.5})  # random translation, fraction of 28 px; 0 = off
    erasing: float = field(metadata={"min": 0.0, "max": 1.0})  # probability of random erasing; 0 = off
    dropout: float = field(metadata={"min": 0.0, "max": 0.95})  # before the classifier
    precision: Literal["float32", "mixed_bfloat16"]  # dtype policy of the conv layers
    xla: bool  # compile the training step with XLA (Keras's "auto" leaves it off on CPU-only machines)
    valid_size: int = field(metadata={"min": 1})  # valid examples carved from the 60k train set
    limit_train: int = field(metadata={"min": 0})  # >0 keeps that many of the 60k training images (stratified; tiny test runs); 0 = all
    warmup_epochs: float = field(metadata={"min": 0.0})  # linear LR warm-up, then linear decay to 0 at the last epoch
    momentum: float = field(metadata={"min": 0.0, "max": 0.999})  # Nesterov momentum of fit.optimizer.name: sgd (ignored otherwise)
    label_smoothing: float = field(metadata={"min": 0.0, "max": 0.5})  # targets (1 - e) one-hot + e / 10
    tta: bool  # test-time augmentation: average the probabilities of the image and its mirror image
    fit: FitConfig


def check_config(cfg: Config) -> None:
    """Errors for values the dataclass types cannot catch (e.g. a Config built in Python)."""
    from kexue.config import ConfigError

    if cfg.arch not in ("mobilenet", "resnet", "vgg"):
        raise ConfigError(f"image.arch = {cfg.arch!r} is not valid: expected mobilenet | resnet | vgg")
    if cfg.activation not in ("relu", "relu6", "swish", "gelu", "elu"):
        raise ConfigError(f"image.activation = {cfg.activation!r} is not valid: "
                          "expected relu | relu6 | swish | gelu | elu")
    if cfg.precision not in ("float32", "mixed_bfloat16"):
        raise ConfigError(f"image.precision = {cfg.precision!r} is not valid: "
                          "expected float32 | mixed_bfloat16")
    for name, low, high in (("width", 1, None), ("blocks", 1, None), ("shift", 0.0, 0.5),
                            ("erasing", 0.0, 1.0), ("dropout", 0.0, 0.95), ("warmup_epochs", 0.0, None),
                            ("momentum", 0.0, 0.999), ("label_smoothing", 0.0, 0.5)):
        value = getattr(cfg, name)
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise ConfigError(f"image.{name} = {value!r} is not valid: expected a value {bound}")
    if cfg.fit.optimizer.schedule:
        raise ConfigError("image.fit.optimizer.schedule must be {}: the image family computes its "
                          "own schedule (linear warm-up over image.warmup_epochs, then linear decay "
                          "to 0 at the last epoch) from image.fit.epochs")
    if cfg.warmup_epochs >= cfg.fit.epochs:
        raise ConfigError(f"image.warmup_epochs = {cfg.warmup_epochs} is not valid: expected fewer "
                          f"than image.fit.epochs = {cfg.fit.epochs}")


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


def _plain_block(cfg: Config, x, filters: int, stride: int, name: str):
    """VGG block: one 3×3 conv (the vgg arch pools between stages instead of striding)."""
    x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=not cfg.batch_norm,
                            name=f"{name}_conv", dtype=cfg.precision)(x)  # (batch, h', w', filters)
    return _norm_act(cfg, x, f"{name}_conv")


def build_model(cfg: Config, name: str = "image") -> keras.Model:
    """The classifier ``cfg`` describes: uint8 images (batch, 28, 28) in, class probabilities
    (batch, 10) out. Augmentation layers are seeded from ``cfg.fit.seed``."""
    check_config(cfg)
    block = {"mobilenet": _separable_block, "resnet": _residual_block, "vgg": _plain_block}[cfg.arch]
    images = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE), dtype="uint8", name="images")  # (batch, 28, 28)
    x = keras.layers.Rescaling(1.0 / 255, name="scale")(images)  # (batch, 28, 28) in [0, 1]
    x = keras.layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1), name="add_channel")(x)  # (batch, 28, 28, 1)
    x = _augment(cfg, x, cfg.fit.seed)
    # every layer is named: resuming restores state by layer name
    x = keras.layers.Conv2D(cfg.width, 3, padding="same", use_bias=not cfg.batch_norm,
                            name="stem", dtype=cfg.precision)(x)  # (batch, 28, 28, width)
    x = _norm_act(cfg, x, "stem")
    if cfg.arch == "vgg":  # a second full-resolution conv before the first pooling
        x = _plain_block(cfg, x, cfg.width, 1, "stem2")  # (batch, 28, 28, width)
    for stage in range(3):  # 28×28, 14×14, 7×7 (vgg: 14×14, 7×7, 3×3 after max-pooling)
        filters = cfg.width * 2 ** stage
        if cfg.arch == "vgg":  # pool first: the full-resolution work is the stem's
            x = keras.layers.MaxPooling2D(2, name=f"stage{stage + 1}_pool", dtype=cfg.precision)(x)
        for index in range(cfg.blocks):
            stride = 2 if stage > 0 and index == 0 and cfg.arch != "vgg" else 1
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
        from kexue.checkpoint import resumed_seconds

        if logs is not None:  # a resumed run's clock continues from the interrupted run's
            logs["elapsed_seconds"] = (resumed_seconds(self.model)
                                       + time.perf_counter() - self.start)


def time_to_reach(values: list[float], seconds: list[float], threshold: float) -> float | None:
    """Seconds until ``values`` (a per-epoch curve, e.g. val_accuracy) first reaches
    ``threshold``, from the matching cumulative ``seconds``; None when it never does."""
    if len(values) != len(seconds):
        raise ValueError(f"time_to_reach: {len(values)} values but {len(seconds)} times")
    for value, at in zip(values, seconds, strict=True):
        if value >= threshold:
            return float(at)
    return None


def predict_probs(model: keras.Model, images: np.ndarray, tta: bool = False,
                  batch_size: int = 512) -> np.ndarray:
    """Class probabilities (n, 10) of uint8 images (n, 28, 28); with ``tta`` the mean of the
    image's and its left-right mirror image's (the flip the model was trained with)."""
    images = np.asarray(images)
    out = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]  # (b, 28, 28)
        probs = keras.ops.convert_to_numpy(model(chunk, training=False))  # (b, 10)
        if tta:
            mirrored = keras.ops.convert_to_numpy(model(chunk[:, :, ::-1].copy(), training=False))
            probs = (probs + mirrored) / 2
        out.append(probs)
    return np.concatenate(out) if out else np.zeros((0, len(CLASSES)), np.float32)


def predict_classes(model: keras.Model, images: np.ndarray, tta: bool = False,
                    batch_size: int = 512) -> np.ndarray:
    """Arg-max class of each uint8 image (n, 28, 28)."""
    return np.argmax(predict_probs(model, images, tta, batch_size), axis=-1)


# ---------------------------------------------------------------------------------------------
# training


def schedule_knots(warmup_epochs: float, epochs: int, steps_per_epoch: int) -> dict[int, float]:
    """{step: factor} of :class:`kexue.optimizers.PiecewiseLinear`: linear warm-up from 0 over
    ``warmup_epochs``, then linear decay to 0 at the last step (a "one-cycle" shape; short CPU
    budgets end at the rate that gives the best model, not at a step function's plateau)."""
    total = epochs * steps_per_epoch
    warmup = int(round(warmup_epochs * steps_per_epoch))
    if warmup <= 0:
        return {0: 1.0, total: 0.0}
    return {warmup: 1.0, total: 0.0}


def compile_model(model: keras.Model, cfg: Config, steps_per_epoch: int,
                  lr_multipliers: dict[str, float] | None = None) -> None:
    """Compile with the family's schedule, momentum and cross-entropy on (smoothed) targets."""
    opt_cfg = dataclasses.replace(
        cfg.fit.optimizer,
        schedule=schedule_knots(cfg.warmup_epochs, cfg.fit.epochs, steps_per_epoch),
        lr_multipliers=lr_multipliers if lr_multipliers is not None else cfg.fit.optimizer.lr_multipliers)
    model.compile(optimizer=build_optimizer(opt_cfg, model, momentum=cfg.momentum),
                  loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"], jit_compile=cfg.xla)
    require_xla(model, cfg.xla, "image")


def require_xla(model: keras.Model, xla: bool, section: str) -> None:
    """A :class:`ConfigError` when ``{section}.xla`` asked for XLA and Keras compiled ``model``
    without it (Keras only warns): a layer with no XLA kernel, e.g. RandomTranslation (shift)."""
    if xla and not model.jit_compile:
        from kexue.config import ConfigError

        blockers = [layer.name for layer in model.layers if not getattr(layer, "supports_jit", True)]
        raise ConfigError(f"{section}.xla = true, but the layers {blockers or '(unknown)'} have no XLA "
                          f"kernel: set {section}.xla: false, or turn those layers off "
                          f"({section}.shift: 0 removes random_shift)")


class ValidAccuracy(keras.callbacks.Callback):
    """Logs ``val_accuracy_tta`` (valid accuracy with the mirror-image average), so the best
    epoch is picked on what evaluation reports."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        super().__init__()
        self.images, self.labels = images, labels

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            pred = predict_classes(self.model, self.images, tta=True)
            logs["val_accuracy_tta"] = float(np.mean(pred == self.labels))


def train_network(cfg: Config, x_train, y_train, x_valid, y_valid, live_dir=None, resume_dir=None,
                  name: str = "image", model: keras.Model | None = None,
                  lr_multipliers: dict[str, float] | None = None, live_prefix: str = ""):
    """Fit ``model`` (a fresh :func:`build_model` of ``cfg`` when None) and return it with the
    fit record, holding the best-on-valid weights (valid accuracy, with TTA if ``cfg.tta``)."""
    seed_everything(cfg.fit.seed, cfg.fit.deterministic)
    with make_strategy(cfg.fit.distribute).scope():
        if model is None:
            model = build_model(cfg, name=name)
        classes = int(model.output.shape[-1])
        train_batches = ImageBatches(x_train, y_train, cfg.fit.batch_size, seed=cfg.fit.seed,
                                     label_smoothing=cfg.label_smoothing, classes=classes)
        compile_model(model, cfg, len(train_batches), lr_multipliers)
    valid_batches = ImageBatches(x_valid, y_valid, 512, shuffle=False, classes=classes)
    scorers = [EpochClock()] + ([ValidAccuracy(x_valid, y_valid)] if cfg.tta else [])
    monitor = "val_accuracy_tta" if cfg.tta else "val_accuracy"
    result = fit(model, train_batches, valid_batches, cfg.fit, monitor=monitor, mode="max",
                 live_dir=live_dir, resume_dir=resume_dir, live_prefix=live_prefix, scorers=scorers)
    return model, result


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None, family: str = "image") -> dict:
    """Train on the 60k training images minus ``valid_size`` (the valid set picks the epoch);
    write ``model.keras`` and ``train_info.json`` (with the valid curve's time-to-94% / 95%)."""
    check_config(cfg)
    data_dir, model_dir = Path(data_dir), Path(model_dir)
    (x_train, y_train), (x_valid, y_valid) = load_train_valid(data_dir, cfg.valid_size, cfg.fit.seed,
                                                             cfg.limit_train)
    resume_dir = None
    if resume_root is not None:
        key = run_key(dataclasses.asdict(cfg), sorted(data_dir.glob("train-*")))
        resume_dir = Path(resume_root) / family / key
    model, result = train_network(cfg, x_train, y_train, x_valid, y_valid, live_dir, resume_dir,
                                  name=family)
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / "model.keras") as tmp:
        model.save(tmp)
    curve = result.history.get(result.monitor, [])
    elapsed = result.history.get("elapsed_seconds", [])
    info = {"config": dataclasses.asdict(cfg), "classes": CLASSES, "params": int(model.count_params()),
            "train_examples": int(len(x_train)), "valid_examples": int(len(x_valid)),
            "valid_94_seconds": time_to_reach(curve, elapsed, 0.94) if elapsed else None,
            "valid_95_seconds": time_to_reach(curve, elapsed, 0.95) if elapsed else None,
            **result.to_dict()}
    write_json(model_dir / "train_info.json", info)
    return info


# ---------------------------------------------------------------------------------------------
# evaluation


def load_classifier(model_dir: str | Path) -> tuple[keras.Model, dict]:
    """The trained model and its ``train_info.json``; a clear error when training has not run."""
    model_dir = Path(model_dir)
    for name in ("model.keras", "train_info.json"):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir / name} not found: train the model first "
                                    "(`dvc repro train_image`)")
    model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True, compile=False)
    return model, read_json(model_dir / "train_info.json")


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, macro F1 and per-class precision / recall / F1 (scikit-learn's definitions)."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    labels = list(range(len(CLASSES)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=labels, average="macro",
                                         zero_division=0)), 4),
        "examples": int(len(y_true)),
        "per_class": {name: {"precision": round(float(p), 4), "recall": round(float(r), 4),
                             "f1": round(float(f), 4), "support": int(n)}
                      for name, p, r, f, n in zip(CLASSES, precision, recall, f1, support, strict=True)},
    }


def evaluate(model_dir: str | Path, data_dir: str | Path) -> tuple[dict, list[dict]]:
    """Accuracy, macro F1 and per-class F1 on test and valid (with and without the mirror-image
    average), training cost and time-to-accuracy; plus test confusion rows for DVC's template."""
    model, info = load_classifier(model_dir)
    cfg = info["config"]
    (_, _), (x_valid, y_valid) = load_train_valid(data_dir, cfg["valid_size"], cfg["fit"]["seed"],
                                                 cfg["limit_train"])
    x_test, y_test = load_split(data_dir, "test")
    y_test = y_test.astype(np.int64)
    metrics: dict = {"items": {"metric": "accuracy", "kind": "mean"}}  # per image, for the bootstrap
    for split, (x, y) in (("test", (x_test, y_test)), ("valid", (x_valid, y_valid))):
        start = time.perf_counter()
        probs = predict_probs(model, x, tta=cfg["tta"])
        seconds = time.perf_counter() - start
        plain = predict_classes(model, x, tta=False) if cfg["tta"] else probs.argmax(1)
        metrics[split] = {**classification_scores(y, probs.argmax(1)), "tta": cfg["tta"],
                          "accuracy_without_tta": round(float(np.mean(plain == y)), 4)}
        metrics["items"][split] = (probs.argmax(1) == y).astype(int).tolist()
        if split == "test":
            test_probs, test_seconds = probs, seconds
    metrics["cost"] = {
        "train_seconds": info["train_seconds"],
        "valid_94_seconds": info["valid_94_seconds"],
        "valid_95_seconds": info["valid_95_seconds"],
        "params": info["params"],
        "examples_per_second": info["examples_per_second"],
        "inference_images_per_second": round(len(x_test) / test_seconds, 1),
        "epochs_run": info["epochs_run"],
        "best_epoch": info["best_epoch"],
        "arch": cfg["arch"], "width": cfg["width"], "blocks": cfg["blocks"],
    }
    rows = [{"actual": CLASSES[int(a)], "predicted": CLASSES[int(p)]}
            for a, p in zip(y_test, test_probs.argmax(1), strict=True)]
    return metrics, rows
