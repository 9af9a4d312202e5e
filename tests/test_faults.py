"""Training killed at any step of the checkpoint sequence (kexue.checkpoint) resumes to the
uninterrupted run's weights, bit for bit, and reports the whole run (history, epochs, seconds,
best epoch, DVCLive curves).

How a kill is simulated. A SIGKILL leaves the files exactly as they are at that instant. So the
uninterrupted reference run (one per module) replaces ``kexue.checkpoint.fault_point`` with a
hook that copies the run's checkpoint and DVCLive folders at each named point — cutting the file
being written to half its length at a ``during:`` point, which is what a kill mid-write leaves —
and each test reruns training on one such copy, in this process (Keras's session cleared, as in
a fresh process). One test kills a real subprocess through ``KEXUE_CHECKPOINT_FAULT`` instead.
Every training is the tiny sentiment GRU of ``test_resume`` for 2 epochs: the points are those
of the save at the end of epoch 2, the last one, so the unit of epoch 1 is there to fall back on.
"""

import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from conftest import make_toy_reviews
from test_resume import CFG

from kexue import checkpoint
from kexue.checkpoint import FAULT_POINTS, CheckpointFolder, cut_in_half
from kexue.families import sentiment

EPOCHS = 2
SINGLE = dataclasses.replace(CFG, fit=dataclasses.replace(CFG.fit, epochs=EPOCHS))
ENSEMBLE = dataclasses.replace(SINGLE, members=2)
# the ensemble: the second member killed around its last save, the first around its files
ENSEMBLE_POINTS = [("member1", p, EPOCHS) for p in ("during:weights", "after:latest")] + [
    ("member0", p, None) for p in ("after:member-result", "after:member-model")]
# "during:weights" of the single model is the real SIGKILL below
IN_PROCESS_POINTS = [p for p in FAULT_POINTS if p != "during:weights"]


def _h5_arrays(path) -> dict[str, np.ndarray]:
    arrays = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, obj: arrays.__setitem__(name, obj[()])
                          if isinstance(obj, h5py.Dataset) else None)
    return arrays


class Observer:
    """Stands in for ``kexue.checkpoint.fault_point``: copies the run's folders at the points in
    ``capture`` (into ``out/<where>@<point>``) and keeps the last save's weights and optimizer
    state (``final[where]``) as written to ``model.weights.h5``."""

    def __init__(self, work: Path, capture=(), out: Path | None = None):
        self.work, self.capture, self.out = work, set(capture), out
        self.final: dict[str, dict[str, np.ndarray]] = {}

    def __call__(self, point, where, epoch=None, path=None):
        if point == "after:manifest" and epoch == EPOCHS:
            unit = next((self.work / "ckpt").rglob(f"{where}/epoch-{EPOCHS:04d}.tmp"))
            self.final[where] = _h5_arrays(unit / checkpoint.WEIGHTS)
        if (where, point, epoch) not in self.capture:
            return
        dest = self.out / f"{where}@{point}"
        for name in ("ckpt", "live"):
            if (self.work / name).exists():
                shutil.copytree(self.work / name, dest / name)
        if point.startswith("during:") and path is not None:
            cut_in_half(dest / Path(path).relative_to(self.work))


def _train(cfg, data: Path, work: Path, observer: Observer | None = None, monkeypatch=None):
    keras.utils.clear_session()  # layer names and the session as a fresh process has them
    if observer is not None:
        monkeypatch.setattr(checkpoint, "fault_point", observer)
    try:
        return sentiment.train(cfg, data, work / "model", work / "live", work / "ckpt")
    finally:
        if observer is not None:
            monkeypatch.undo()


def _weights(work: Path) -> dict[str, np.ndarray]:
    """Every array the saved model holds (layers and optimizer), read from the archive."""
    with zipfile.ZipFile(work / "model" / "model.keras") as archive:
        return _h5_arrays(io.BytesIO(archive.read("model.weights.h5")))


def _curves(work: Path) -> dict[str, str]:
    live = work / "live"
    files = {p.relative_to(live).as_posix(): p.read_text() for p in live.rglob("*.tsv")}
    files["metrics.json"] = json.loads((live / "metrics.json").read_text())
    files["params.yaml"] = (live / "params.yaml").read_text()
    return files


