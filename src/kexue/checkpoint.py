"""Crash-consistent training state: everything a resumed ``fit`` needs, written per epoch as one
unit that is either wholly there or not there at all.

A unit is a folder ``epoch-NNNN`` (NNNN = epochs finished) in the run's checkpoint folder:

    model.weights.h5  the model's weights and its optimizer's variables (Keras ``save_weights``)
    best.weights.h5   the same file as it was after the best epoch so far (absent before one)
    rng.npz           the random state Keras does not save: the layers' seed-generator variables
                      (dropout masks) and NumPy's global state
    state.json        epochs finished, the per-epoch history, training seconds so far, the
                      best-so-far record, Python's global random state
    manifest.json     every other file's name and SHA-256; written last

It is written as ``epoch-NNNN.tmp`` (each file fsynced, the manifest last), renamed into place,
and then the one-line pointer file ``latest`` is replaced atomically; only then are older units
removed. A kill at any instant therefore leaves the previous complete unit, or the new one, or
both. On resume the newest unit whose manifest verifies is restored (normally the one ``latest``
names; a newer one when the kill fell between the rename and the pointer update). A unit that
fails verification or loading is renamed ``epoch-NNNN.damaged`` with a one-line warning on
stderr, and the next older one is tried; with none left, training starts over. ``*.tmp`` folders
are unfinished writes by definition and are removed.

Finished members of an ensemble are kept beside the members' unit folders by
:func:`save_member` / :func:`load_member` (the result record first, the model file last as the
mark of completion).

Fault injection (tests): every step of these sequences calls :func:`fault_point` with a name
from :data:`FAULT_POINTS` / :data:`MEMBER_POINTS`. With ``KEXUE_CHECKPOINT_FAULT=<point>
[,epoch=<n>][,where=<folder>]`` set, the process kills itself (SIGKILL) at the first matching
point; at a ``during:<file>`` point the file is first cut to half its length, which is what a
kill in the middle of writing it leaves.

Multi-worker runs (:mod:`kexue.workers`): every worker restores from the run's folder, but only
the chief changes it (writes units and members, sets damaged ones aside, discards it); the
other workers write their units to a temporary folder that is removed when training ends, and
skip a damaged unit without renaming it.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import sys
import time
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from kexue import workers
from kexue.io import atomic_path, read_json, sha256_file, write_json

WEIGHTS, BEST, RNG, STATE, MANIFEST, LATEST = (
    "model.weights.h5", "best.weights.h5", "rng.npz", "state.json", "manifest.json", "latest")
FORMAT = 1
UNIT = re.compile(r"epoch-(\d{4,})")

# the checkpoint sequence of one epoch, in order; "after:<x>" is also "between <x> and the next"
FAULT_POINTS = (
    "before:weights", "during:weights", "after:weights",
    "during:best", "after:best",
    "during:rng", "after:rng",
    "during:state", "after:state",
    "during:manifest", "after:manifest",
    "after:rename",
    "during:latest", "after:latest",
    "after:prune",
)
# after a fit (``after:discard``: its unit folder is gone) and around a finished member's files
MEMBER_POINTS = ("after:discard", "after:member-result", "during:member-model",
                 "after:member-model")
FAULT_ENV = "KEXUE_CHECKPOINT_FAULT"


def fault_point(point: str, where: str, epoch: int | None = None, path: Path | None = None) -> None:
    """Test hook called at each named step (see the module docstring); a no-op unless
    ``KEXUE_CHECKPOINT_FAULT`` names this point."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    name, *options = spec.split(",")
    wanted = dict(option.split("=", 1) for option in options)
    if name != point or ("epoch" in wanted and int(wanted["epoch"]) != epoch) or (
            "where" in wanted and wanted["where"] != where):
        return
    if point.startswith("during:") and path is not None:
        cut_in_half(path)
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def cut_in_half(path: Path) -> None:
    """Truncate ``path`` to half its length (a write interrupted midway)."""
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _warn(message: str) -> None:
    print(f"kexue: warning: {message}", file=sys.stderr, flush=True)


@dataclass
class Progress:
    """What a restored unit says about the run so far (all zero/empty for a fresh start)."""

    epochs: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    train_seconds: float = 0.0
    unit: Path | None = None


# seconds of training before this process, per model being fitted (for callbacks that log a
# wall clock, e.g. elapsed_seconds, so a resumed run's curve continues instead of restarting)
_RESUMED_SECONDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def resumed_seconds(model: keras.Model) -> float:
    """Training seconds the run of ``model`` had behind it when it resumed (0 if it did not)."""
    return _RESUMED_SECONDS.get(model, 0.0)


