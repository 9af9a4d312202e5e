"""The one fit entry point every family uses.

``fit`` seeds everything, builds the optimizer from params, trains with progress output, logs
curves through DVCLive, and returns the model holding its best-on-valid weights together with a
record of what happened (epochs, best epoch, seconds, throughput).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import keras

from kexue.callbacks import BestWeights, dvclive_callback


@dataclass(frozen=True)
class OptimizerConfig:
    """Which Keras optimizer and its base settings."""

    name: Literal["adam", "adamw", "sgd", "rmsprop"]
    learning_rate: float = field(metadata={"min": 0.0})
    global_clipnorm: float = field(metadata={"min": 0.0})  # 0 = no clipping


@dataclass(frozen=True)
class FitConfig:
    epochs: int = field(metadata={"min": 1})
    batch_size: int = field(metadata={"min": 1})
    seed: int
    deterministic: bool  # tf.config.experimental.enable_op_determinism
    optimizer: OptimizerConfig


@dataclass
class FitResult:
    epochs_run: int
    best_epoch: int  # 1-based
    best_value: float
    monitor: str
    train_seconds: float
    examples_per_second: float
    history: dict[str, list[float]]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def seed_everything(seed: int, deterministic: bool) -> None:
    """Python, NumPy and backend seeds; optionally TensorFlow's deterministic op kernels."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    keras.utils.set_random_seed(seed)
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def build_optimizer(cfg: OptimizerConfig) -> keras.optimizers.Optimizer:
    kwargs = {"learning_rate": cfg.learning_rate}
    if cfg.global_clipnorm > 0:
        kwargs["global_clipnorm"] = cfg.global_clipnorm
    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return classes[cfg.name](**kwargs)


def fit(
    model: keras.Model,
    train_data: keras.utils.PyDataset,
    valid_data: keras.utils.PyDataset,
    cfg: FitConfig,
    monitor: str,
    mode: Literal["min", "max"],
    live_dir: str | Path | None = None,
) -> FitResult:
    """Train ``model`` (already compiled) and leave it holding the best-on-valid weights."""
    best = BestWeights(monitor=monitor, mode=mode)
    callbacks: list[keras.callbacks.Callback] = [best]
    if live_dir is not None:
        _, live_cb = dvclive_callback(live_dir, params=dataclasses.asdict(cfg))
        callbacks.append(live_cb)
    verbose = 1 if sys.stderr.isatty() else 2
    examples = train_data.num_examples
    start = time.perf_counter()
    history = model.fit(train_data, validation_data=valid_data, epochs=cfg.epochs,
                        callbacks=callbacks, verbose=verbose)
    seconds = time.perf_counter() - start
    epochs_run = len(history.history.get("loss", []))
    return FitResult(
        epochs_run=epochs_run,
        best_epoch=best.best_epoch + 1,
        best_value=best.best,
        monitor=monitor,
        train_seconds=round(seconds, 2),
        # training throughput: examples x epochs over wall time (validation passes included)
        examples_per_second=round(examples * epochs_run / seconds, 1) if seconds else 0.0,
        history={k: [float(v) for v in vals] for k, vals in history.history.items()},
    )
