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


class SeedStateBackup(keras.callbacks.Callback):
    """Back up the random-number state of the model's layers (dropout's ``SeedGenerator``
    variables) at each epoch end and restore it when a run resumes.

    Why: ``model.save_weights`` — and so ``BackupAndRestore`` — does not store seed-generator
    state, so a resumed run would replay the dropout masks of the first epochs and drift from
    the uninterrupted run."""

    def __init__(self, state_dir: str | Path):
        super().__init__()
        self.path = Path(state_dir) / "seed_state.npz"

    def _variables(self):
        return [v for v in self.model.variables if "seed_generator_state" in v.path]

    def on_train_begin(self, logs=None):
        if not self.path.is_file():
            return
        variables = self._variables()
        with np.load(self.path) as saved:
            if len(saved.files) != len(variables):
                raise ValueError(f"{self.path}: {len(saved.files)} saved seed states, model has "
                                 f"{len(variables)}; delete the stale backup folder")
            for i, variable in enumerate(variables):
                variable.assign(saved[f"s{i}"])

    def on_epoch_end(self, epoch, logs=None):
        from kexue.io import atomic_write

        with atomic_write(self.path, mode="wb") as handle:
            np.savez(handle, **{f"s{i}": np.asarray(v.numpy()) for i, v in enumerate(self._variables())})


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
