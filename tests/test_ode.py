"""The ODE cell: solver steps against closed forms and SciPy, parameter fitting, saving; the
family's params validation."""

from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from scipy.integrate import solve_ivp

from kexue.config import ConfigError, load_section, parse
from kexue.families import ode, ode_problem
from kexue.layers import LearnedInitialState, ODECell, get_ode_system, time_grid
from kexue.peers import ode as ode_peers

ROOT = Path(__file__).resolve().parents[1]
LV_TRUE = {"a": 1.0, "b": 0.1, "c": 0.02, "d": 0.5}


def _one_step(method: str, lam: float, h: float, y0: float) -> float:
    cell = ODECell("linear", [lam], method=method, positive=False)
    step = np.array([[0.0, h]], "float32")  # (batch, 2): t, dt
    y, _ = cell(step, [np.array([[y0]], "float32")])
    return float(np.asarray(y)[0, 0])


@pytest.mark.parametrize(("lam", "h"), [(-0.7, 0.25), (1.3, 0.1), (-3.0, 0.05)])
def test_one_step_against_the_closed_form_of_a_linear_ode(lam, h):
    """y' = λy from y0: the exact step is y0·exp(λh); RK4 is its Taylor polynomial of degree 4
    (error ≤ |λh|^5/120·e^|λh|), Euler is y0·(1 + λh)."""
    y0, z = 1.7, lam * h
    rk4 = _one_step("rk4", lam, h, y0)
    assert rk4 == pytest.approx(y0 * (1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24), rel=1e-6)
    assert abs(rk4 - y0 * np.exp(z)) <= y0 * abs(z) ** 5 / 120 * np.exp(abs(z)) + 1e-6
    assert _one_step("euler", lam, h, y0) == pytest.approx(y0 * (1 + z), rel=1e-6)
    # a zero-length step (padding in time_grid's sense) changes nothing
    assert _one_step("rk4", lam, 0.0, y0) == pytest.approx(y0, rel=1e-7)


def test_time_grid_hits_every_time_with_short_steps():
    times = [0.0, 0.3, 0.3, 1.0, 2.35]
    steps, index = time_grid(times, 0.25)
    assert steps[:, 1].max() <= 0.25 + 1e-7
    ends = np.concatenate([[0.0], steps[:, 0] + steps[:, 1]])  # time of each state
    np.testing.assert_allclose(ends[index], times, atol=1e-6)
    with pytest.raises(ValueError, match="sorted"):
        time_grid([1.0, 0.5], 0.1)


def _lv_rnn(method: str, times: np.ndarray, step: float, y0) -> np.ndarray:
    steps, index = time_grid(times, step)
    rnn = keras.layers.RNN(ODECell("lotka_volterra", LV_TRUE, method=method), return_sequences=True)
    path = np.asarray(rnn(steps[None], initial_state=[np.array([y0], "float32")]))[0]
    return np.concatenate([[y0], path])[index]  # (len(times), 2)


def test_cell_in_keras_rnn_reproduces_solve_ivp():
    system, y0 = get_ode_system("lotka_volterra"), [40.0, 9.0]
    times = np.linspace(0.0, 4.0, 9)
    exact = solve_ivp(system.numpy_rhs(list(LV_TRUE.values())), (0, 4), y0, t_eval=times,
                      method="DOP853", rtol=1e-11, atol=1e-11).y.T
    rk4_error = np.abs(_lv_rnn("rk4", times, 0.05, y0) - exact).max()
    euler_error = np.abs(_lv_rnn("euler", times, 0.05, y0) - exact).max()
    assert rk4_error < 2e-3  # float32 round-off dominates RK4's truncation error here
    assert euler_error > 100 * rk4_error  # first order: visibly off at the same step


def test_gradient_descent_recovers_a_rate_from_noise_free_observations():
    keras.utils.set_random_seed(0)
    times = np.linspace(0.0, 2.0, 9)
    steps, index = time_grid(times, 0.1)
    target = np.zeros((1, len(steps) + 1, 1), "float32")
    target[0, index, 0] = 2.0 * np.exp(0.8 * times)  # y' = 0.8 y, y(0) = 2
    weight = np.zeros((1, len(steps) + 1), "float32")
    weight[0, index] = 1.0
    inputs = keras.Input((None, 2))
    y0 = LearnedInitialState([[2.0]], name="initial_state")(inputs)
    path = keras.layers.RNN(ODECell("linear", [0.3], name="cell"), return_sequences=True,
                            name="ode")(inputs, initial_state=[y0])
    start = keras.layers.Reshape((1, 1))(y0)
    model = keras.Model(inputs, keras.layers.Concatenate(axis=1)([start, path]))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", jit_compile=True)
    # the one trajectory 10 times per epoch: 10 gradient steps per Keras epoch loop
    model.fit(np.repeat(steps[None], 10, 0), np.repeat(target, 10, 0),
              sample_weight=np.repeat(weight, 10, 0), batch_size=1, epochs=15, verbose=0)
    lam = model.get_layer("ode").cell.parameter_dict()["lam"]
    assert lam == pytest.approx(0.8, rel=0.01)  # from 0.3


