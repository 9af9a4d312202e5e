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
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import keras

from kexue import workers
from kexue.callbacks import (
    BestWeights,
    EpochSync,
    KillAfterEpoch,
    LiveCurves,
    open_live,
    write_history,
)
from kexue.checkpoint import CheckpointFolder, TrainingCheckpoint
from kexue.nonfinite import StopOnNonFiniteLoss

# importing kexue.optimizers also registers its classes, so saved models that were compiled with
# them load (safe_mode=True) wherever this module is imported
from kexue.optimizers import Lookahead, PiecewiseLinear, apply_lr_multipliers


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
    distribute: Literal["none", "mirrored", "multi_worker"]  # tf.distribute strategy
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


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if not isinstance(value, dict) else str(value)
    return out


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


def split_cpu(n: int) -> None:
    """Expose the CPU as ``n`` logical devices (call before TensorFlow touches a device), so
    ``MirroredStrategy`` can be exercised on a machine without GPUs."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])


def make_strategy(name: str):
    """The ``tf.distribute`` strategy for ``fit.distribute``.

    none         — the default (single-device) strategy;
    mirrored     — synchronous data parallelism over this machine's GPUs, or over its logical
                   CPUs when it has none (see :func:`split_cpu`); the batch size is global;
    multi_worker — ``MultiWorkerMirroredStrategy`` across machines, configured by the
                   ``TF_CONFIG`` environment variable of each worker (see README).
    """
    import tensorflow as tf

    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "fit.distribute = multi_worker needs the TF_CONFIG environment variable on every "
                "worker, e.g. TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:12345\", "
                "\"host2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}' "
                "(see README, 'Multi-device training')"
            )
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        workers.joined()
        _patch_keras_for_multi_worker()
        return strategy
    raise ValueError(f"fit.distribute = {name!r}: expected none | mirrored | multi_worker")


def _in_multi_worker_mode(strategy) -> bool:
    import tensorflow as tf

    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def _patch_keras_for_multi_worker() -> None:
    """Make Keras 3's ``model.fit`` run under ``MultiWorkerMirroredStrategy`` (idempotent).

    Before training, Keras's TensorFlow trainer builds the model symbolically from the first
    batch, which it first collapses across replicas with ``strategy.reduce("MEAN", batch)``.
    With more than one worker that reduce is a cross-worker collective that cannot take the
    eager per-replica input batch (``Attempt to convert a value (PerReplica...)``; an open
    Keras issue). Only the batch's shapes and dtypes matter there, so under a
    multi-worker strategy this worker's first replica's batch is used instead; every other
    path (and every other strategy) is left as Keras has it.

    Then each step's logs (the replicas' metric results, scalars) are averaged across workers
    with ``strategy.reduce("MEAN", value, axis=0)``, which fails on a scalar (``Invalid
    reduction dimension 0 for input with 0 dimensions``) and, on a vector, would also average
    over its entries. ``axis=None`` averages over the replicas only, which is what Keras does
    for a single-worker ``MirroredStrategy`` (the mean of the replicas' local results)."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    cls = trainer.TensorFlowTrainer
    if getattr(cls._maybe_symbolic_build, "_kexue_multi_worker", False):
        return
    original = cls._maybe_symbolic_build
    original_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and _in_multi_worker_mode(strategy):
            return keras.tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original_reduce(values, strategy, reduction)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is not None and strategy is not None and _in_multi_worker_mode(strategy):
            for _, _, it in iterator:
                data_batch = keras.tree.map_structure(
                    lambda x: (strategy.experimental_local_results(x)[0]
                               if isinstance(x, tf.distribute.DistributedValues) else x),
                    next(it))
                break
            iterator = None
        return original(self, iterator=iterator, data_batch=data_batch)

    _maybe_symbolic_build._kexue_multi_worker = True
    cls._maybe_symbolic_build = _maybe_symbolic_build
    trainer.reduce_per_replica = reduce_per_replica


def build_optimizer(cfg: OptimizerConfig, model: keras.Model | None = None,
                    momentum: float = 0.0) -> keras.optimizers.Optimizer:
    """The optimizer ``cfg`` describes; ``model`` (built) is needed for ``lr_multipliers``.
    ``momentum`` > 0 makes ``sgd`` Nesterov SGD with that momentum (a family param: the image
    family's; the other optimizers ignore it)."""
    lr = PiecewiseLinear(cfg.learning_rate, cfg.schedule) if cfg.schedule else cfg.learning_rate
    kwargs: dict = {"learning_rate": lr}
    if cfg.name == "sgd" and momentum > 0:
        kwargs.update(momentum=momentum, nesterov=True)
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
    live_prefix: str = "",
    keep_curves: bool = False,
    scorers: list[keras.callbacks.Callback] | None = None,
    keep_checkpoint: bool = False,
) -> FitResult:
    """Train ``model`` (already compiled) and leave it holding the best-on-valid weights.

    With ``resume_dir`` every finished epoch is checkpointed there as one unit (weights,
    optimizer state, epoch, random state, the best-so-far record and weights, the history, the
    seconds so far; :mod:`kexue.checkpoint`): a run killed at any instant continues from its
    last complete epoch when called again, ends with the same weights as an uninterrupted run,
    and returns a result (epochs, seconds, history, best epoch) for the whole run. The folder is
    removed when training completes, unless ``keep_checkpoint``: then the caller removes it once
    it has saved what it keeps of the fit (e.g. a finished ensemble member), and a run killed
    before that restores the finished fit instead of training it again. Callers key the folder
    by everything that defines the run (params, data), so a changed run never resumes a stale
    one.

    Curves go to DVCLive in ``live_dir`` under ``live_prefix`` (``keep_curves`` keeps what is
    there already, e.g. the curves of earlier ensemble members); a resumed run rewrites its
    earlier epochs' curves from the checkpoint.

    ``scorers`` are callbacks that add validation metrics to the epoch's logs (e.g. a decoded
    F1); they run before the best-epoch pick, so ``monitor`` may name what they log.

    Under ``fit.distribute: multi_worker`` only the chief writes the curves and the checkpoint
    units (:mod:`kexue.workers`); the other workers write theirs to temporary folders that are
    removed.
    """
    with workers.chief_path(live_dir) as live_dir:
        return _fit(model, train_data, valid_data, cfg, monitor, mode, live_dir, resume_dir,
                    live_prefix, keep_curves, scorers, keep_checkpoint)


