"""The one fit entry point every family uses.

``fit`` seeds everything, builds the optimizer from params, trains with progress output, logs
curves through DVCLive, and returns the model holding its best-on-valid weights together with a
record of what happened (epochs, best epoch, seconds, throughput).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import keras

from kexue.callbacks import BestWeights, EpochSync, KillAfterEpoch, dvclive_callback


@dataclass(frozen=True)
class OptimizerConfig:
    """Which Keras optimizer and how it is wrapped. Keras's own features are used where they
    exist (clipping, weight decay, EMA, gradient accumulation); kexue adds learning-rate
    schedules, per-variable multipliers and Lookahead (:mod:`kexue.optimizers`)."""

    name: Literal["adam", "adamw", "sgd", "rmsprop"]
    learning_rate: float = field(metadata={"min": 0.0})
    schedule: dict[int, float]  # {step: factor} piecewise-linear LR; {} = constant
    weight_decay: float = field(metadata={"min": 0.0})  # decoupled decay; 0 = off
    global_clipnorm: float = field(metadata={"min": 0.0})  # 0 = no clipping
    gradient_accumulation_steps: int = field(metadata={"min": 1})  # 1 = off ("soft batch")
    use_ema: bool  # keep an exponential moving average of the weights, used at the end
    ema_momentum: float = field(metadata={"min": 0.0, "max": 1.0})
    lr_multipliers: dict[str, float]  # {layer-name or variable-path pattern: multiplier}
    lookahead_k: int = field(metadata={"min": 0})  # 0 = off; else sync slow weights every k
    lookahead_alpha: float = field(metadata={"min": 0.0, "max": 1.0})


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


def run_key(config: dict, files: list[Path]) -> str:
    """A short fingerprint of a training run: its params and the bytes of its data files."""
    from kexue.io import sha256_file

    payload = json.dumps(config, sort_keys=True) + "".join(sha256_file(f) for f in files)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def seed_everything(seed: int, deterministic: bool) -> None:
    """Python, NumPy and backend seeds; optionally TensorFlow's deterministic op kernels."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    keras.utils.set_random_seed(seed)
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def build_optimizer(cfg: OptimizerConfig, model: keras.Model | None = None) -> keras.optimizers.Optimizer:
    """The optimizer ``cfg`` describes; ``model`` (built) is needed for ``lr_multipliers``."""
    from kexue.optimizers import Lookahead, PiecewiseLinear, apply_lr_multipliers

    lr = PiecewiseLinear(cfg.learning_rate, cfg.schedule) if cfg.schedule else cfg.learning_rate
    kwargs: dict = {"learning_rate": lr}
    if cfg.weight_decay > 0:
        kwargs["weight_decay"] = cfg.weight_decay
    if cfg.global_clipnorm > 0:
        kwargs["global_clipnorm"] = cfg.global_clipnorm
    if cfg.gradient_accumulation_steps > 1:
        kwargs["gradient_accumulation_steps"] = cfg.gradient_accumulation_steps
    if cfg.use_ema:
        kwargs.update(use_ema=True, ema_momentum=cfg.ema_momentum)
    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    optimizer = classes[cfg.name](**kwargs)
    if cfg.lr_multipliers:
        if model is None:
            raise ValueError("build_optimizer: lr_multipliers need the (built) model")
        optimizer = apply_lr_multipliers(optimizer, model, cfg.lr_multipliers)
    if cfg.lookahead_k:
        optimizer = Lookahead(optimizer, k=cfg.lookahead_k, alpha=cfg.lookahead_alpha)
    return optimizer


def fit(
    model: keras.Model,
    train_data: keras.utils.PyDataset,
    valid_data: keras.utils.PyDataset,
    cfg: FitConfig,
    monitor: str,
    mode: Literal["min", "max"],
    live_dir: str | Path | None = None,
    resume_dir: str | Path | None = None,
) -> FitResult:
    """Train ``model`` (already compiled) and leave it holding the best-on-valid weights.

    With ``resume_dir`` every finished epoch is backed up there (Keras ``BackupAndRestore``:
    weights, optimizer state, epoch; plus the best-so-far weights): a run killed mid-way
    continues from its last finished epoch when called again and ends with the same weights as
    an uninterrupted run. The folder is removed when training completes. Callers key it by
    everything that defines the run (params, data), so a changed run never resumes a stale one.
    """
    resume_dir = Path(resume_dir) if resume_dir is not None else None
    resuming = resume_dir is not None and (resume_dir / "backup" / "training_metadata.json").is_file()
    best = BestWeights(monitor=monitor, mode=mode,
                       state_dir=resume_dir / "best" if resume_dir is not None else None)
    callbacks: list[keras.callbacks.Callback] = [EpochSync(train_data)]
    if resume_dir is not None:
        callbacks.append(keras.callbacks.BackupAndRestore(str(resume_dir / "backup"),
                                                          save_freq="epoch",
                                                          delete_checkpoint=True))
    callbacks.append(best)
    if live_dir is not None:
        _, live_cb = dvclive_callback(live_dir, params=dataclasses.asdict(cfg), resume=resuming)
        callbacks.append(live_cb)
    if os.environ.get("KEXUE_KILL_AFTER_EPOCH"):
        callbacks.append(KillAfterEpoch(int(os.environ["KEXUE_KILL_AFTER_EPOCH"])))
    verbose = 1 if sys.stderr.isatty() else 2
    examples = train_data.num_examples
    start = time.perf_counter()
    history = model.fit(train_data, validation_data=valid_data, epochs=cfg.epochs,
                        callbacks=callbacks, verbose=verbose)
    seconds = time.perf_counter() - start
    epochs_run = len(history.history.get("loss", []))
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)
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
