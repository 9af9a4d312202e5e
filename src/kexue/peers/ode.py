"""The ODE peer (stage ``baselines_ode``): what a practitioner would write, SciPy's
``least_squares`` (trust-region reflective) over the same scaled residuals as the Keras fit,
each residual evaluated by ``solve_ivp``, from the same initial guess; scored like the fit."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from kexue.config import require_network
from kexue.families.ode import Config as NetworkConfig
from kexue.families.ode import trajectory_metrics
from kexue.families.ode_problem import Problem, integrate, load_problem, ordered_params

__all__ = ["BaselineConfig", "NetworkConfig", "baselines", "fit_scipy"]


@dataclass(frozen=True)
class BaselineConfig:
    solver: Literal["RK45", "DOP853", "LSODA", "Radau"]  # solve_ivp method inside the residuals
    rtol: float = field(metadata={"min": 1e-14})  # solve_ivp tolerances
    atol: float = field(metadata={"min": 1e-14})
    diff_step: float = field(metadata={"min": 1e-10})  # finite-difference step (relative) of the Jacobian
    max_nfev: int = field(metadata={"min": 1})  # residual evaluations allowed


def fit_scipy(cfg: BaselineConfig, problem: Problem, guess: dict[str, float]) -> dict:
    """``least_squares`` (trust-region reflective) over the log-parameters and log-initial
    states, from the same guess and with the same scaled residuals as the Keras fit."""
    from scipy.optimize import least_squares

    system = problem.system
    n_p = len(system.param_names)
    n_traj, _, dim = problem.observations.shape
    scale = problem.residual_scale

    def unpack(z):
        return np.exp(z[:n_p]), np.exp(z[n_p:]).reshape(n_traj, dim)

    def residuals(z):
        theta, y0 = unpack(z)
        fit = np.stack([integrate(system, theta, y, problem.obs_times, cfg.rtol, cfg.atol, cfg.solver)
                        for y in y0])  # (traj, n_obs, dim)
        res = ((fit - problem.observations) / scale).ravel()
        return np.where(np.isfinite(res), res, 1e3)

    z0 = np.log(np.concatenate([ordered_params(system, guess), problem.first_observed().ravel()]))
    start = time.perf_counter()
    result = least_squares(residuals, z0, method="trf", diff_step=cfg.diff_step,
                           max_nfev=cfg.max_nfev)
    seconds = time.perf_counter() - start
    theta, y0 = unpack(result.x)
    return {"fitted_params": dict(zip(system.param_names, theta.tolist(), strict=True)),
            "fitted_initial_states": y0.tolist(),
            "cost": {"train_seconds": round(seconds, 2), "nfev": int(result.nfev),
                     "status": int(result.status), "final_loss": float(2 * result.cost)}}


def baselines(cfg: BaselineConfig, data_dir: str | Path, network: NetworkConfig | None = None) -> dict:
    """The SciPy peer on the same observations, from the ``ode`` section's initial guess."""
    problem = load_problem(data_dir)
    fam = require_network(network, "ode")
    peer = fit_scipy(cfg, problem, fam.initial_guess)
    theta = ordered_params(problem.system, peer["fitted_params"])
    predicted = np.stack([integrate(problem.system, theta, y, problem.eval_times)
                          for y in peer["fitted_initial_states"]])
    observed = np.stack([integrate(problem.system, theta, y, problem.obs_times)
                         for y in peer["fitted_initial_states"]])
    metrics = trajectory_metrics(problem, peer["fitted_params"], predicted, observed)
    return {"scipy_least_squares": {**metrics, **peer}}