def _seed_variables(model: keras.Model) -> list:
    return [v for v in model.variables if "seed_generator_state" in v.path]


class CheckpointFolder:
    """The unit folders of one run (one ``fit``): write, verify, restore, set aside, discard."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.where = self.path.name
        self.skipped: set[Path] = set()  # damaged units a non-chief worker left in place

    # -- reading ---------------------------------------------------------------------------

    def units(self) -> list[Path]:
        """Unit folders that were renamed into place, newest first (not yet verified)."""
        if not self.path.is_dir():
            return []
        found = [p for p in self.path.iterdir()
                 if p.is_dir() and UNIT.fullmatch(p.name) and p not in self.skipped]
        return sorted(found, key=lambda p: int(UNIT.fullmatch(p.name).group(1)), reverse=True)

    def verify(self, unit: Path) -> str | None:
        """Why ``unit`` cannot be trusted, or None when its manifest and every hash check out."""
        try:
            manifest = read_json(unit / MANIFEST)
        except FileNotFoundError:
            return f"no {MANIFEST}"
        except (ValueError, UnicodeDecodeError) as exc:
            return f"{MANIFEST} is not valid JSON ({exc})"
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            return f"{MANIFEST} is not a format-{FORMAT} manifest"
        if manifest.get("epoch") != int(UNIT.fullmatch(unit.name).group(1)):
            return f"{MANIFEST} names epoch {manifest.get('epoch')!r}"
        files = manifest.get("files")
        if not isinstance(files, dict) or not {WEIGHTS, RNG, STATE} <= set(files):
            return f"{MANIFEST} does not list {WEIGHTS}, {RNG} and {STATE}"
        for name, digest in files.items():
            if not (unit / name).is_file():
                return f"{name} is missing"
            if sha256_file(unit / name) != digest:
                return f"{name} does not match its SHA-256 in {MANIFEST}"
        return None

    def set_aside(self, unit: Path, reason: str) -> Path:
        """Rename a damaged unit out of the way (never delete it) and say so on one line. A
        non-chief worker of a multi-worker run only skips it (the chief renames it)."""
        if not workers.is_chief():
            self.skipped.add(unit)
            _warn(f"training checkpoint {unit} is damaged ({reason}); skipped")
            return unit
        target = unit.with_name(f"{unit.name}.damaged")
        n = 1
        while target.exists():
            target = unit.with_name(f"{unit.name}.damaged-{n}")
            n += 1
        os.replace(unit, target)
        _warn(f"training checkpoint {unit} is damaged ({reason}); set aside as {target.name}")
        return target

    def newest(self) -> Path | None:
        """The newest unit that verifies; damaged newer ones are set aside on the way."""
        for unit in self.units():
            problem = self.verify(unit)
            if problem is None:
                return unit
            self.set_aside(unit, problem)
        return None

    def restore(self, unit: Path, model: keras.Model, best) -> Progress:
        """Load ``unit`` (verified) into ``model``, its optimizer, the global random state and
        ``best`` (a :class:`kexue.callbacks.BestWeights`). If loading fails, every variable is
        put back as it was and the error is raised."""
        state = read_json(unit / STATE)
        seeds = _seed_variables(model)
        with np.load(unit / RNG) as saved:
            seed_states = [saved[f"seed{i}"] for i in range(int(saved["seed_count"]))]
            numpy_state = ("MT19937", saved["numpy_keys"], int(saved["numpy_pos"]),
                           int(saved["numpy_has_gauss"]), float(saved["numpy_cached_gaussian"]))
        if [v.path for v in seeds] != state["seed_paths"]:
            raise ValueError(f"its seed generators {state['seed_paths']} are not the model's "
                             f"{[v.path for v in seeds]}")
        if (unit / BEST).is_file() != (state["best_epoch"] >= 0):
            raise ValueError(f"{BEST} and best_epoch {state['best_epoch']} disagree")
        optimizer = model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)  # its variables must exist to be loaded
        variables = list(model.variables) + (list(optimizer.variables) if optimizer else [])
        before = [v.numpy() for v in variables]
        try:
            with warnings.catch_warnings():
                # Keras only warns when the optimizer's variables do not match: here it is an error
                warnings.filterwarnings("error", message="Skipping variable loading")
                best_weights = None
                if (unit / BEST).is_file():
                    model.load_weights(str(unit / BEST))
                    best_weights = [w.copy() for w in model.get_weights()]
                model.load_weights(str(unit / WEIGHTS))
        except BaseException:
            for variable, value in zip(variables, before, strict=True):
                variable.assign(value)
            raise
        for variable, value in zip(seeds, seed_states, strict=True):
            variable.assign(value)
        np.random.set_state(numpy_state)
        version, internal, gauss = state["python_random"]
        random.setstate((version, tuple(internal), gauss))
        best.best, best.best_epoch, best.best_weights = (
            state["best"], state["best_epoch"], best_weights)
        return Progress(epochs=state["epochs"], history=state["history"],
                        train_seconds=state["train_seconds"], unit=unit)

    # -- writing ---------------------------------------------------------------------------

    def _file_done(self, path: Path, name: str, epoch: int) -> None:
        _fsync(path)
        fault_point(f"during:{name}", self.where, epoch, path)
        fault_point(f"after:{name}", self.where, epoch)

    def save(self, epochs: int, model: keras.Model, best, history: dict[str, list[float]],
             train_seconds: float, previous: Path | None) -> Path:
        """Write the unit for ``epochs`` finished epochs and make it the latest; ``previous``
        is the unit written (or restored) before it, whose best weights carry over."""
        name = f"epoch-{epochs:04d}"
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f"{name}.tmp"
        if tmp.exists():  # an unfinished write of this epoch by an interrupted process
            shutil.rmtree(tmp)
        tmp.mkdir()
        fault_point("before:weights", self.where, epochs)
        model.save_weights(str(tmp / WEIGHTS))
        self._file_done(tmp / WEIGHTS, "weights", epochs)
        if best.best_epoch == epochs - 1:  # this epoch is the best so far
            shutil.copyfile(tmp / WEIGHTS, tmp / BEST)
        elif best.best_epoch >= 0:
            shutil.copyfile(previous / BEST, tmp / BEST)
        if (tmp / BEST).is_file():
            self._file_done(tmp / BEST, "best", epochs)
        seeds = _seed_variables(model)
        _, keys, pos, has_gauss, cached = np.random.get_state()
        with open(tmp / RNG, "wb") as handle:
            np.savez(handle, seed_count=len(seeds), numpy_keys=keys, numpy_pos=pos,
                     numpy_has_gauss=has_gauss, numpy_cached_gaussian=cached,
                     **{f"seed{i}": np.asarray(v.numpy()) for i, v in enumerate(seeds)})
        self._file_done(tmp / RNG, "rng", epochs)
        version, internal, gauss = random.getstate()
        state = {"epochs": epochs, "history": history, "train_seconds": train_seconds,
                 "monitor": best.monitor, "mode": best.mode, "best": best.best,
                 "best_epoch": best.best_epoch, "seed_paths": [v.path for v in seeds],
                 "python_random": [version, list(internal), gauss]}
        (tmp / STATE).write_text(json.dumps(state), encoding="utf-8")
        self._file_done(tmp / STATE, "state", epochs)
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
        manifest = {"format": FORMAT, "epoch": epochs, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        self._file_done(tmp / MANIFEST, "manifest", epochs)
        _fsync(tmp)
        unit = self.path / name
        if unit.exists():  # a unit of this epoch from a run that resumed from an earlier one
            self._remove(unit)
        os.replace(tmp, unit)
        _fsync(self.path)
        fault_point("after:rename", self.where, epochs)
        pointer = self.path / f".{LATEST}.tmp"
        with open(pointer, "w", encoding="utf-8") as handle:
            handle.write(name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        fault_point("during:latest", self.where, epochs, pointer)
        os.replace(pointer, self.path / LATEST)
        _fsync(self.path)
        fault_point("after:latest", self.where, epochs)
        for entry in self.path.iterdir():  # older units, unfinished writes, trash
            if entry.is_dir() and entry != unit and (
                    UNIT.fullmatch(entry.name) or entry.name.endswith(".tmp")
                    or entry.name.startswith(".trash-")):
                self._remove(entry)
        fault_point("after:prune", self.where, epochs)
        return unit

    def _remove(self, path: Path) -> None:
        """Delete a folder so that a kill midway never leaves a half-deleted unit in place:
        rename it to a ``.trash-`` name first."""
        if not path.name.startswith(".trash-"):
            trash = path.with_name(f".trash-{path.name}-{os.getpid()}-{time.monotonic_ns()}")
            os.replace(path, trash)
            path = trash
        shutil.rmtree(path, ignore_errors=True)

    def discard(self) -> None:
        """Remove the whole folder (training completed): renamed first, so a kill midway never
        leaves a half-deleted unit where a rerun would look for one. Only the chief of a
        multi-worker run discards the folder."""
        if not workers.is_chief():
            return
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f".trash-{self.path.name}-{os.getpid()}"))
        for trash in self.path.parent.glob(f".trash-{self.path.name}-*"):  # also earlier kills'
            shutil.rmtree(trash, ignore_errors=True)
        fault_point("after:discard", self.where)


class TrainingCheckpoint(keras.callbacks.Callback):
    """Restore the newest complete unit when training begins; write a unit at each epoch end.

    Place it after the callbacks that add to an epoch's logs and after ``best`` (the
    :class:`kexue.callbacks.BestWeights` of the run), so a unit holds the epoch's complete logs
    and best-so-far record. ``started`` is the ``time.perf_counter()`` at which this process
    began the fit. After training, ``progress`` is what was restored and ``history`` the whole
    run's per-epoch logs."""

    def __init__(self, folder: str | os.PathLike, best, started: float = 0.0):
        super().__init__()
        self.folder = CheckpointFolder(folder)
        self.best, self.started = best, started
        self.writer: CheckpointFolder | None = None  # where this process writes its units
        self.progress = Progress()
        self.history: dict[str, list[float]] = {}

    def on_train_begin(self, logs=None):
        while (unit := self.folder.newest()) is not None:
            try:
                self.progress = self.folder.restore(unit, self.model, self.best)
            except Exception as exc:  # noqa: BLE001 - any failure to load sets the unit aside
                self.folder.set_aside(unit, f"cannot be restored: {type(exc).__name__}: {exc}")
                continue
            self.model._initial_epoch = self.progress.epochs  # as keras BackupAndRestore does
            print(f"kexue: resuming after epoch {self.progress.epochs} from {unit}",
                  file=sys.stderr, flush=True)
            break
        self.history = {k: list(v) for k, v in self.progress.history.items()}
        _RESUMED_SECONDS[self.model] = self.progress.train_seconds

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        seconds = self.progress.train_seconds + time.perf_counter() - self.started
        if self.writer is None:  # the run's folder, or a non-chief worker's temporary one
            self.writer = (self.folder if workers.is_chief()
                           else CheckpointFolder(workers.scratch() / self.folder.path.name))
        previous = None
        if epoch:  # written by this process, or the unit it resumed from
            previous = self.writer.path / f"epoch-{epoch:04d}"
            if not previous.is_dir():
                previous = self.folder.path / previous.name
        self.writer.save(epoch + 1, self.model, self.best, self.history, round(seconds, 3),
                         previous)

    def on_train_end(self, logs=None):
        self.close()

    def close(self) -> None:
        """Remove a non-chief worker's temporary folder (``fit`` also calls it on errors)."""
        if self.writer is not None and self.writer is not self.folder:
            shutil.rmtree(self.writer.path.parent, ignore_errors=True)
            self.writer = None


