"""Fit an ODE's parameters to noisy, sparse observations with an RNN whose cell is a solver step.

苏剑林, "貌离神合的RNN与ODE：花式RNN简介" (kexue.fm/archives/5643): a Lotka–Volterra
predator–prey system (dx/dt = a x − b x y, dy/dt = c x y − d y) is simulated from known parameters
with SciPy's ``solve_ivp``, observed at random times in [0, fit_until] with Gaussian noise, and its
parameters (and initial populations) are recovered from a wrong initial guess by gradient descent
through ``keras.layers.RNN(kexue.layers.ODECell)``: each RNN step is one Euler or RK4 step.
The peer is what a practitioner would write: ``scipy.optimize.least_squares`` over the same
residuals, each evaluated by ``solve_ivp`` (:mod:`kexue.peers.ode`). Both are scored on the held-out range
(fit_until, horizon] (extrapolation) against the noise-free trajectory, and by the relative
error of each recovered parameter.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import keras
import numpy as np
from keras import ops

from kexue.comparison import comparison_block
from kexue.config import ConfigError
from kexue.families.ode_problem import (
    Problem,
    SimulateConfig,
    integrate,
    load_problem,
    ordered_params,
)
from kexue.io import atomic_path, atomic_write, read_json, write_json
from kexue.layers.ode import (
    ODE_SYSTEMS,
    LearnedInitialState,
    ODECell,
    ODESystem,
    time_grid,
)
from kexue.nonfinite import StopOnNonFiniteLoss
from kexue.train import OptimizerConfig, build_optimizer, seed_everything


@dataclass(frozen=True)
class FitConfig:
    epochs: int = field(metadata={"min": 1})  # full-batch gradient steps
    seed: int
    optimizer: OptimizerConfig


@dataclass(frozen=True)
class Config:
    system: str  # a name in kexue.layers.ODE_SYSTEMS
    simulate: SimulateConfig
    initial_guess: dict[str, float]  # where both fitters start
    method: Literal["euler", "rk4"]  # the RNN cell's step
    step_size: float = field(metadata={"min": 1e-4})  # longest solver step of the cell
    fit: FitConfig

    def __post_init__(self):
        validate(self)


def _bad(key: str, value, expected: str) -> ConfigError:
    return ConfigError(f"params.yaml: {key} = {value!r} is not valid: expected {expected}. "
                       f"Fix it in params.yaml or run `dvc exp run -S {key}=<value>`.")


def validate(cfg: Config, where: str = "ode") -> None:
    """The checks a dataclass schema cannot express: names match the system, values positive
    (the parameters and initial populations are fitted in log space), horizon after fit_until."""
    if cfg.system not in ODE_SYSTEMS:
        raise _bad(f"{where}.system", cfg.system, "one of " + " | ".join(sorted(ODE_SYSTEMS)))
    system = ODE_SYSTEMS[cfg.system]
    names = list(system.param_names)
    for key, values in (("simulate.true_params", cfg.simulate.true_params),
                        ("initial_guess", cfg.initial_guess)):
        if sorted(values) != sorted(names):
            raise _bad(f"{where}.{key}", values, f"a value for each of {', '.join(names)}")
        for name, value in values.items():
            if value <= 0:
                raise _bad(f"{where}.{key}.{name}", value, "a value > 0 (fitted in log space)")
    if not cfg.simulate.initial_states:
        raise _bad(f"{where}.simulate.initial_states", [], "at least one trajectory")
    for i, state in enumerate(cfg.simulate.initial_states):
        if len(state) != system.state_dim or min(state) <= 0:
            raise _bad(f"{where}.simulate.initial_states[{i}]", state,
                       f"{system.state_dim} values > 0 ({', '.join(system.state_names)})")
    if cfg.simulate.fit_until <= 0:
        raise _bad(f"{where}.simulate.fit_until", cfg.simulate.fit_until, "a value > 0")
    if cfg.simulate.horizon <= cfg.simulate.fit_until:
        raise _bad(f"{where}.simulate.horizon", cfg.simulate.horizon,
                   f"a value > simulate.fit_until ({cfg.simulate.fit_until})")


# --- the Keras fit ----------------------------------------------------------------------------


def build_model(system: ODESystem, params: dict[str, float] | list[float], initial_states,
                method: str) -> keras.Model:
    """[t, dt] steps → the trajectory [y(t0), y after each step] of every trajectory.
    Batch = trajectories (the initial states are weights, one row each)."""
    steps = keras.Input(shape=(None, 2), name="steps")  # (traj, n_steps, 2)
    y0 = LearnedInitialState(initial_states, name="initial_state")(steps)  # (traj, dim)
    cell = ODECell(system.name, params, method=method, name="ode_cell")
    path = keras.layers.RNN(cell, return_sequences=True, name="ode")(
        steps, initial_state=[y0])  # (traj, n_steps, dim)
    start = keras.layers.Reshape((1, system.state_dim), name="start")(y0)  # (traj, 1, dim)
    trajectory = keras.layers.Concatenate(axis=1, name="trajectory")([start, path])  # (traj, n_steps + 1, dim)
    return keras.Model(steps, trajectory, name="ode_rnn")


def fitted_values(model: keras.Model) -> tuple[dict[str, float], np.ndarray]:
    """The model's ODE parameters by name and its initial states (traj, dim)."""
    cell = model.get_layer("ode").cell
    layer = model.get_layer("initial_state")
    y0 = ops.convert_to_numpy(layer(np.zeros((len(layer.values), 1, 2), "float32")))  # (traj, dim)
    return cell.parameter_dict(), np.asarray(y0, dtype=float)


