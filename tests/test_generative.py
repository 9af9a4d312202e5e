"""The generative families: NICE's layers, the single-loss GAN, the VAE's bounds,
bits/dim, FMNIST-FID, and a tiny train → evaluate → `kexue generate` round trip."""

import dataclasses
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from kexue import fid, pixels
from kexue.config import ConfigError, parse
from kexue.peers import generative as gmm

OPTIMIZER = {"name": "adam", "learning_rate": 1e-3, "schedule": {}, "weight_decay": 0.0,
             "global_clipnorm": 0.0, "gradient_accumulation_steps": 1, "use_ema": False,
             "ema_momentum": 0.99, "lr_multipliers": {}, "lookahead_k": 0, "lookahead_alpha": 0.5}
FIT = {"epochs": 1, "batch_size": 16, "seed": 0, "deterministic": False, "distribute": "none",
       "optimizer": OPTIMIZER}
PARAMS = {
    "vae": {"arch": "mlp", "latent": 4, "width": 16, "hidden_layers": 1, "importance_samples": 8,
            "valid_size": 20, "limit_train": 0, "fid_samples": 40, "fit": FIT},
    "nice": {"couplings": 4, "depth": 1, "width": 16, "prior": "logistic", "preprocess": "logit",
             "logit_alpha": 0.05, "valid_size": 20, "limit_train": 0, "fid_samples": 40,
             "temperature": 1.0, "fit": FIT},
    "gan": {"latent": 8, "width": 4, "lam": 1.0, "spectral_norm": True, "beta_1": 0.5,
            "valid_size": 20, "limit_train": 0, "fid_samples": 40, "fit": FIT},
}


def config(family: str, **changes):
    import importlib

    module = importlib.import_module(f"kexue.families.{family}")
    return parse(module.Config, {**PARAMS[family], **changes}, family)


def randomize(layer: keras.layers.Layer, seed: int = 0, scale: float = 0.3) -> None:
    """Non-zero weights everywhere (the shift layers start at zero: the identity)."""
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(scale * rng.standard_normal(w.shape).astype("float32"))


# ---------------------------------------------------------------------------------------------
# NICE


@pytest.mark.parametrize("preprocess", ["none", "logit"])
def test_nice_inverse_undoes_forward(preprocess):
    from kexue.families.nice import NiceFlow

    flow = NiceFlow(couplings=4, depth=2, width=16, preprocess=preprocess, logit_alpha=0.05)
    flow.build((None, 8))
    randomize(flow, seed=1)
    x = np.random.default_rng(2).uniform(0.01, 0.99, (5, 8)).astype("float32")
    h, _ = flow.forward(x)
    assert not np.allclose(h, x, atol=1e-2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(flow.inverse(h)), x, atol=1e-5)


def test_coupling_layers_are_invertible_and_exported():
    from kexue.layers import AdditiveCoupling, DiagonalScale

    x = np.random.default_rng(0).standard_normal((3, 6)).astype("float32")
    for parity in (0, 1):
        layer = AdditiveCoupling(parity, width=8, depth=2)
        layer.build((None, 6))
        randomize(layer)
        y = keras.ops.convert_to_numpy(layer(x))
        kept = slice(0, None, 2) if parity == 0 else slice(1, None, 2)
        np.testing.assert_array_equal(y[:, kept], x[:, kept])  # the kept half passes unchanged
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.inverse(y)), x, atol=1e-5)
        assert AdditiveCoupling.from_config(layer.get_config()).parity == parity
    scale = DiagonalScale()
    scale.build((None, 6))
    randomize(scale)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scale.inverse(scale(x))), x, atol=1e-5)
    assert float(scale.log_det()) == pytest.approx(float(np.sum(scale.log_scale.numpy())))
    with pytest.raises(ValueError, match="even"):
        AdditiveCoupling().build((None, 5))


