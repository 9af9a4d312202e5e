"""tf.distribute: MirroredStrategy over 2 logical CPUs, and MultiWorkerMirroredStrategy over two
local worker processes, match single-device training."""

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

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


# --- MultiWorkerMirroredStrategy: two local worker processes --------------------------------

STAGE = """
import json, sys
from pathlib import Path
from kexue import checkpoint, workers
from kexue.stages import train as stage

record = Path(sys.argv[1])
save = checkpoint.CheckpointFolder.save


def recorded(self, *args, **kwargs):  # note where each checkpoint unit went
    unit = save(self, *args, **kwargs)
    with open(record, "a") as handle:
        handle.write(json.dumps({"unit": str(unit), "chief": workers.is_chief()}) + "\\n")
    return unit


checkpoint.CheckpointFolder.save = recorded
sys.exit(stage.main(sys.argv[2:]))
"""


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _stage(root: Path, name: str, data: Path, tf_config: dict | None) -> subprocess.Popen:
    (root / f"tmp-{name}").mkdir()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1",
               TMPDIR=str(root / f"tmp-{name}"))
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    out = root / name
    return subprocess.Popen(
        [sys.executable, "-c", STAGE, str(root / f"units-{name}.jsonl"), "sentiment",
         "--data", str(data), "--model", str(out / "model"), "--live", str(out / "live"),
         "--resume-root", str(out / "checkpoints")],
        cwd=root / ("multi" if tf_config else "single"), env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_multi_worker_two_processes_match_one_and_only_the_chief_writes(tmp_path, toy_reviews):
    """The train stage of the sentiment family under MultiWorkerMirroredStrategy with two local
    workers (one process each, CPU, TF_CONFIG) against one process with the same global batch:
    the same losses after 2 epochs x 3 steps (to 1e-5 relative), and only the chief's model,
    curves and checkpoint units are left (the other worker's went to a removed temp folder)."""
    fit = dataclasses.replace(CFG.fit, epochs=2, batch_size=32)  # 96 examples: 3 steps an epoch
    for kind, distribute in (("single", "none"), ("multi", "multi_worker")):
        cfg = dataclasses.replace(CFG, fit=dataclasses.replace(fit, distribute=distribute))
        (tmp_path / kind).mkdir()
        (tmp_path / kind / "params.yaml").write_text(
            json.dumps({"sentiment": dataclasses.asdict(cfg)}))  # JSON is YAML
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    procs = {"single": _stage(tmp_path, "single", toy_reviews, None)}
    for index in range(2):
        procs[f"worker{index}"] = _stage(tmp_path, f"worker{index}", toy_reviews, {
            "cluster": cluster, "task": {"type": "worker", "index": index}})
    outputs = {}
    try:
        for name, proc in procs.items():  # a hung collective ends here, not in a hung suite
            outputs[name] = proc.communicate(timeout=240)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for name, proc in procs.items():
        assert proc.returncode == 0, (name, outputs[name][1][-3000:])

    single = json.loads((tmp_path / "single" / "model" / "train_info.json").read_text())
    chief = json.loads((tmp_path / "worker0" / "model" / "train_info.json").read_text())
    for key in ("loss", "val_loss"):
        assert len(chief["history"][key]) == 2
        np.testing.assert_allclose(chief["history"][key], single["history"][key], rtol=1e-5)

    # the chief: model, curves, one unit per epoch in its checkpoint folder (discarded at the end)
    assert (tmp_path / "worker0" / "model" / "model.keras").is_file()
    assert (tmp_path / "worker0" / "live" / "plots" / "metrics" / "train" / "loss.tsv").is_file()
    units = [json.loads(line) for line in (tmp_path / "units-worker0.jsonl").read_text().splitlines()]
    assert [Path(u["unit"]).name for u in units] == ["epoch-0001", "epoch-0002"]
    assert all(u["chief"] and Path(u["unit"]).is_relative_to(tmp_path / "worker0" / "checkpoints")
               for u in units)
    # the other worker: saved too (every worker takes part), but only into its temp folder,
    # which is gone; none of its model, curves or checkpoint paths exists
    units = [json.loads(line) for line in (tmp_path / "units-worker1.jsonl").read_text().splitlines()]
    assert len(units) == 2
    assert all(not u["chief"] and Path(u["unit"]).is_relative_to(tmp_path / "tmp-worker1")
               for u in units)
    assert not (tmp_path / "worker1").exists()
    assert list((tmp_path / "tmp-worker1").iterdir()) == []
