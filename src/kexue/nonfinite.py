"""Stop training when a loss turns NaN or infinite, with an error that says what to change.

A diverged run otherwise goes on to the end: Keras keeps fitting NaN weights, the best-epoch pick
compares NaN and the stage saves an all-NaN model and exits 0. ``keras.callbacks.TerminateOnNaN``
only sets ``stop_training`` (the stage still saves the model), and with ``raise_error=True`` it
raises a bare ``RuntimeError`` about the batch loss only. :class:`StopOnNonFiniteLoss` raises
:class:`NonFiniteLoss` instead, from the first batch whose loss is not finite and at an epoch end
for every logged ``*loss`` (``val_loss`` and the parts of a multi-loss model included). Put it
first in the callback list, so no later callback (the epoch backup, the best-weights record,
the curves) sees the bad epoch; the exception leaves ``fit`` before the caller saves anything.
"""

from __future__ import annotations

import math

import keras


class NonFiniteLoss(RuntimeError):
    """A training or validation loss became NaN or infinite: the run diverged."""

    def __init__(self, name: str, value: float, epoch: int, batch: int | None,
                 learning_rate: float | None, section: str | None = None):
        self.name, self.value, self.epoch, self.batch = name, value, epoch, batch
        self.learning_rate, self.section = learning_rate, section
        super().__init__()

    def __str__(self) -> str:
        where = f"epoch {self.epoch + 1}" + (f", batch {self.batch + 1}" if self.batch is not None
                                             else " end")
        now = f" (now {self.learning_rate:g})" if self.learning_rate is not None else ""
        if self.section and self.section.endswith("learning_rate"):  # a family without fit.optimizer
            fix = f"lower {self.section}{now}"
        else:
            key = f"{self.section}.fit.optimizer" if self.section else "fit.optimizer"
            fix = f"lower {key}.learning_rate{now}, set {key}.global_clipnorm (e.g. 1.0)"
        return (f"training diverged: {self.name} = {self.value} at {where}, so no model is "
                f"written; {fix}, or look for inf/NaN in the inputs")


def _learning_rate(model) -> float | None:
    try:
        value = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:  # no optimizer, a wrapper without the attribute, a schedule object
        return None
    return value if math.isfinite(value) else None


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raise :class:`NonFiniteLoss` as soon as a loss is NaN or infinite: the running training
    loss after each batch (Keras logs the epoch's mean so far, so one bad batch stays visible),
    and every logged ``*loss`` at the epoch end. ``section`` (e.g. ``"sentiment"``) makes the
    message name the full params key to change; a family whose rate is not under
    ``fit.optimizer`` passes the rate's own key (e.g. ``"glove.learning_rate"``)."""

    def __init__(self, section: str | None = None):
        super().__init__()
        self.section = section
        self._epoch = 0

    def _check(self, logs, batch: int | None) -> None:
        for name, value in (logs or {}).items():
            if not name.endswith("loss"):
                continue
            try:
                number = float(keras.ops.convert_to_numpy(value))
            except (TypeError, ValueError):  # not a scalar: not a loss this guard can read
                continue
            if not math.isfinite(number):
                raise NonFiniteLoss(name, number, self._epoch, batch,
                                    _learning_rate(self.model), self.section)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, batch)

    def on_epoch_end(self, epoch, logs=None):
        self._epoch = epoch
        self._check(logs, None)