@pytest.mark.parametrize("preprocess", ["none", "logit"])
def test_nice_log_det_matches_the_numerical_jacobian(preprocess):
    from kexue.families.nice import NiceFlow

    flow = NiceFlow(couplings=3, depth=2, width=8, preprocess=preprocess, logit_alpha=0.05)
    flow.build((None, 6))
    randomize(flow, seed=3)
    x = tf.constant(np.random.default_rng(4).uniform(0.05, 0.95, (4, 6)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        h, log_det = flow.forward(x)
    jacobian = tape.batch_jacobian(h, x).numpy().astype(np.float64)  # (4, 6, 6)
    _, expected = np.linalg.slogdet(jacobian)
    np.testing.assert_allclose(log_det.numpy(), expected, rtol=1e-4, atol=1e-4)
    assert np.abs(expected).max() > 0.01  # the scale (and the logit map) are really counted


def test_nice_bits_per_dim_is_the_log_likelihood():
    from kexue.families.nice import NiceFlow

    flow = NiceFlow(couplings=2, depth=1, width=4, prior="gaussian")
    flow.build((None, 4))
    x = np.full((1, 4), 0.5, np.float32)  # identity flow at init: h = x, standard normal prior
    expected = 4 * (0.5 * 0.25 + 0.5 * math.log(2 * math.pi))  # -log p(x), 4 dims
    assert float(flow(x)[0]) == pytest.approx(pixels.bits_per_dim(expected, 4), rel=1e-5)


# ---------------------------------------------------------------------------------------------
# the single-loss GAN


def test_single_loss_gradients_equal_the_two_losses():
    from kexue.families.gan import (
        build_discriminator,
        build_generator,
        hinge_d_loss,
        hinge_g_loss,
        single_loss,
    )

    keras.utils.set_random_seed(0)
    generator, discriminator = build_generator(3, 2), build_discriminator(2, spectral_norm=False)
    real = tf.constant(np.random.default_rng(0).uniform(0, 1, (4, 28, 28)), tf.float32)
    z = tf.constant(np.random.default_rng(1).standard_normal((4, 3)), tf.float32)
    g_vars, d_vars = generator.trainable_variables, discriminator.trainable_variables
    lam = 0.7
    with tf.GradientTape() as tape:
        loss, d_value, g_value = single_loss(generator, discriminator, real, z, lam)
    single = tape.gradient(loss, g_vars + d_vars)
    with tf.GradientTape(persistent=True) as tape:
        fake = generator(z, training=True)
        d_loss = hinge_d_loss(discriminator(real, training=True),
                              discriminator(tf.stop_gradient(fake), training=True))
        g_loss = hinge_g_loss(discriminator(fake, training=True))
    d_grads = tape.gradient(d_loss, d_vars)
    g_grads = tape.gradient(g_loss, g_vars)
    assert float(d_value) == pytest.approx(float(d_loss), rel=1e-5)
    assert float(g_value) == pytest.approx(float(g_loss), rel=1e-5)
    for got, want in zip(single[:len(g_vars)], g_grads, strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)
    for got, want in zip(single[len(g_vars):], d_grads, strict=True):
        np.testing.assert_allclose(got.numpy(), lam * want.numpy(), rtol=1e-4, atol=1e-6)
    assert any(np.abs(g.numpy()).max() > 0 for g in g_grads)


# ---------------------------------------------------------------------------------------------
# VAE, bits/dim


def test_bits_per_dim_of_the_uniform_density_is_eight():
    assert pixels.bits_per_dim(0.0) == pytest.approx(8.0)  # p(x) = 1 on [0, 1]^784
    assert pixels.bits_per_dim(0.0, dims=3) == pytest.approx(8.0)
    # a density twice as high (on half the cube) saves exactly one bit per... 784 dims
    assert pixels.bits_per_dim(-math.log(2.0)) == pytest.approx(8.0 - 1 / 784)
    assert pixels.nll_from_bits(pixels.bits_per_dim(123.0)) == pytest.approx(123.0)


def test_discretized_logistic_is_a_distribution_over_the_256_bins():
    from kexue.families.vae import discretized_logistic_log_prob

    x = ((np.arange(256) + 0.5) / 256).astype(np.float32)[:, None]  # every bin once
    for loc, log_scale in ((0.3, -3.0), (0.0, -7.0), (0.999, -1.0), (1.7, -5.0)):
        logp = discretized_logistic_log_prob(x, np.float32(loc), np.float32(log_scale))
        assert np.exp(keras.ops.convert_to_numpy(logp).astype(np.float64)).sum() == pytest.approx(1.0, abs=1e-4)


def test_vae_importance_sampled_nll_is_below_the_negative_elbo():
    from kexue.families.vae import build_model, elbo_and_nll

    keras.utils.set_random_seed(0)
    _, encoder, decoder = build_model(config("vae"))
    x = pixels.dequantize(np.random.default_rng(0).integers(0, 256, (6, 784)), np.random.default_rng(1))
    scores = elbo_and_nll(encoder, decoder, x, k=16, seed=0)
    assert scores["nll_bits_per_dim"] <= scores["negative_elbo_bits_per_dim"]
    one = elbo_and_nll(encoder, decoder, x, k=1, seed=0)  # k = 1: the two are the same estimate
    assert one["nll_bits_per_dim"] == pytest.approx(one["negative_elbo_bits_per_dim"], abs=1e-4)


def test_vae_conv_shapes():
    from kexue.families.vae import build_model

    model, encoder, decoder = build_model(config("vae", arch="conv", width=4))
    x = np.random.default_rng(0).uniform(0, 1, (3, 784)).astype("float32")
    assert tuple(encoder(x).shape) == (3, 8) and tuple(decoder(np.zeros((3, 4), "float32")).shape) == (3, 784, 2)
    assert tuple(model(x).shape) == (3,)


# ---------------------------------------------------------------------------------------------
# FID


def test_fid_of_a_set_with_itself_is_zero():
    features = np.random.default_rng(0).standard_normal((500, 5)) @ np.random.default_rng(1).standard_normal((5, 5))
    assert fid.fid(features, features) == pytest.approx(0.0, abs=1e-7)


def test_frechet_distance_matches_the_closed_form():
    from scipy.linalg import sqrtm

    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.0])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 1.0])
    diagonal = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert fid.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(diagonal)
    rng = np.random.default_rng(5)
    m1, m2 = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(4), m2 @ m2.T + 0.1 * np.eye(4)  # not commuting
    reference = np.sum((mu1[:1] - mu2[:1]) ** 2) * 0 + np.trace(s1 + s2 - 2 * np.real(sqrtm(s1 @ s2)))
    assert fid.frechet_distance(np.zeros(4), s1, np.zeros(4), s2) == pytest.approx(reference, rel=1e-6)
    assert fid.frechet_distance(0.0, 4.0, 3.0, 1.0) == pytest.approx(9.0 + 1.0)  # 1-D: (μ1-μ2)² + (σ1-σ2)²