@dataclasses.dataclass
class Reference:
    info: dict
    weights: dict[str, np.ndarray]
    final: dict
    curves: dict
    captures: Path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_toy_reviews(tmp_path_factory.mktemp("toy"))


def _reference(cfg, points, data, tmp_path_factory) -> Reference:
    work = tmp_path_factory.mktemp("reference")
    observer = Observer(work, points, tmp_path_factory.mktemp("captures"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        info = _train(cfg, data, work, observer, monkeypatch)
    assert not list((work / "ckpt").glob("*/*")), "the checkpoint folder outlives the run"
    return Reference(info, _weights(work), observer.final, _curves(work), observer.out)


@pytest.fixture(scope="module")
def single(data, tmp_path_factory) -> Reference:
    """The uninterrupted single-model run, with a copy of its folders at every fault point."""
    return _reference(SINGLE, {("member0", p, EPOCHS) for p in IN_PROCESS_POINTS}, data,
                      tmp_path_factory)


@pytest.fixture(scope="module")
def ensemble(data, tmp_path_factory) -> Reference:
    return _reference(ENSEMBLE, set(ENSEMBLE_POINTS), data, tmp_path_factory)


def _restored_seconds(capture: Path) -> float:
    """Training seconds recorded in the newest sound unit of a copied checkpoint folder."""
    folders = [CheckpointFolder(f) for f in (capture / "ckpt").glob("sentiment/*/*") if f.is_dir()]
    units = [u for folder in folders for u in folder.units() if folder.verify(u) is None]
    return max((json.loads((u / "state.json").read_text())["train_seconds"] for u in units),
               default=0.0)


def _rerun_and_compare(cfg, ref: Reference, capture: Path, data, tmp_path, monkeypatch, capfd,
                       damaged: str | None = None, outputs_deleted: bool = False):
    work = tmp_path / "rerun"
    shutil.copytree(capture, work)
    if outputs_deleted:  # as `dvc repro` does before it reruns a stage
        shutil.rmtree(work / "live", ignore_errors=True)
    restored_seconds = _restored_seconds(work)
    observer = Observer(work)
    capfd.readouterr()
    info = _train(cfg, data, work, observer, monkeypatch)
    out, err = capfd.readouterr()
    warnings = [line for line in err.splitlines() if "is damaged" in line]
    if damaged is None:
        assert not warnings, err  # a kill never damages a complete unit
    else:
        assert len(warnings) == 1 and damaged in warnings[0], err
    weights = _weights(work)
    assert weights.keys() == ref.weights.keys()
    for name, array in weights.items():
        np.testing.assert_array_equal(array, ref.weights[name], err_msg=name)  # bit for bit
    for where, arrays in observer.final.items():  # a retrained last epoch: weights + optimizer
        assert arrays.keys() == ref.final[where].keys()
        for name, array in arrays.items():
            np.testing.assert_array_equal(array, ref.final[where][name], err_msg=name)
    for key in ("epochs_run", "best_epoch", "best_value", "history"):
        assert info[key] == ref.info[key], key
    assert [m["history"] for m in info["members"]] == [m["history"] for m in ref.info["members"]]
    assert info["train_seconds"] >= restored_seconds  # the whole run's time
    assert _curves(work) == ref.curves  # DVCLive: every epoch of every member, once
    assert not list((work / "ckpt").glob("*/*"))
    return out


@pytest.mark.parametrize("point", IN_PROCESS_POINTS)
def test_single_model_killed_at(point, single, data, tmp_path, monkeypatch, capfd):
    capture = next(single.captures.glob(f"*@{point}"))
    out = _rerun_and_compare(SINGLE, single, capture, data, tmp_path, monkeypatch, capfd)
    # the unit of epoch 2 counts once it is renamed into place: before that the rerun trains
    # epoch 2 again from the unit of epoch 1, after it there is nothing left to train
    renamed = FAULT_POINTS.index(point) >= FAULT_POINTS.index("after:rename")
    assert "Epoch 1/2" not in out
    assert ("Epoch 2/2" in out) != renamed


@pytest.mark.parametrize(("where", "point", "epoch"), ENSEMBLE_POINTS,
                         ids=[f"{w}-{p}" for w, p, _ in ENSEMBLE_POINTS])
def test_ensemble_killed_at(where, point, epoch, ensemble, data, tmp_path, monkeypatch, capfd):
    """Here the rerun also starts without the DVCLive folder, as under `dvc repro`: the curves of
    the member loaded from its file and of the resumed one are rebuilt."""
    capture = ensemble.captures / f"{where}@{point}"
    _rerun_and_compare(ENSEMBLE, ensemble, capture, data, tmp_path, monkeypatch, capfd,
                       outputs_deleted=True)


WORKER = """
import json, sys
from kexue.config import parse
from kexue.families import sentiment
cfg = parse(sentiment.Config, json.loads(sys.argv[1]), "sentiment")
sentiment.train(cfg, sys.argv[2], sys.argv[3] + "/model", sys.argv[3] + "/live", sys.argv[3] + "/ckpt")
"""


def test_sigkill_while_writing_weights_then_rerun(single, data, tmp_path, monkeypatch, capfd):
    """A real kill (the subprocess SIGKILLs itself) with epoch 2's weights file half-written —
    the kill that used to leave an HDF5 file no rerun could open. (The one point of the
    sequence not also simulated in process.)"""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               KEXUE_CHECKPOINT_FAULT=f"during:weights,epoch={EPOCHS}")
    env.pop("KEXUE_KILL_AFTER_EPOCH", None)
    work = tmp_path / "killed"
    killed = subprocess.run([sys.executable, "-c", WORKER, json.dumps(dataclasses.asdict(SINGLE)),
                             str(data), str(work)], env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    half = next((work / "ckpt").rglob(f"epoch-{EPOCHS:04d}.tmp/{checkpoint.WEIGHTS}"))
    with pytest.raises(OSError):
        h5py.File(half, "r")  # what a kill mid-write leaves
    capture = tmp_path / "capture"
    shutil.copytree(work, capture)
    _rerun_and_compare(SINGLE, single, capture, data, tmp_path, monkeypatch, capfd)


def test_damaged_unit_is_set_aside_and_training_continues(single, data, tmp_path, monkeypatch,
                                                         capfd):
    """The newest unit damaged after it was complete (here: bytes flipped in its weights), and
    DVCLive's files truncated by an older, non-atomic writer: the unit is set aside with one
    line naming it, training resumes from the unit before it, and the curves are rebuilt."""
    capture = tmp_path / "capture"
    shutil.copytree(next(single.captures.glob("*@after:latest")), capture)
    folder = next((capture / "ckpt").glob("sentiment/*/*"))
    assert [u.name for u in CheckpointFolder(folder).units()] == ["epoch-0002", "epoch-0001"]
    weights = folder / "epoch-0002" / checkpoint.WEIGHTS
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    weights.write_bytes(bytes(raw))
    live = capture / "live"
    cut_in_half(live / "metrics.json")
    cut_in_half(live / "params.yaml")
    with open(next(live.rglob("*.tsv")), "a") as handle:
        handle.write("1\t0.12")  # a row cut short
    out = _rerun_and_compare(SINGLE, single, capture, data, tmp_path, monkeypatch, capfd,
                             damaged=f"{folder.name}/epoch-0002 is damaged")
    assert "Epoch 2/2" in out and "Epoch 1/2" not in out  # resumed from epoch 1


# -- the checkpoint folder on its own (no training) ----------------------------------------------


def _tiny_model():
    keras.utils.clear_session()
    inputs = keras.Input((3,))
    hidden = keras.layers.Dropout(0.5, seed=1)(keras.layers.Dense(4, name="dense")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden))
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


class _Best:
    monitor, mode = "val_loss", "min"

    def __init__(self, best=float("inf"), best_epoch=-1):
        self.best, self.best_epoch, self.best_weights = best, best_epoch, None


def _two_units(path: Path):
    """A folder holding the units of epochs 1 and 2 (as between ``after:latest`` and the prune)."""
    model = _tiny_model()
    folder = CheckpointFolder(path)
    folder.save(1, model, _Best(0.5, 0), {"loss": [1.0]}, 1.0, None)
    shutil.copytree(path / "epoch-0001", path.parent / f"{path.name}-kept")
    model.set_weights([w + 1 for w in model.get_weights()])
    folder.save(2, model, _Best(0.5, 0), {"loss": [1.0, 0.9]}, 2.0, path / "epoch-0001")
    os.replace(path.parent / f"{path.name}-kept", path / "epoch-0001")
    return folder


DAMAGE = {
    "manifest-cut-in-half": lambda unit: cut_in_half(unit / checkpoint.MANIFEST),
    "manifest-missing": lambda unit: (unit / checkpoint.MANIFEST).unlink(),
    "state-byte-flipped": lambda unit: (unit / checkpoint.STATE).write_text(
        (unit / checkpoint.STATE).read_text().replace("0.9", "0.8")),
    "weights-truncated": lambda unit: cut_in_half(unit / checkpoint.WEIGHTS),
    "rng-missing": lambda unit: (unit / checkpoint.RNG).unlink(),
}


def test_a_damaged_unit_is_renamed_with_a_one_line_warning(tmp_path, capfd):
    pristine = _two_units(tmp_path / "pristine").path
    for damage, apply in DAMAGE.items():
        folder = CheckpointFolder(tmp_path / damage)
        shutil.copytree(pristine, folder.path)
        apply(folder.path / "epoch-0002")
        capfd.readouterr()
        assert folder.newest() == folder.path / "epoch-0001", damage
        err = capfd.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(folder.path / "epoch-0002") in err[0], (damage, err)
        assert "epoch-0002.damaged" in err[0]
        assert sorted(p.name for p in folder.path.iterdir()) == [
            "epoch-0001", "epoch-0002.damaged", "latest"], damage  # set aside, not deleted


def test_no_complete_unit_left_means_starting_over(tmp_path, capfd):
    folder = _two_units(tmp_path / "run")
    for unit in ("epoch-0001", "epoch-0002"):
        cut_in_half(folder.path / unit / checkpoint.WEIGHTS)
    assert folder.newest() is None
    assert capfd.readouterr().err.count("is damaged") == 2


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras, on the mismatched file
def test_a_unit_that_verifies_but_does_not_load_is_set_aside_and_the_model_left_as_it_was(
        tmp_path, capfd):
    """E.g. written by another version of the model's code under the same run key."""
    folder = _two_units(tmp_path / "run")
    keras.utils.clear_session()
    inputs = keras.Input((3,))
    hidden = keras.layers.Dropout(0.5, seed=1)(keras.layers.Dense(4, name="dense")(inputs))
    other = keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))  # 2 outputs, not 1
    other.compile(optimizer="adam", loss="mse")
    before = [v.numpy().copy() for v in other.variables]
    callback = checkpoint.TrainingCheckpoint(folder.path, _Best(), started=0.0)
    callback.set_model(other)
    capfd.readouterr()
    callback.on_train_begin()
    err = capfd.readouterr().err
    assert err.count("cannot be restored") == 2, err  # both units tried, both set aside
    assert callback.progress.epochs == 0
    for variable, value in zip(other.variables, before, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_restore_gives_back_weights_optimizer_random_state_and_record(tmp_path):
    model = _tiny_model()
    model.optimizer.iterations.assign(7)
    seeds = [v for v in model.variables if "seed_generator_state" in v.path]
    seeds[0].assign(seeds[0].numpy() + 3)
    np.random.seed(11)
    folder = CheckpointFolder(tmp_path / "run")
    best = _Best(0.25, 0)
    folder.save(1, model, best, {"loss": [0.5], "val_loss": [0.25]}, 3.5, None)
    expected = [v.numpy() for v in model.variables] + [v.numpy() for v in model.optimizer.variables]
    numpy_draw = np.random.random()

    fresh = _tiny_model()
    restored_best = _Best()
    progress = folder.restore(folder.newest(), fresh, restored_best)
    assert progress.epochs == 1 and progress.train_seconds == 3.5
    assert progress.history == {"loss": [0.5], "val_loss": [0.25]}
    assert (restored_best.best, restored_best.best_epoch) == (0.25, 0)
    assert restored_best.best_weights is not None
    got = [v.numpy() for v in fresh.variables] + [v.numpy() for v in fresh.optimizer.variables]
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.random.random() == numpy_draw


def test_the_fault_hook_is_inert_unless_named(tmp_path, monkeypatch):
    monkeypatch.setenv(checkpoint.FAULT_ENV, "after:manifest,epoch=3,where=elsewhere")
    folder = _two_units(tmp_path / "run")  # would have been killed at a matching point
    assert folder.newest() == folder.path / "epoch-0002"
    assert (folder.path / "latest").read_text() == "epoch-0002\n"