def test_saved_model_reloads_with_safe_mode(tmp_path):
    system = get_ode_system("lotka_volterra")
    model = ode.build_model(system, LV_TRUE, [[40.0, 9.0], [20.0, 5.0]], "rk4")
    model.get_layer("ode").cell.raw_params.assign(np.log([1.1, 0.09, 0.021, 0.45]))
    steps, _ = time_grid(np.linspace(0, 3, 7), 0.1)
    x = np.repeat(steps[None], 2, axis=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-6)
    cell = loaded.get_layer("ode").cell
    assert cell.get_config()["system"] == "lotka_volterra" and cell.method == "rk4"
    assert cell.parameter_dict()["a"] == pytest.approx(1.1, rel=1e-6)
    params, y0 = ode.fitted_values(loaded)
    assert y0.shape == (2, 2) and y0[1, 0] == pytest.approx(20.0, rel=1e-6)


def _config(**changes) -> dict:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["ode"]
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    return raw


def test_committed_params_are_valid():
    cfg = load_section("ode", ode.Config, ROOT / "params.yaml")
    assert cfg.method in ("euler", "rk4") and cfg.simulate.horizon > cfg.simulate.fit_until
    load_section("baselines.ode", ode_peers.BaselineConfig, ROOT / "params.yaml")


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"system": "lorenz"}, ["ode.system = 'lorenz'", "lotka_volterra"]),
        ({"method": "rk5"}, ["ode.method = 'rk5'", "one of euler | rk4"]),
        ({"initial_guess": {"a": 1.0, "b": 0.1, "c": 0.02}}, ["ode.initial_guess", "a, b, c, d"]),
        ({"simulate__true_params": {**LV_TRUE, "b": -0.1}}, ["ode.simulate.true_params.b = -0.1", "> 0"]),
        ({"simulate__horizon": 10.0}, ["ode.simulate.horizon = 10.0", "> simulate.fit_until"]),
        ({"simulate__initial_states": [[40.0]]}, ["initial_states[0]", "2 values > 0 (prey, predator)"]),
        ({"step_size": 0.0}, ["ode.step_size = 0.0", ">= 0.0001"]),
        ({"fit__epochs": "many"}, ["ode.fit.epochs = 'many'", "an integer"]),
    ],
)
def test_bad_params_name_key_value_and_expectation(changes, fragments):
    with pytest.raises(ConfigError) as info:
        parse(ode.Config, _config(**changes), "ode")
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_fit_recovers_lotka_volterra_and_matches_the_scipy_peer():
    """A small noise-free problem, both fitters from a 10% wrong guess, run twice: same
    numbers (the determinism the pipeline promises)."""
    raw = _config(simulate__noise=0.0, simulate__fit_until=6.0, simulate__horizon=8.0,
                  simulate__observations=12, simulate__eval_step=0.5, step_size=0.2,
                  initial_guess={"a": 1.1, "b": 0.09, "c": 0.022, "d": 0.45},
                  fit__epochs=120)
    raw["fit"]["optimizer"]["schedule"] = {0: 1.0, 120: 0.05}
    raw["fit"]["optimizer"]["learning_rate"] = 0.05
    cfg = parse(ode.Config, raw, "ode")
    problem = ode_problem.Problem(get_ode_system(cfg.system), cfg.simulate.true_params, 6.0,
                          **{k: np.asarray(v) for k, v in ode_problem.simulate(cfg.system, cfg.simulate).items()
                             if k in ("obs_times", "observations", "eval_times", "truth")})
    fits = [ode.fitted_values(ode.fit_keras(cfg, problem)[0])[0] for _ in range(2)]
    assert fits[0] == fits[1]
    for name, true in LV_TRUE.items():
        assert fits[0][name] == pytest.approx(true, rel=0.02), fits[0]
    peer_cfg = parse(ode_peers.BaselineConfig, {"solver": "DOP853", "rtol": 1e-9, "atol": 1e-9,
                                          "diff_step": 1e-5, "max_nfev": 100}, "b")
    peer = ode_peers.fit_scipy(peer_cfg, problem, cfg.initial_guess)["fitted_params"]
    for name, true in LV_TRUE.items():
        assert peer[name] == pytest.approx(true, rel=1e-3), peer


def test_point_errors_split_the_grid_at_fit_until_and_feed_the_comparison():
    """Squared errors per time point, averaged over the populations, fit range → valid and held
    out → test; a curve closer to the truth wins the paired bootstrap with an interval below 0."""
    times = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    truth = np.zeros((1, 5, 2))
    problem = ode_problem.Problem(get_ode_system("lotka_volterra"), LV_TRUE, 2.0, obs_times=times[:3],
                          observations=truth[:, :3], eval_times=times, truth=truth)
    curve = np.zeros((1, 5, 2))
    curve[0, :, 0] = [1.0, 2.0, 3.0, 4.0, 5.0]  # prey off by 1..5, predator exact
    items = ode.point_errors(problem, curve)
    np.testing.assert_allclose(items["valid"], [0.5, 2.0, 4.5])  # t = 0, 1, 2 (fit_until included)
    np.testing.assert_allclose(items["test"], [8.0, 12.5])
    from kexue.comparison import comparison_block

    block = comparison_block("mse_vs_truth", ode.point_errors(problem, curve / 10),
                             {"scipy": items}, higher_is_better=False)
    assert block["peer"] == "scipy"
    assert block["test"]["delta"] == pytest.approx((0.08 + 0.125) / 2 - (8.0 + 12.5) / 2, abs=1e-4)
    assert block["valid"]["delta"] == pytest.approx((0.005 + 0.02 + 0.045) / 3 - 7.0 / 3, abs=1e-4)
    assert block["valid"]["ci95"][1] < 0