# ---------------------------------------------------------------------------------------------
# round trip on fake Fashion-MNIST


@pytest.fixture(scope="module")
def fake_setup(tmp_path_factory):
    """Fake idx files and an untrained (random) image classifier saved as models/image is."""
    from test_image import make_config, write_fake_fashion

    from kexue.families.image import build_model
    from kexue.io import write_json

    root = tmp_path_factory.mktemp("generative")
    data = write_fake_fashion(root / "fmnist", train_per_class=8, test_per_class=4)
    classifier = build_model(make_config(arch="vgg", width=4, blocks=1, batch_norm=False))
    (root / "image").mkdir()
    classifier.save(root / "image" / "model.keras")
    write_json(root / "image" / "train_info.json", {"config": {}, "classes": []})
    return root, data, root / "image"


@pytest.mark.parametrize("family", ["vae", "nice", "gan"])
def test_train_evaluate_generate_round_trip(family, fake_setup, tmp_path, capsys):
    import importlib

    from PIL import Image

    from kexue import cli

    _, data, classifier = fake_setup
    module = importlib.import_module(f"kexue.families.{family}")
    info = module.train(config(family), data, tmp_path / "model", tmp_path / "live", None)
    assert info["epochs_run"] == 1 and info["train_examples"] == 60
    metrics = module.evaluate(tmp_path / "model", data, classifier, tmp_path / "plots")
    assert metrics["test"]["fid"] >= 0 and metrics["test"]["fid_floor_test_vs_train"] >= 0
    if family == "vae":
        assert metrics["test"]["nll_bits_per_dim"] <= metrics["test"]["negative_elbo_bits_per_dim"]
        assert metrics["test"]["examples"] == 40 and (tmp_path / "plots" / "traversal.png").is_file()
    if family == "nice":
        assert 0 < metrics["test"]["bits_per_dim"] < 20
        _stages_score_the_peer_with_the_models_classifier(tmp_path, data, classifier)
    with Image.open(tmp_path / "plots" / "samples.png") as grid:
        assert grid.size[0] > 8 * 28
    capsys.readouterr()
    out = tmp_path / "grid.png"
    assert cli.main(["generate", family, "-n", "16", "--out", str(out),
                     "--model", str(tmp_path / "model")]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 16
    with Image.open(out) as grid:
        assert grid.size == (2 * (8 * 30 + 2), 2 * (2 * 30 + 2))  # 8 × 2 cells of 28 px + gaps, ×2
    np.testing.assert_array_equal(module.sample(tmp_path / "model", 3, seed=5),
                                  module.sample(tmp_path / "model", 3, seed=5))


def _stages_score_the_peer_with_the_models_classifier(tmp_path, data, classifier):
    """baselines_generative fits the mixture without the classifier; evaluate_nice scores its
    samples by FMNIST-FID with the classifier the model's samples are scored with."""
    import os

    import yaml

    from kexue.stages import baselines_generative, evaluate_generative

    section = {"components": {"diag": [1, 2]}, "reg_covar": 1e-4, "max_train": 0,
               "init_params": "k-means++", "max_iter": 10,
               "eval_every": 5, "min_gain": 0.0, "valid_size": 20, "fid_samples": 30, "seed": 0}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"baselines": {"generative": section}}))
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert baselines_generative.main(["--data", str(data), "--out", "peer.json",
                                          "--samples", "peer.npy", "--plots", "gmm"]) == 0
        peer = json.loads((tmp_path / "peer.json").read_text())
        assert "fid" not in peer["test"] and (tmp_path / "gmm" / "samples.png").is_file()
        assert evaluate_generative.main(["nice", "--data", str(data), "--model", "model",
                                         "--classifier", str(classifier), "--peers", "peer.json",
                                         "--peer-samples", "peer.npy", "--out", "nice.json"]) == 0
    finally:
        os.chdir(here)
    out = json.loads((tmp_path / "nice.json").read_text())
    scorer = fid.FidScorer(classifier, data)
    mixture = out["peers"]["gaussian_mixture"]["test"]
    assert mixture["fid"] == fid.significant(scorer(np.load(tmp_path / "peer.npy")))
    assert mixture["fid_floor_test_vs_train"] == out["test"]["fid_floor_test_vs_train"]
    assert out["comparison"]["peer"] == "gaussian_mixture"
    assert out["comparison_fid"]["test"]["peer"] == mixture["fid"]


