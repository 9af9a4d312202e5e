"""Callbacks every family shares: best-on-valid weights, DVCLive wiring."""

from __future__ import annotations

import math
from pathlib import Path

import keras
from dvclive import Live
from dvclive.keras import DVCLiveCallback


class BestWeights(keras.callbacks.Callback):
    """Keep the weights of the epoch with the best ``monitor`` value and restore them at the end.

    Unlike ``EarlyStopping(restore_best_weights=True)`` this never stops training and records
    which epoch won, for the stage's ``train_info.json``.
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


def dvclive_callback(live_dir: str | Path, params: dict | None = None) -> tuple[Live, DVCLiveCallback]:
    """A DVCLive logger writing TSV curves under ``live_dir``; ``dvc.yaml`` declares the plots
    once at the top level, so DVCLive must not write a dvc.yaml of its own."""
    live = Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None)
    if params:
        live.log_params(params)
    return live, DVCLiveCallback(live=live)
