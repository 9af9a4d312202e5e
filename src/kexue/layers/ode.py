"""An RNN cell whose step is one Euler or RK4 step of an ODE with trainable parameters.

After 苏剑林, "貌离神合的RNN与ODE：花式RNN简介", kexue.fm/archives/5643: an RNN step
y_t = f(y_{t-1}, x_t, t) has the shape of one step of a numerical ODE solver, so a custom RNN
cell whose step *is* a solver step turns ``keras.layers.RNN`` into an integrator, and gradient
descent through it fits the ODE's parameters to observed trajectories.

The right-hand side is pluggable: :func:`register_ode_system` names a function
``rhs(t, state, params, ops) -> d state / dt`` together with its parameter and state names, and the
cell refers to it by name (so a saved model reloads with ``safe_mode=True``). ``ops`` is
``keras.ops`` inside the cell and ``numpy`` for SciPy (simulation, the least-squares peer), so one
definition serves both.

Each RNN input step is ``[t, dt]``: the time at the start of the step and the step size. A step
with ``dt = 0`` leaves the state unchanged, and :func:`time_grid` builds the steps that reach
given (irregular) observation times exactly with no step longer than ``max_step``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

METHODS = ("euler", "rk4")


@dataclass(frozen=True)
class ODESystem:
    """A named right-hand side dy/dt = rhs(t, y, params)."""

    name: str
    param_names: tuple[str, ...]
    state_names: tuple[str, ...]
    # rhs(t, state, params, ops): t (batch, 1), state (batch, dim), params a list of scalars in
    # param_names order, ops = keras.ops or numpy; returns (batch, dim)
    rhs: Callable

    @property
    def state_dim(self) -> int:
        return len(self.state_names)

    def numpy_rhs(self, params: Sequence[float]) -> Callable:
        """``f(t, y)`` for ``scipy.integrate.solve_ivp`` (y of shape (dim,))."""
        params = [float(p) for p in params]

        def f(t, y):
            return self.rhs(np.full((1, 1), t), np.asarray(y)[None, :], params, np)[0]

        return f


ODE_SYSTEMS: dict[str, ODESystem] = {}


def register_ode_system(name: str, param_names: Sequence[str], state_names: Sequence[str],
                        rhs: Callable) -> ODESystem:
    """Make ``rhs`` available to :class:`ODECell` under ``name`` (re-registering replaces)."""
    system = ODESystem(name, tuple(param_names), tuple(state_names), rhs)
    ODE_SYSTEMS[name] = system
    return system


def get_ode_system(name: str) -> ODESystem:
    if name not in ODE_SYSTEMS:
        raise ValueError(f"unknown ODE system {name!r}: expected one of "
                         f"{' | '.join(sorted(ODE_SYSTEMS))} (or register_ode_system it first)")
    return ODE_SYSTEMS[name]


def _lotka_volterra(t, state, params, ops):
    a, b, c, d = params
    prey, predator = state[:, 0], state[:, 1]  # (batch,) each
    return ops.stack([a * prey - b * prey * predator,
                      c * prey * predator - d * predator], axis=-1)  # (batch, 2)


def _linear(t, state, params, ops):
    (lam,) = params
    return lam * state  # (batch, 1)


register_ode_system("lotka_volterra", ("a", "b", "c", "d"), ("prey", "predator"), _lotka_volterra)
register_ode_system("linear", ("lam",), ("y",), _linear)


def ode_step(rhs: Callable, t, y, dt, method: str):
    """One explicit step of size ``dt`` from ``(t, y)``: Euler y + dt·f, or classical RK4
    (local error O(dt^5) against Euler's O(dt^2))."""
    if method == "euler":
        return y + dt * rhs(t, y)
    if method != "rk4":
        raise ValueError(f"method = {method!r}: expected one of {' | '.join(METHODS)}")
    half = 0.5 * dt
    k1 = rhs(t, y)
    k2 = rhs(t + half, y + half * k1)
    k3 = rhs(t + half, y + half * k2)
    k4 = rhs(t + dt, y + dt * k3)
    return y + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


@keras.saving.register_keras_serializable(package="kexue")
class ODECell(keras.layers.Layer):
    """RNN cell: state y (batch, dim), input [t, dt] (batch, 2) → y after one solver step.

    ``params`` are the initial values of the ODE's parameters (a mapping by name or a list in
    the system's order); they are the cell's only weights. With ``positive=True`` they are
    trained in log space (θ = exp(φ)): they stay positive, and a relative change costs the same
    gradient step whatever the parameter's magnitude, which matters when rates differ by orders.
    """

    def __init__(self, system: str, params, method: str = "rk4", positive: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.system = get_ode_system(system)
        if method not in METHODS:
            raise ValueError(f"ODECell: method = {method!r}: expected one of {' | '.join(METHODS)}")
        if isinstance(params, dict):
            missing = set(self.system.param_names) ^ set(params)
            if missing:
                raise ValueError(f"ODECell: params {sorted(params)} do not match the parameters "
                                 f"{list(self.system.param_names)} of {system!r}")
            params = [params[name] for name in self.system.param_names]
        params = [float(p) for p in params]
        if len(params) != len(self.system.param_names):
            raise ValueError(f"ODECell: {len(params)} params for {system!r}, which has "
                             f"{list(self.system.param_names)}")
        if positive and min(params) <= 0:
            raise ValueError(f"ODECell: positive=True needs params > 0, got {params}")
        self.method, self.positive, self.initial_params = method, positive, params
        self.state_size = self.system.state_dim
        self.output_size = self.system.state_dim
        raw = np.log(params) if positive else np.asarray(params)
        self.raw_params = self.add_weight(
            shape=(len(params),), name="log_params" if positive else "params",
            initializer=keras.initializers.Constant(raw.astype("float32")))

    def parameters(self):
        """The ODE's parameters in the system's order. # (num_params,)"""
        return ops.exp(self.raw_params) if self.positive else ops.convert_to_tensor(self.raw_params)

    def parameter_dict(self) -> dict[str, float]:
        values = np.asarray(ops.convert_to_numpy(self.parameters()), dtype=float)
        return dict(zip(self.system.param_names, values.tolist(), strict=True))

    def call(self, inputs, states, training=None):
        t = inputs[:, :1]  # (batch, 1) time at the start of the step
        dt = inputs[:, 1:2]  # (batch, 1) step size
        y = states[0] if isinstance(states, list | tuple) else states  # (batch, dim)
        theta = self.parameters()  # (num_params,)
        scalars = [theta[i] for i in range(len(self.initial_params))]

        def rhs(t_, y_):
            return self.system.rhs(t_, y_, scalars, ops)  # (batch, dim)

        y_next = ode_step(rhs, t, y, dt, self.method)  # (batch, dim)
        return y_next, [y_next]

    def get_config(self):
        return {**super().get_config(), "system": self.system.name,
                "params": list(self.initial_params), "method": self.method,
                "positive": self.positive}


@keras.saving.register_keras_serializable(package="kexue")
class LearnedInitialState(keras.layers.Layer):
    """Trainable initial states y(t0), one row per trajectory: (n, dim), batch taken from the
    input (one row per example; the input's batch must be n, or n must be 1).

    Fitting y(t0) instead of taking the first (noisy) observation as exact keeps that one
    observation's noise from biasing every parameter. ``positive`` trains them in log space."""

    def __init__(self, values, positive: bool = True, **kwargs):
        super().__init__(**kwargs)
        values = np.asarray(values, dtype="float64")
        if values.ndim != 2:
            raise ValueError(f"LearnedInitialState: values must be (trajectories, dim), got "
                             f"shape {values.shape}")
        if positive and values.min() <= 0:
            raise ValueError("LearnedInitialState: positive=True needs values > 0")
        self.values, self.positive = values.tolist(), positive
        raw = np.log(values) if positive else values
        self.raw_values = self.add_weight(
            shape=values.shape, name="log_values" if positive else "values",
            initializer=keras.initializers.Constant(raw.astype("float32")))

    def call(self, inputs):  # inputs: (batch, ...) with batch = n (or any batch when n = 1)
        values = ops.exp(self.raw_values) if self.positive else ops.convert_to_tensor(self.raw_values)  # (n, dim)
        # tie the batch to the input's, so an RNN's while loop sees one (dynamic) batch shape
        zeros = ops.zeros_like(ops.reshape(inputs, (ops.shape(inputs)[0], -1))[:, :1])  # (batch, 1)
        return zeros + ops.cast(values, zeros.dtype)  # (batch, dim)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.values[0]))

    def get_config(self):
        return {**super().get_config(), "values": self.values, "positive": self.positive}


def time_grid(times: Sequence[float], max_step: float, t0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """RNN inputs that integrate from ``t0`` through every time in ``times`` (sorted, > t0 or
    equal to it), each interval split into equal steps no longer than ``max_step``.

    Returns ``steps`` (n_steps, 2) of [t, dt] and ``index`` (len(times),): the position of each
    time in the state sequence [y(t0), y after step 1, ..., y after step n_steps]."""
    if max_step <= 0:
        raise ValueError(f"time_grid: max_step = {max_step}: expected > 0")
    times = np.asarray(times, dtype="float64")
    if times.size and (np.any(np.diff(times) < 0) or times[0] < t0):
        raise ValueError("time_grid: times must be sorted and not before t0")
    rows, index, now = [], [], t0
    for t in times:
        gap = t - now
        n = math.ceil(gap / max_step - 1e-9) if gap > 0 else 0
        for k in range(n):
            rows.append((now + k * gap / n, gap / n))
        now = t
        index.append(len(rows))
    steps = np.asarray(rows, dtype="float32").reshape(-1, 2)
    return steps, np.asarray(index, dtype=np.int64)