def test_generate_errors_clearly(tmp_path, capsys):
    from kexue import cli

    assert cli.main(["generate", "nice", "-n", "0", "--out", str(tmp_path / "g.png")]) == 1
    assert "-n must be >= 1" in capsys.readouterr().err
    assert cli.main(["generate", "vae", "--out", str(tmp_path / "g.png"),
                     "--model-dir", str(tmp_path / "none")]) == 1
    assert "train the model first" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["generate", "pixelcnn", "--out", str(tmp_path / "g.png")])


def test_fid_features_and_a_known_floor(fake_setup):
    from kexue.corpora.fashion_mnist import load_split

    _, data, classifier = fake_setup
    extractor = fid.feature_extractor(fid.load_classifier(classifier))
    images = load_split(data, "test")[0]
    eager = np.concatenate([keras.ops.convert_to_numpy(extractor(images[i:i + 7], training=False))
                            for i in range(0, len(images), 7)])
    np.testing.assert_allclose(fid.image_features(extractor, images, batch_size=7), eager, rtol=1e-6)
    scorer = fid.FidScorer(classifier, data)
    known = fid.FidScorer(classifier, data, floor=scorer.floor())
    assert known.floor() == scorer.floor() and known(images[:20]) == scorer(images[:20])


def test_gaussian_mixture_peer(fake_setup, tmp_path):
    _, data, classifier = fake_setup
    cfg = gmm.BaselineConfig(components={"diag": [1, 2]}, reg_covar=1e-4, max_train=0,
                             init_params="kmeans", max_iter=20, eval_every=5, min_gain=0.0, valid_size=20,
                             fid_samples=30, seed=0)
    result = gmm.gaussian_mixture_peer(cfg, data, tmp_path / "gmm.png",
                                       samples_path=tmp_path / "samples.npy")
    assert 1 <= len(result["candidates"]) <= 2 and result["covariance_type"] == "diag"
    assert 0 < result["test"]["bits_per_dim"] < 20 and "fid" not in result["test"]
    assert (tmp_path / "gmm.png").is_file()
    samples = np.load(tmp_path / "samples.npy")
    assert samples.shape == (30, 28, 28) and samples.dtype == np.uint8
    # the per-image figures behind the paired bootstrap average to the reported ones
    assert np.mean(result["items"]["test"]) == pytest.approx(result["test"]["bits_per_dim"], abs=1e-3)
    assert np.mean(result["items"]["valid"]) == pytest.approx(result["valid"]["bits_per_dim"], abs=1e-3)
    with pytest.raises(ConfigError, match="covariance type"):
        gmm.gaussian_mixture_peer(dataclasses.replace(cfg, components={"banded": [1]}), data)
    with pytest.raises(ConfigError, match="ascending"):
        gmm.gaussian_mixture_peer(dataclasses.replace(cfg, components={"diag": [3, 2]}), data)