def load_member(path: str | os.PathLike, **load_kwargs) -> tuple[keras.Model, dict] | None:
    """A finished ensemble member saved by :func:`save_member`: ``(model, result)``, or None
    when it did not finish (its model file, written last, is missing). A member whose files
    cannot be read is set aside with a warning and counts as not finished."""
    path = Path(path)
    record = path.with_suffix(".json")
    if not (path.is_file() and record.is_file()):
        return None
    try:
        return keras.saving.load_model(path, **load_kwargs), read_json(record)
    except Exception as exc:  # noqa: BLE001
        if not workers.is_chief():  # the chief sets it aside
            _warn(f"finished member {path} cannot be loaded ({type(exc).__name__}: {exc}); "
                  "trained again")
            return None
        for file in (path, record):
            os.replace(file, file.with_name(file.name + ".damaged"))
        _warn(f"finished member {path} cannot be loaded ({type(exc).__name__}: {exc}); set "
              f"aside as {path.name}.damaged and trained again")
        return None


def save_member(path: str | os.PathLike, model: keras.Model, result: dict) -> None:
    """Record a finished ensemble member: its result, then its model (each file atomically;
    the model file is the mark that the member is complete). A non-chief worker of a
    multi-worker run writes them to a temporary folder that is then removed."""
    path = Path(path)
    if not workers.is_chief():
        with workers.chief_path(path.parent) as tmp:
            _save_member(tmp / path.name, model, result)
        return
    _save_member(path, model, result)


def _save_member(path: Path, model: keras.Model, result: dict) -> None:
    write_json(path.with_suffix(".json"), result)
    fault_point("after:member-result", path.stem)
    with atomic_path(path) as tmp:
        model.save(tmp)
        fault_point("during:member-model", path.stem, path=tmp)
    fault_point("after:member-model", path.stem)

