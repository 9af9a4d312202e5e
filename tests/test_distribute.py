"""tf.distribute: MirroredStrategy over 2 logical CPUs matches single-device training."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kexue.families import sentiment
from kexue.train import FitConfig, OptimizerConfig, make_strategy

OPT = OptimizerConfig(name="adam", learning_rate=0.01, schedule={}, weight_decay=0.0,
                      global_clipnorm=0.0, gradient_accumulation_steps=1, use_ema=False,
                      ema_momentum=0.99, lr_multipliers={}, lookahead_k=0, lookahead_alpha=0.5)
CFG = sentiment.Config(
    maxlen=24, min_count=1, bigrams=True, bigram_min_count=1, embedding_dim=8, encoder="gru",
    units=8, pooling="max", dropout=0.0, members=1,  # no dropout: replicas would draw different masks
    fit=FitConfig(epochs=1, batch_size=16, seed=5, deterministic=False, distribute="none",
                  optimizer=OPT),
)

WORKER = """
import json, sys
from kexue.config import parse
from kexue.families import sentiment
from kexue.train import split_cpu
split_cpu(2)
import tensorflow as tf
cfg = parse(sentiment.Config, json.loads(sys.argv[1]), "sentiment")
info = sentiment.train(cfg, sys.argv[2], sys.argv[3], None)
print(json.dumps({"loss": info["history"]["loss"], "devices": len(tf.config.list_logical_devices("CPU"))}))
"""


def _run(cfg, data, out):
    proc = subprocess.run([sys.executable, "-c", WORKER, json.dumps(dataclasses.asdict(cfg)),
                           str(data), str(out)], capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_mirrored_on_two_logical_cpus_matches_single_device(tmp_path, toy_reviews):
    """The sentiment model (Adam) for one epoch: same loss within float noise."""
    data = toy_reviews
    cfg = CFG
    single = _run(cfg, data, tmp_path / "single")
    mirrored_cfg = dataclasses.replace(cfg, fit=dataclasses.replace(cfg.fit, distribute="mirrored"))
    mirrored = _run(mirrored_cfg, data, tmp_path / "mirrored")
    assert single["devices"] == mirrored["devices"] == 2
    np.testing.assert_allclose(mirrored["loss"], single["loss"], rtol=1e-3)


def test_multi_worker_without_tf_config_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        make_strategy("multi_worker")


WRAPPERS = """
from kexue.train import split_cpu
split_cpu(2)
import json
import keras
import numpy as np
import tensorflow as tf
from kexue.optimizers import Lookahead, apply_lr_multipliers

rng = np.random.default_rng(0)
x = rng.normal(size=(16, 4)).astype("float32")
y = (x.sum(1, keepdims=True) > 0).astype("float32")


def run(strategy, kind):
    keras.utils.set_random_seed(1)
    with strategy.scope():
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a"),
                              keras.layers.Dense(1, name="b")])
        opt = keras.optimizers.SGD(0.1)
        if "mult" in kind:
            opt = apply_lr_multipliers(opt, m, {"a": 0.5})
        if "la" in kind:
            opt = Lookahead(opt, k=2, alpha=0.5)
        m.compile(opt, "mse")
    m.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False)
    return m.get_weights()


devices = [d.name for d in tf.config.list_logical_devices("CPU")]
out = {}
for kind in ["plain", "mult", "la", "mult+la"]:
    a = run(tf.distribute.get_strategy(), kind)
    b = run(tf.distribute.MirroredStrategy(devices), kind)
    moved = max(float(np.abs(u - v).max()) for u, v in zip(a, run(tf.distribute.get_strategy(), "x")))
    out[kind] = {"diff": max(float(np.abs(u - v).max()) for u, v in zip(a, b)), "moved": moved}
print(json.dumps(out))
"""


def test_optimizer_wrappers_under_mirrored_match_single_device():
    """Multipliers and Lookahead on 2 replicas: the same weights as on one device (SGD, 3 steps)."""
    proc = subprocess.run([sys.executable, "-c", WRAPPERS], capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for kind, result in out.items():
        assert result["diff"] < 1e-6, (kind, result)
    assert out["mult"]["moved"] > 1e-4 and out["la"]["moved"] > 1e-4  # the wrappers do something