def test_em_rounds_continue_one_fit_and_stop_on_valid():
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(0)
    centres = rng.random((3, 6))
    def draw(n):
        return centres[rng.integers(0, 3, n)] + 0.05 * rng.standard_normal((n, 6))
    x_train, x_valid = draw(300), draw(100)
    cfg = gmm.BaselineConfig(components={"full": [3]}, reg_covar=1e-6, max_train=0,
                             init_params="kmeans", max_iter=6,
                             eval_every=2, min_gain=0.0, valid_size=1, fid_samples=2, seed=0)
    def mixture(**kw):
        return GaussianMixture(3, covariance_type="full", tol=0.0, random_state=0, **kw)
    model, bpd, fit = gmm.fit_on_valid(mixture(warm_start=True), x_train, x_valid, cfg)
    # warm-started rounds of 2 EM iterations continue one fit: the kept round is a straight fit
    # of as many iterations
    trace = fit["valid_trace"]
    assert [row[0] for row in trace] == [2, 4, 6][:len(trace)]
    straight = mixture(max_iter=fit["em_iterations"]).fit(x_train)
    np.testing.assert_allclose(model.means_, straight.means_, rtol=1e-8)
    assert bpd == pytest.approx(min(row[1] for row in trace), abs=1e-4)
    assert fit["stopped"] == ("max_iter" if len(trace) == 3 else "valid gain below min_gain")
    # a gain threshold no round can meet stops the fit after its second round, the first kept
    # when the second is worse, the better of the two otherwise
    _, bpd, fit = gmm.fit_on_valid(mixture(warm_start=True), x_train, x_valid,
                                   dataclasses.replace(cfg, min_gain=1e9))
    assert len(fit["valid_trace"]) == 2 and fit["stopped"] == "valid gain below min_gain"
    assert bpd == pytest.approx(min(row[1] for row in fit["valid_trace"]), abs=1e-4)
    assert fit["em_iterations"] == min(fit["valid_trace"], key=lambda row: row[1])[0]