def predict(model: keras.Model, times: np.ndarray, step_size: float) -> np.ndarray:
    """The model's trajectories at ``times`` (sorted, from 0). # (traj, len(times), dim)"""
    steps, index = time_grid(times, step_size)
    n_traj = len(model.get_layer("initial_state").values)
    x = np.repeat(steps[None], n_traj, axis=0)  # (traj, n_steps, 2)
    path = ops.convert_to_numpy(model(x, training=False))  # (traj, n_steps + 1, dim)
    return np.asarray(path, dtype=float)[:, index]


class _Progress(keras.callbacks.Callback):
    """Adds the current ODE parameters to the epoch logs (so DVCLive draws them) and prints a
    line to stderr every ``every`` epochs."""

    def __init__(self, cell: ODECell, epochs: int, every: int):
        super().__init__()
        self.cell, self.epochs, self.every = cell, epochs, every

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        params = self.cell.parameter_dict()
        logs.update({f"param/{k}": v for k, v in params.items()})
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.epochs:
            shown = " ".join(f"{k}={v:.4f}" for k, v in params.items())
            print(f"train@ode: epoch {epoch + 1}/{self.epochs} loss {logs['loss']:.5f} {shown}",
                  file=sys.stderr, flush=True)


def fit_keras(cfg: Config, problem: Problem, live_dir: str | Path | None = None,
              verbose_every: int = 0) -> tuple[keras.Model, dict]:
    """Fit the ODE parameters and initial states by full-batch gradient descent through the RNN.

    Why ``model.fit`` and not :func:`kexue.train.fit`: that entry point is built for minibatch
    training over a ``PyDataset`` with a validation split, best-epoch selection and a backup of
    every epoch; here the whole data set is one batch (the trajectories), an "epoch" is a single
    gradient step, there is no validation split to select on (the held-out range is the test),
    and a per-step backup would cost more than the step. The optimizer still comes from the
    params through :func:`kexue.train.build_optimizer`.
    """
    from kexue.callbacks import LiveCurves, open_live

    # no TensorFlow op determinism: Keras turns XLA off under it, and this fit draws no random
    # numbers and runs no op with a nondeterministic kernel (the same params give the same
    # metrics; the tests check it)
    seed_everything(cfg.fit.seed, deterministic=False)
    system = problem.system
    steps, index = time_grid(problem.obs_times, cfg.step_size)
    n_traj, dim = problem.observations.shape[0], system.state_dim
    x = np.repeat(steps[None], n_traj, axis=0)  # (traj, n_steps, 2)
    y = np.zeros((n_traj, len(steps) + 1, dim), "float32")  # (traj, n_steps + 1, dim)
    y[:, index] = problem.observations
    weight = np.zeros((n_traj, len(steps) + 1), "float32")  # 1 where observed
    weight[:, index] = 1.0
    inv_scale = ops.convert_to_tensor((1.0 / problem.residual_scale).astype("float32"))  # (dim,)

    def scaled_squared_error(y_true, y_pred):  # (traj, n_steps + 1, dim) → (traj, n_steps + 1)
        return ops.sum(ops.square((y_pred - y_true) * inv_scale), axis=-1)

    model = build_model(system, cfg.initial_guess, problem.first_observed(), cfg.method)
    # XLA: the RNN's while loop of small ops runs ~4x faster compiled
    model.compile(optimizer=build_optimizer(cfg.fit.optimizer, model), loss=scaled_squared_error,
                  jit_compile=True)
    every = verbose_every or max(1, cfg.fit.epochs // 10)
    callbacks: list[keras.callbacks.Callback] = [
        StopOnNonFiniteLoss("ode"), _Progress(model.get_layer("ode").cell, cfg.fit.epochs, every)]
    if live_dir is not None:
        callbacks.append(LiveCurves(open_live(live_dir)))
    start = time.perf_counter()
    history = model.fit(x, y, sample_weight=weight, batch_size=n_traj, epochs=cfg.fit.epochs,
                        shuffle=False, verbose=0, callbacks=callbacks)
    seconds = time.perf_counter() - start
    losses = [float(v) for v in history.history["loss"]]
    return model, {"train_seconds": round(seconds, 2), "epochs_run": len(losses),
                   "final_loss": losses[-1], "solver_steps": int(len(steps)),
                   "loss_curve": losses[:: max(1, len(losses) // 100)]}


# --- metrics ----------------------------------------------------------------------------------


def trajectory_metrics(problem: Problem, params: dict[str, float], predicted: np.ndarray,
                       observed_fit: np.ndarray) -> dict:
    """``test``: relative error of each parameter, RMSE on (fit_until, horizon] against the
    noise-free trajectory (both populations); ``valid``: RMSE on [0, fit_until] against it and
    against the noisy observations. ``predicted`` is on ``problem.eval_times``, ``observed_fit`` on
    ``problem.obs_times``, both (traj, n, dim)."""
    held_out = problem.eval_times > problem.fit_until + 1e-9

    def rmse(a, b):
        return round(float(np.sqrt(np.mean(np.square(a - b)))), 6)

    errors = {name: abs(params[name] - true) / true for name, true in problem.true_params.items()}
    test = {f"rel_error_{name}": round(float(err), 6) for name, err in errors.items()}
    test["max_rel_error"] = round(float(max(errors.values())), 6)
    test["rmse_extrapolation"] = rmse(predicted[:, held_out], problem.truth[:, held_out])
    valid = {"rmse_fit_range": rmse(predicted[:, ~held_out], problem.truth[:, ~held_out]),
             "rmse_observations": rmse(observed_fit, problem.observations)}
    by_population = {state: rmse(predicted[:, held_out, i], problem.truth[:, held_out, i])
                     for i, state in enumerate(problem.system.state_names)}
    if not np.all(np.isfinite(predicted)):  # a blown-up fit: no score (JSON has no infinity)
        test["rmse_extrapolation"] = valid["rmse_fit_range"] = None
    return {"test": test, "valid": valid, "rmse_extrapolation_by_population": by_population}


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None) -> dict:
    """Fit and save ``model.keras`` (the trajectory model) and ``train_info.json``.
    ``resume_root`` is accepted for the shared train stage and unused: a fit takes about a minute."""
    problem = load_problem(data_dir)
    model, info = fit_keras(cfg, problem, live_dir)
    params, y0 = fitted_values(model)
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / "model.keras") as tmp:
        model.save(tmp)
    info = {"config": dataclasses.asdict(cfg), "fitted_params": params,
            "fitted_initial_states": y0.tolist(), "params": int(model.count_params()),
            "monitor": "loss", "best_value": info["final_loss"], "best_epoch": info["epochs_run"],
            **info}
    write_json(model_dir / "train_info.json", info)
    return info


def evaluate(model_dir: str | Path, data_dir: str | Path, peers: dict,
             plot_path: str | Path | None = None) -> dict:
    """Metrics of the saved fit next to the peers' (from ``baselines``), and the plot."""
    model_dir = Path(model_dir)
    problem = load_problem(data_dir)
    model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True, compile=False)
    info = read_json(model_dir / "train_info.json")
    step = info["config"]["step_size"]
    params, y0 = fitted_values(model)
    predicted = predict(model, problem.eval_times, step)  # (traj, n_eval, dim)
    metrics = trajectory_metrics(problem, params, predicted, predict(model, problem.obs_times, step))
    curves = {"kexue": predicted}
    for name, peer in peers.items():
        curves[name] = np.stack([integrate(problem.system, ordered_params(problem.system, peer["fitted_params"]),
                                           y, problem.eval_times)
                                 for y in peer["fitted_initial_states"]])
    items = {name: point_errors(problem, curve) for name, curve in curves.items()}
    ours_items = items.pop("kexue")
    comparison = None
    finite = all(np.all(np.isfinite(v["test"])) for v in (ours_items, *items.values()))
    if items and finite:
        comparison = comparison_block("mse_vs_truth", ours_items, items, higher_is_better=False)
    ratio = None
    ours = metrics["test"]["rmse_extrapolation"]
    theirs = peers.get("scipy_least_squares", {}).get("test", {}).get("rmse_extrapolation")
    if ours is not None and theirs:
        ratio = ours / theirs
    if plot_path is not None:
        plot_fit(problem, curves, plot_path, title=f"{info['config']['method']} cell, "
                 f"step {step} vs scipy least_squares")
    return {**metrics, "peers": peers,
            "fitted": {"params": params, "initial_states": y0.tolist(),
                       "true_params": problem.true_params},
            "acceptance": {"max_rel_error": metrics["test"]["max_rel_error"],
                           "rmse_ratio_to_scipy": round(ratio, 4) if ratio is not None else None},
            "cost": {"train_seconds": info["train_seconds"], "params": info["params"],
                     "epochs_run": info["epochs_run"], "solver_steps": info["solver_steps"],
                     "method": info["config"]["method"], "step_size": step},
            **({"comparison": comparison} if comparison else {})}


def point_errors(problem: Problem, curve: np.ndarray) -> dict[str, np.ndarray]:
    """Per-item statistics for the paired bootstrap: the squared error against the noise-free
    trajectory at each evaluation time of each trajectory, averaged over the populations;
    ``valid`` holds the fit range [0, fit_until], ``test`` the held-out (fit_until, horizon].
    Neighbouring time points are correlated, so the bootstrap's interval is narrower than one
    over independent trajectories would be."""
    held_out = problem.eval_times > problem.fit_until + 1e-9
    squared = np.square(curve - problem.truth).mean(-1)  # (traj, n_eval)
    return {"valid": squared[:, ~held_out].ravel(), "test": squared[:, held_out].ravel()}


# --- plot -------------------------------------------------------------------------------------


def plot_fit(problem: Problem, curves: dict[str, np.ndarray], path: str | Path, title: str = "") -> None:
    """Observed points, the true trajectory and each fit, one panel per trajectory and
    population; the shaded part is the held-out range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_traj, _, dim = problem.observations.shape
    fig, axes = plt.subplots(n_traj, dim, figsize=(5.0 * dim, 2.6 * n_traj), squeeze=False,
                             sharex=True)
    styles = {"kexue": ("tab:red", "--"), "scipy_least_squares": ("tab:blue", ":")}
    for i in range(n_traj):
        for j, state in enumerate(problem.system.state_names):
            ax = axes[i, j]
            ax.axvspan(problem.fit_until, problem.eval_times[-1], color="0.93", lw=0)
            ax.plot(problem.eval_times, problem.truth[i, :, j], color="black", lw=1.2, label="true")
            for name, curve in curves.items():
                color, dash = styles.get(name, ("tab:green", "-."))
                ax.plot(problem.eval_times, curve[i, :, j], color=color, ls=dash, lw=1.2, label=name)
            ax.plot(problem.obs_times, problem.observations[i, :, j], "o", ms=3, color="0.35",
                    label="observed")
            ax.set_ylabel(f"{state}" + (f" (trajectory {i + 1})" if n_traj > 1 else ""))
    for ax in axes[-1]:
        ax.set_xlabel("t (shaded: held out)")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_write(path, mode="wb") as handle:
        fig.savefig(handle, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
