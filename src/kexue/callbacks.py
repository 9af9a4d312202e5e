"""Callbacks every family shares: best-on-valid weights, DVCLive wiring."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import keras
from dvclive import Live


class BestWeights(keras.callbacks.Callback):
    """Keep the weights of the epoch with the best ``monitor`` value and restore them at the end.

    Unlike ``EarlyStopping(restore_best_weights=True)`` this never stops training and records
    which epoch won, for the stage's ``train_info.json``. A resumed run gets its record back
    from the checkpoint (:mod:`kexue.checkpoint`), which sets ``best``, ``best_epoch`` and
    ``best_weights``.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "min"):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"BestWeights: mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1
        self.best_weights = None

    def _better(self, value: float) -> bool:
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(
                f"BestWeights: '{self.monitor}' is not among the logged metrics {sorted(logs)}; "
                f"pass validation data or pick another monitor"
            )
        value = float(logs[self.monitor])
        if self._better(value):
            self.best, self.best_epoch = value, epoch
            self.best_weights = [w.copy() for w in self.model.get_weights()]

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class LiveCurves(keras.callbacks.Callback):
    """Per-epoch metrics into a DVCLive ``Live`` (TSV under ``plots/metrics``), with the step set
    to the epoch, so a resumed run or the members of an ensemble (``prefix="member1/"``) each
    draw one curve over epochs. Metric names follow DVCLive's Keras callback (``val_loss`` →
    ``eval/loss``)."""

    def __init__(self, live: Live, prefix: str = ""):
        super().__init__()
        self.live, self.prefix = live, prefix

    def on_epoch_end(self, epoch, logs=None):
        self.live.step = epoch
        for name, value in (logs or {}).items():
            if name.startswith("val_"):
                name = f"eval/{name[4:]}"
            elif "/" not in name:
                name = f"train/{name}"
            self.live.log_metric(self.prefix + name, float(value))
        self.live.make_summary()

    def on_train_end(self, logs=None):
        self.live.end()


def open_live(live_dir: str | Path, resume: bool = False) -> Live:
    """A DVCLive logger for ``live_dir``; ``dvc.yaml`` declares the plots once at the top level,
    so DVCLive must not write a dvc.yaml of its own. ``resume`` keeps existing curves."""
    return Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None, resume=resume)


class EpochSync(keras.callbacks.Callback):
    """Tell a dataset which epoch starts, so a run resumed at epoch k draws the same batches as
    an uninterrupted one (see :class:`kexue.batches.SequenceBatches`).

    Why: Keras peeks at a PyDataset's first batches and calls its ``on_epoch_end`` once before
    training starts, so the dataset's own epoch counter runs one ahead of ``fit``'s."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        if hasattr(self.dataset, "set_epoch") and getattr(self.dataset, "epoch", None) != epoch:
            self.dataset.set_epoch(epoch)


class KillAfterEpoch(keras.callbacks.Callback):
    """Fault injection for the resume tests: SIGKILL this process when the n-th epoch it trains
    (counted over every ``fit`` in the process, e.g. across ensemble members) has ended and the
    callbacks before this one (the backup) have run. Enabled by ``KEXUE_KILL_AFTER_EPOCH=<n>``."""

    epochs_ended = 0  # per process

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        KillAfterEpoch.epochs_ended += 1
        if KillAfterEpoch.epochs_ended == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)
