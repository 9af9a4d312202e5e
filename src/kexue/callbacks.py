"""Callbacks every family shares: best-on-valid weights, DVCLive wiring."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import keras
import numpy as np
from dvclive import Live
from dvclive.keras import DVCLiveCallback


class BestWeights(keras.callbacks.Callback):
    """Keep the weights of the epoch with the best ``monitor`` value and restore them at the end.

    Unlike ``EarlyStopping(restore_best_weights=True)`` this never stops training and records
    which epoch won, for the stage's ``train_info.json``.

    With ``state_dir`` the best weights and value are also kept on disk (atomically), so a run
    resumed by ``BackupAndRestore`` still knows which earlier epoch was best.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "min",
                 state_dir: str | Path | None = None):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"BestWeights: mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1
        self.best_weights = None
        self.state_dir = Path(state_dir) if state_dir is not None else None

    def on_train_begin(self, logs=None):
        if self.state_dir is None or not (self.state_dir / "best.json").is_file():
            return
        state = json.loads((self.state_dir / "best.json").read_text())
        with np.load(self.state_dir / "best_weights.npz") as arrays:
            self.best_weights = [arrays[f"w{i}"] for i in range(len(arrays.files))]
        self.best, self.best_epoch = state["best"], state["best_epoch"]

    def _save_state(self):
        from kexue.io import atomic_write, write_json

        with atomic_write(self.state_dir / "best_weights.npz", mode="wb") as handle:
            np.savez(handle, **{f"w{i}": w for i, w in enumerate(self.best_weights)})
        write_json(self.state_dir / "best.json", {"best": self.best, "best_epoch": self.best_epoch})

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
            if self.state_dir is not None:
                self._save_state()

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def dvclive_callback(live_dir: str | Path, params: dict | None = None,
                     resume: bool = False) -> tuple[Live, DVCLiveCallback]:
    """A DVCLive logger writing TSV curves under ``live_dir``; ``dvc.yaml`` declares the plots
    once at the top level, so DVCLive must not write a dvc.yaml of its own. ``resume`` appends
    to the curves of an interrupted run instead of starting them anew."""
    live = Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None, resume=resume)
    if params:
        live.log_params(params)
    return live, DVCLiveCallback(live=live)


class EpochSync(keras.callbacks.Callback):
    """Tell a dataset which epoch starts, so a run resumed at epoch k draws the same batches as
    an uninterrupted one (see :class:`kexue.batches.SequenceBatches`)."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        if hasattr(self.dataset, "set_epoch") and getattr(self.dataset, "epoch", None) != epoch:
            self.dataset.set_epoch(epoch)


class KillAfterEpoch(keras.callbacks.Callback):
    """Fault injection for the resume tests: SIGKILL this process at the end of an epoch, after
    the callbacks before it (the backup) have run. Enabled by ``KEXUE_KILL_AFTER_EPOCH=<n>``."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)
