"""A training run killed with SIGKILL resumes from its last epoch and ends with the same weights
as an uninterrupted run (the DESIGN.md resume convention)."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from kexue.families import sentiment
from kexue.train import FitConfig, OptimizerConfig

CFG = sentiment.Config(
    maxlen=24, min_count=1, bigrams=True, bigram_min_count=1, embedding_dim=8, encoder="gru",
    units=8, pooling="max", dropout=0.2, members=1,
    fit=FitConfig(epochs=3, batch_size=16, seed=5, deterministic=True, distribute="none",
                  optimizer=OptimizerConfig(
                      name="adam", learning_rate=0.01, schedule={}, weight_decay=0.0,
                      global_clipnorm=5.0, gradient_accumulation_steps=1, use_ema=False,
                      ema_momentum=0.99, lr_multipliers={}, lookahead_k=0, lookahead_alpha=0.5)),
)

WORKER = """
import json, sys
from kexue.config import parse
from kexue.families import sentiment
cfg = parse(sentiment.Config, json.loads(sys.argv[1]), "sentiment")
info = sentiment.train(cfg, sys.argv[2], sys.argv[3], None, sys.argv[4] or None)
print(json.dumps({"best_epoch": info["best_epoch"]}))
"""


def _train(data: Path, model_dir: Path, resume_root: Path | None, kill_after: int | None,
           cfg: sentiment.Config = CFG):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("KEXUE_KILL_AFTER_EPOCH", None)
    if kill_after is not None:
        env["KEXUE_KILL_AFTER_EPOCH"] = str(kill_after)
    return subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(dataclasses.asdict(cfg)), str(data),
         str(model_dir), str(resume_root or "")],
        env=env, capture_output=True, text=True,
    )


def _weights(model_dir: Path) -> list[np.ndarray]:
    return keras.saving.load_model(model_dir / "model.keras", safe_mode=True).get_weights()


@pytest.mark.parametrize(("members", "kill_after", "done_epochs"), [(1, 2, 2), (2, 4, 1)],
                         ids=["single-model", "ensemble-killed-in-member-1"])
def test_sigkill_then_resume_matches_uninterrupted(tmp_path, toy_reviews, members, kill_after,
                                                   done_epochs):
    data = toy_reviews
    root = tmp_path / "checkpoints"
    cfg = dataclasses.replace(CFG, members=members)

    killed = _train(data, tmp_path / "resumed", root, kill_after, cfg)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "resumed" / "model.keras").exists()  # nothing half-written
    # each member's checkpoint; the finished ones' stay until the whole run is saved
    assert len(list(root.glob("sentiment/*/member*/latest"))) == members
    pointers = list(root.glob(f"sentiment/*/member{members - 1}/latest"))  # the killed member's
    assert len(pointers) == 1
    unit = pointers[0].parent / pointers[0].read_text().strip()
    assert json.loads((unit / "state.json").read_text())["epochs"] == done_epochs
    assert len(list(root.glob("sentiment/*/member*.keras"))) == members - 1  # finished members

    resumed = _train(data, tmp_path / "resumed", root, None, cfg)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    log = resumed.stdout + resumed.stderr
    assert log.count("Epoch 3/3") == 1  # only the interrupted member trains, to its end
    assert f"Epoch {done_epochs}/3" not in log  # it did not start over
    assert not list(root.glob("sentiment/*"))  # the backup is removed once training completes

    straight = _train(data, tmp_path / "straight", None, None, cfg)
    assert straight.returncode == 0, straight.stderr[-2000:]
    assert json.loads(resumed.stdout.strip().splitlines()[-1]) == json.loads(
        straight.stdout.strip().splitlines()[-1])
    for a, b in zip(_weights(tmp_path / "resumed"), _weights(tmp_path / "straight"), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_changed_params_do_not_resume_a_stale_run(toy_reviews):
    data = toy_reviews
    key_a = sentiment.run_key(dataclasses.asdict(CFG), [data / "train.jsonl"])
    other = dataclasses.replace(CFG, units=9)
    assert sentiment.run_key(dataclasses.asdict(other), [data / "train.jsonl"]) != key_a