def _fit(model, train_data, valid_data, cfg, monitor, mode, live_dir, resume_dir, live_prefix,
         keep_curves, scorers, keep_checkpoint) -> FitResult:
    best = BestWeights(monitor=monitor, mode=mode)
    # the non-finite guard first: no later callback (checkpoint, best record, curves) sees a bad epoch
    callbacks: list[keras.callbacks.Callback] = [StopOnNonFiniteLoss(), EpochSync(train_data),
                                                 *(scorers or []), best]
    checkpoint = None
    if resume_dir is not None:
        # after the scorers and the best-epoch pick: a unit holds the epoch's complete record
        checkpoint = TrainingCheckpoint(resume_dir, best)
        callbacks.append(checkpoint)
    if live_dir is not None:
        resuming = checkpoint is not None and bool(checkpoint.folder.units())
        live = open_live(live_dir, resume=resuming or keep_curves)
        live.log_params({live_prefix + k: v for k, v in _flat(dataclasses.asdict(cfg)).items()})
        callbacks.append(LiveCurves(live, prefix=live_prefix, resumed=(
            (lambda: checkpoint.history) if checkpoint is not None else None)))
    if os.environ.get("KEXUE_KILL_AFTER_EPOCH"):
        callbacks.append(KillAfterEpoch(int(os.environ["KEXUE_KILL_AFTER_EPOCH"])))
    verbose = 1 if sys.stderr.isatty() else 2
    examples = train_data.num_examples
    start = time.perf_counter()
    if checkpoint is not None:
        checkpoint.started = start  # its units count the seconds from here
    # shuffle=False: the dataset orders its own batches per (seed, epoch); Keras's shuffling of
    # a PyDataset's batch indices draws from the global NumPy state, which a resumed process
    # does not share with the interrupted one
    try:
        history = model.fit(train_data, validation_data=valid_data, epochs=cfg.epochs,
                            callbacks=callbacks, verbose=verbose, shuffle=False)
    finally:
        if checkpoint is not None:
            checkpoint.close()
    seconds = time.perf_counter() - start
    curves = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    if checkpoint is not None:
        before = checkpoint.progress
        seconds += before.train_seconds
        curves = {k: [float(v) for v in before.history.get(k, [])] + curves.get(k, [])
                  for k in {**before.history, **curves}}
        if not keep_checkpoint:
            CheckpointFolder(resume_dir).discard()
    epochs_run = len(curves.get("loss", []))
    return FitResult(
        epochs_run=epochs_run,
        best_epoch=best.best_epoch + 1,
        best_value=best.best,
        monitor=monitor,
        train_seconds=round(seconds, 2),
        # training throughput: examples x epochs over wall time (validation passes included)
        examples_per_second=round(examples * epochs_run / seconds, 1) if seconds else 0.0,
        history=curves,
    )


def write_fit_curves(live_dir: str | Path, cfg: FitConfig, history: dict[str, list[float]],
                     live_prefix: str = "", keep_curves: bool = False) -> None:
    """The DVCLive output ``fit`` writes (params and curves), from the history of a fit that
    finished before an interruption: e.g. an ensemble member loaded instead of retrained, so
    that the stage's curves cover every member even when ``dvc repro`` deleted them. Only the
    chief of a multi-worker run writes them."""
    with workers.chief_path(live_dir) as live_dir:
        live = open_live(live_dir, resume=keep_curves)
        live.log_params({live_prefix + k: v for k, v in _flat(dataclasses.asdict(cfg)).items()})
        write_history(live, history, live_prefix)
        live.end()
