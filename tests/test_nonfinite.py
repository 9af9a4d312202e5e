"""A loss that turns NaN or infinite stops training with a clear error and no model is written
(kexue.nonfinite)."""

import dataclasses

import keras
import numpy as np
import pytest
import yaml

from kexue.nonfinite import NonFiniteLoss, StopOnNonFiniteLoss


def _toy(learning_rate: float):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss="mse")
    return model, x, y


def test_a_diverging_loss_stops_fit_naming_the_loss_the_batch_and_the_fix():
    model, x, y = _toy(1e30)
    with pytest.raises(NonFiniteLoss) as info:
        model.fit(x, y, batch_size=8, epochs=3, verbose=0,
                  callbacks=[StopOnNonFiniteLoss(section="toy")])
    message = str(info.value)
    assert message.startswith("training diverged: loss = inf at epoch 1, batch 2"), message
    assert "lower toy.fit.optimizer.learning_rate (now 1e+30)" in message
    assert "toy.fit.optimizer.global_clipnorm" in message and "\n" not in message


def test_a_sane_run_is_not_stopped():
    model, x, y = _toy(0.01)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[StopOnNonFiniteLoss()])
    assert len(history.history["loss"]) == 2


def test_a_nonfinite_validation_loss_stops_at_the_epoch_end():
    model, x, y = _toy(0.01)
    bad = x[:8].copy()
    bad[0, 0] = np.inf
    with pytest.raises(NonFiniteLoss, match=r"val_loss = (inf|nan) at epoch 1 end"):
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_data=(bad, y[:8]),
                  callbacks=[StopOnNonFiniteLoss()])


def test_the_train_stage_exits_1_with_one_line_and_writes_no_model(tmp_path, monkeypatch, capsys):
    """train@sentiment with a learning rate that passes validation (finite) but diverges: the
    guard, placed in ``kexue.train.fit``'s callbacks as the family's fit would (patched in here),
    stops the stage before the model is saved."""
    from test_sentiment import CFG, _synthetic

    from kexue import train as train_module
    from kexue.families import sentiment
    from kexue.stages import train as train_stage

    real_fit = train_module.fit

    def guarded_fit(*args, scorers=None, **kwargs):
        return real_fit(*args, scorers=[StopOnNonFiniteLoss(), *(scorers or [])], **kwargs)

    monkeypatch.setattr(sentiment, "fit", guarded_fit)
    data = _synthetic(tmp_path, n=64)
    optimizer = dataclasses.replace(CFG.fit.optimizer, name="sgd", learning_rate=1e38,
                                    global_clipnorm=0.0)
    cfg = dataclasses.replace(CFG, fit=dataclasses.replace(CFG.fit, epochs=2, optimizer=optimizer))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"sentiment": dataclasses.asdict(cfg)}))
    monkeypatch.chdir(tmp_path)
    code = train_stage.main(["sentiment", "--data", str(data), "--model", "models/sentiment",
                             "--live", "live", "--resume-root", ".checkpoints"])
    err = capsys.readouterr().err
    assert code == 1
    line = [row for row in err.splitlines() if row.startswith("train@sentiment:")]
    assert len(line) == 1 and "training diverged: loss = " in line[0], err[-2000:]
    assert "lower sentiment.fit.optimizer.learning_rate (now 1e+38)" in line[0]
    assert list(tmp_path.rglob("*.keras")) == []  # no model, not even a checkpointed member
