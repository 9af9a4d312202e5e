"""The ODE family's problem: a known system simulated from its true parameters and observed at
random times with noise (stage ``prepare_ode`` writes it), read back by the Keras fit, its SciPy
peer and the evaluation; SciPy's ``solve_ivp`` integrates it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kexue.io import read_json
from kexue.layers.ode import ODESystem, get_ode_system

PROBLEM_FILE = "problem.json"


@dataclass(frozen=True)
class SimulateConfig:
    true_params: dict[str, float]  # by the system's parameter names
    initial_states: list[list[float]]  # one trajectory per row, in the system's state order
    fit_until: float = field(metadata={"min": 0.0})  # observations in [0, fit_until]
    horizon: float = field(metadata={"min": 0.0})  # extrapolation scored on (fit_until, horizon]
    observations: int = field(metadata={"min": 3})  # per trajectory, t = 0 included
    noise: float = field(metadata={"min": 0.0})  # noise std / the population's mean over [0, fit_until]
    eval_step: float = field(metadata={"min": 1e-4})  # spacing of the noise-free scoring grid
    seed: int  # observation times and noise


def ordered_params(system: ODESystem, values: dict[str, float]) -> list[float]:
    return [float(values[name]) for name in system.param_names]


def integrate(system: ODESystem, params, y0, times, rtol: float = 1e-10, atol: float = 1e-10,
              method: str = "DOP853") -> np.ndarray:
    """The trajectory at ``times`` (sorted, from t = 0) by SciPy, (len(times), dim); NaN where
    the solver fails (e.g. a blow-up for wild parameters)."""
    from scipy.integrate import solve_ivp

    times = np.asarray(times, dtype=float)
    sol = solve_ivp(system.numpy_rhs(params), (0.0, float(times[-1])), np.asarray(y0, float),
                    t_eval=times, method=method, rtol=rtol, atol=atol)
    out = np.full((len(times), system.state_dim), np.nan)
    out[: sol.y.shape[1]] = sol.y.T
    return out


def simulate(system_name: str, sim: SimulateConfig) -> dict:
    """Noisy observations at random times in [0, fit_until] (t = 0 included) and the noise-free
    trajectories on a regular grid over [0, horizon] of the system ``system_name``, as a
    JSON-ready problem."""
    system = get_ode_system(system_name)
    rng = np.random.default_rng(sim.seed)
    obs_times = np.concatenate([[0.0], np.sort(rng.uniform(0.0, sim.fit_until, sim.observations - 1))])
    eval_times = np.round(np.arange(0.0, sim.horizon + 1e-9, sim.eval_step), 10)
    theta = ordered_params(system, sim.true_params)
    clean = np.stack([integrate(system, theta, y0, obs_times) for y0 in sim.initial_states])
    truth = np.stack([integrate(system, theta, y0, eval_times) for y0 in sim.initial_states])
    scale = clean.reshape(-1, system.state_dim).mean(axis=0)  # (dim,) mean population
    noisy = clean + sim.noise * scale * rng.standard_normal(clean.shape)  # (traj, n_obs, dim)
    return {"system": system.name, "param_names": list(system.param_names),
            "state_names": list(system.state_names), "true_params": dict(sim.true_params),
            "initial_states": sim.initial_states, "fit_until": sim.fit_until,
            "horizon": sim.horizon, "noise": sim.noise, "noise_std": (sim.noise * scale).tolist(),
            "obs_times": obs_times.tolist(), "observations": noisy.tolist(),
            "eval_times": eval_times.tolist(), "truth": truth.tolist()}


@dataclass
class Problem:
    system: ODESystem
    true_params: dict[str, float]
    fit_until: float
    obs_times: np.ndarray  # (n_obs,)
    observations: np.ndarray  # (traj, n_obs, dim)
    eval_times: np.ndarray  # (n_eval,)
    truth: np.ndarray  # (traj, n_eval, dim)

    @property
    def residual_scale(self) -> np.ndarray:
        """Per-population spread of the observations: residuals are divided by it, so prey and
        predators weigh the same in both fitters' objectives. # (dim,)"""
        return self.observations.reshape(-1, self.system.state_dim).std(axis=0)

    def first_observed(self) -> np.ndarray:
        """The observations at t = 0, kept positive: the start of the initial-state fit. # (traj, dim)"""
        floor = 1e-3 * np.abs(self.observations).reshape(-1, self.system.state_dim).mean(axis=0)
        return np.maximum(self.observations[:, 0], floor)


def load_problem(data_dir: str | Path) -> Problem:
    path = Path(data_dir) / PROBLEM_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro prepare_ode`")
    raw = read_json(path)
    return Problem(get_ode_system(raw["system"]), raw["true_params"], raw["fit_until"],
                   np.asarray(raw["obs_times"]), np.asarray(raw["observations"]),
                   np.asarray(raw["eval_times"]), np.asarray(raw["truth"]))
