"""Callbacks every family shares: best-on-valid weights, DVCLive wiring."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import sys
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


def curve_name(name: str, prefix: str = "") -> str:
    """The DVCLive metric name of a Keras log key, as DVCLive's Keras callback names it
    (``val_loss`` → ``eval/loss``, ``loss`` → ``train/loss``), under ``prefix``."""
    if name.startswith("val_"):
        name = f"eval/{name[4:]}"
    elif "/" not in name:
        name = f"train/{name}"
    return prefix + name


def _plottable(value: float) -> float | str:
    return str(value) if math.isnan(value) or math.isinf(value) else value


class LiveCurves(keras.callbacks.Callback):
    """Per-epoch metrics into a DVCLive ``Live`` (TSV under ``plots/metrics``, one row per
    epoch, step = epoch), so a resumed run or the members of an ensemble (``prefix="member1/"``)
    each draw one curve over epochs.

    Each curve file is rewritten whole, atomically, from the rows this callback holds, so a kill
    never leaves a partial row; ``resumed`` (called when training begins) gives the history a
    resumed run restored from its checkpoint, whose rows are written first: the curves cover
    the whole run even when the stage's outputs were deleted in between (as ``dvc repro``
    does)."""

    def __init__(self, live: Live, prefix: str = "", resumed=None):
        super().__init__()
        self.live, self.prefix, self.resumed = live, prefix, resumed
        self.rows: dict[str, list[tuple[int, float | str]]] = {}

    def on_train_begin(self, logs=None):
        history = self.resumed() if self.resumed is not None else {}
        if history:
            write_history(self.live, history, self.prefix, self.rows)

    def on_epoch_end(self, epoch, logs=None):
        self.live.step = epoch
        for name, value in (logs or {}).items():
            self._log(curve_name(name, self.prefix), epoch, float(value))
        self.live.make_summary()

    def _log(self, name: str, step: int, value: float) -> None:
        rows = [row for row in self.rows.get(name, []) if row[0] < step]
        rows.append((step, _plottable(value)))
        self.rows[name] = rows
        self.live.log_metric(name, value, plot=False)  # the summary; the curve is written here
        write_curve(self.live, name, rows)

    def on_train_end(self, logs=None):
        self.live.end()


def write_curve(live: Live, name: str, rows: list[tuple[int, float | str]]) -> None:
    """``plots/metrics/<name>.tsv`` of ``live`` as DVCLive writes it (``step`` and the value,
    tab-separated), written atomically."""
    from kexue.io import atomic_write

    path = Path(live.plots_dir) / "metrics" / f"{name}.tsv"
    column = os.path.basename(name)
    with atomic_write(path, fsync=False) as handle:
        writer = csv.DictWriter(handle, ["step", column], delimiter="\t",
                                lineterminator=os.linesep)
        writer.writeheader()
        for step, value in rows:
            writer.writerow({"step": step, column: value})


def write_history(live: Live, history: dict[str, list[float]], prefix: str = "",
                  rows: dict | None = None) -> None:
    """Write the curves of ``history`` (Keras log key → one value per epoch) into ``live`` and
    its summary (``rows``, if given, receives the rows written)."""
    rows = {} if rows is None else rows
    steps = 0
    for key, values in history.items():
        name = curve_name(key, prefix)
        rows[name] = [(step, _plottable(float(v))) for step, v in enumerate(values)]
        write_curve(live, name, rows[name])
        if values:
            live.log_metric(name, float(values[-1]), plot=False)
        steps = max(steps, len(values))
    if steps:
        live.step = steps - 1
    live.make_summary()


class _AtomicLive(Live):
    """DVCLive's ``Live`` with its files written through :func:`kexue.io.atomic_write` (a kill
    never leaves a truncated ``metrics.json`` or ``params.yaml``) and read leniently: a file
    damaged by an earlier, non-atomic writer is reported on one line and rebuilt (the summary
    from the curves) instead of failing the run."""

    def make_summary(self):
        from dvclive.plots import NumpyEncoder

        from kexue.io import atomic_write

        if self._step is not None:
            self.summary["step"] = self.step
        with atomic_write(self.metrics_file, fsync=False) as handle:
            json.dump(self.summary, handle, indent=4, cls=NumpyEncoder)
            handle.write("\n")

    def _dump_params(self):
        from dvclive.error import InvalidParameterTypeError
        from dvclive.serialize import get_yaml
        from ruamel.yaml.representer import RepresenterError

        from kexue.io import atomic_write

        try:
            with atomic_write(self.params_file, fsync=False) as handle:
                get_yaml().dump(self._params, handle)
        except RepresenterError as exc:
            raise InvalidParameterTypeError(exc.args[0]) from exc

    def _read_params(self):
        try:
            super()._read_params()
        except Exception as exc:  # noqa: BLE001 - any unreadable params file
            _warn_damaged(self.params_file, exc, "its params are logged again")
            self._params = {}

    def read_latest(self):
        try:
            return super().read_latest()
        except (ValueError, UnicodeDecodeError) as exc:
            if not getattr(self, "_rebuilt", False):
                _warn_damaged(self.metrics_file, exc, "rebuilt from the curves")
                self._rebuilt = True
            return summary_from_curves(Path(self.plots_dir) / "metrics")


def _warn_damaged(path, exc: Exception, action: str) -> None:
    print(f"kexue: warning: {path} cannot be read ({type(exc).__name__}: {exc}); {action}",
          file=sys.stderr, flush=True)


def summary_from_curves(metrics_dir: Path) -> dict:
    """A DVCLive summary (latest value of each curve, and ``step``) read back from the TSV
    files under ``metrics_dir``; rows that do not parse are skipped."""
    summary: dict = {}
    step = None
    for path in sorted(metrics_dir.rglob("*.tsv")):
        name = path.relative_to(metrics_dir).with_suffix("").as_posix()
        last = None
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                try:
                    last = (int(row["step"]), float(row[os.path.basename(name)]))
                except (KeyError, TypeError, ValueError):
                    continue
        if last is None:
            continue
        node = summary
        *parents, leaf = name.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = last[1]
        step = last[0] if step is None else max(step, last[0])
    if step is not None:
        summary["step"] = step
    return summary


def open_live(live_dir: str | Path, resume: bool = False) -> Live:
    """A DVCLive logger for ``live_dir``; ``dvc.yaml`` declares the plots once at the top level,
    so DVCLive must not write a dvc.yaml of its own. ``resume`` keeps existing curves."""
    return _AtomicLive(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None,
                       resume=resume)


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