def test_grid_walk_stops_at_the_first_candidate_that_does_not_improve():
    scores = {1: 5.0, 2: 4.0, 3: 4.5, 4: 3.0}
    tried, stopped = gmm.walk_grid([1, 2, 3, 4], scores.__getitem__)
    assert tried == [(1, 5.0), (2, 4.0), (3, 4.5)] and stopped  # 4 is never fitted
    tried, stopped = gmm.walk_grid([1, 2], scores.__getitem__)
    assert tried == [(1, 5.0), (2, 4.0)] and not stopped  # still improving at the end: say so


def test_fid_comparison_known_cases():
    rng = np.random.default_rng(0)
    real = {split: rng.standard_normal((400, 3)) for split in ("valid", "test")}
    same = rng.standard_normal((400, 3))
    shifted = rng.standard_normal((400, 3)) + 2.0  # FID ≈ |shift|² = 12 more
    block = fid.fid_comparison(real, same, shifted, "peer", resamples=200, seed=0)
    for split in ("valid", "test"):
        part = block[split]
        assert part["kexue"] == pytest.approx(fid.fid(same, real[split]), rel=1e-3)
        assert part["delta"] == pytest.approx(-12.0, abs=1.5)
        assert part["ci95"][0] < part["delta"] < part["ci95"][1] < 0  # clearly ahead: CI excludes 0
    tie = fid.fid_comparison(real, same, rng.standard_normal((400, 3)), "peer", resamples=200, seed=0)
    assert tie["test"]["ci95"][0] < 0 < tie["test"]["ci95"][1]  # two draws of the same law: a tie


def test_resample_moments_are_those_of_the_repeated_rows():
    rng = np.random.default_rng(3)
    features = rng.standard_normal((50, 4)) * 0.05 + 0.3
    counts = rng.multinomial(50, np.full(50, 1 / 50))  # some rows twice or more, some not at all
    mean, cov = fid.feature_moments(np.repeat(features, counts, axis=0))
    centre = features.mean(axis=0)
    shift, got = fid._weighted_moments(features - centre, counts)
    np.testing.assert_allclose(centre + shift, mean, rtol=1e-12)
    np.testing.assert_allclose(got, cov, rtol=1e-10, atol=1e-16)


def test_vae_samples_are_draws_of_the_discretised_logistic():
    from kexue.families.vae import draw_pixels

    decoded = np.zeros((25, 784, 2))  # 19,600 pixels, each at location 0.5, scale 0.05
    decoded[..., 0], decoded[..., 1] = 0.5, np.log(0.05)
    pixels = draw_pixels(decoded, np.random.default_rng(0)).reshape(-1).astype(np.float64)
    # a logistic with scale s has standard deviation s·π/√3: 0.0907 of [0, 1], 23.2 pixels
    assert (pixels + 0.5).mean() / 256 == pytest.approx(0.5, abs=0.005)
    assert pixels.std() / 256 == pytest.approx(0.05 * math.pi / math.sqrt(3), rel=0.03)


def test_bad_params_give_clear_errors(fake_setup, tmp_path):
    from kexue.families import gan, nice, vae

    with pytest.raises(ConfigError, match=r"vae\.arch = 'rnn'"):
        config("vae", arch="rnn")
    with pytest.raises(ConfigError, match=r"nice\.prior = 'cauchy'"):
        config("nice", prior="cauchy")
    with pytest.raises(ConfigError, match=r"unknown key 'gan\.lambda'.*"):
        config("gan", **{"lambda": 1.0})
    with pytest.raises(ConfigError, match=r"gan\.lam = 0\.0"):
        gan.check_config(config("gan", lam=0.0))
    with pytest.raises(ConfigError, match=r"nice\.logit_alpha = 0\.0"):
        nice.check_config(config("nice", logit_alpha=0.0))
    _, data, _ = fake_setup
    with pytest.raises(ConfigError, match=r"vae\.valid_size = 500"):
        vae.train(config("vae", valid_size=500), data, tmp_path / "m", None)


def test_fid_classifier_missing_names_its_stage(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model\.keras not found.*dvc repro train_image"):
        fid.load_classifier(tmp_path)
