"""Losses from the 科学空间 posts, in ``keras.ops``: truncated cross-entropy, focal loss, ZLPR.

Each loss comes twice: a function ``f(y_true, y_pred, ...)`` that returns one value per example,
and a ``keras.losses.Loss`` subclass (registered under ``kexue>``, with ``get_config``) for
``model.compile(loss=...)`` that survives ``keras.saving.load_model(..., safe_mode=True)``.

- 苏剑林, "文本情感分类（四）：更好的损失函数", kexue.fm/archives/4293, 2017: the hard-truncated
  binary cross-entropy — examples already on the right side of a margin give no loss.
- 苏剑林, "从loss的硬截断、软化到focal loss", kexue.fm/archives/4733, 2017: the step of the hard
  truncation softened into a sigmoid, and focal loss (Lin et al. 2017) as a relative of it.
- 苏剑林, "将“softmax+交叉熵”推广到多标签分类问题", kexue.fm/archives/7359, 2020: the multi-label
  cross-entropy (later named ZLPR), dense and with sparse label lists.

Binary losses (truncated, focal) take probabilities, or logits with ``from_logits=True``; they
work elementwise, so a multi-column ``y`` is multi-label, and average over the last axis as
Keras's ``binary_crossentropy`` does: ``(batch, num_labels) → (batch,)``.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["BinaryFocalLoss", "HardTruncatedCrossEntropy", "MultilabelCrossEntropy",
           "SoftTruncatedCrossEntropy", "SparseMultilabelCrossEntropy", "binary_focal_loss",
           "hard_truncated_crossentropy", "multilabel_crossentropy",
           "soft_truncated_crossentropy", "sparse_multilabel_crossentropy"]


def _check_margin(margin: float) -> float:
    # below 0.5 a positive at p ∈ (m, 1 − m) would also count as a confidently right negative
    if not 0.5 <= margin <= 1.0:
        raise ValueError(f"margin must be in [0.5, 1], got {margin}")
    return float(margin)


def _check_scale(scale: float) -> float:
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    return float(scale)


def _check_focal(gamma: float, alpha: float | None) -> tuple[float, float | None]:
    if not gamma >= 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    if alpha is not None and not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] or None, got {alpha}")
    return float(gamma), None if alpha is None else float(alpha)


def _same_rank(y_true, y_pred):
    """(y_true, y_pred) as tensors of one rank: labels of shape (batch,) against predictions of
    shape (batch, 1) get their trailing axis back, as Keras's own losses do. Why: without it the
    two broadcast to (batch, batch) and every prediction is scored against every label."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    if len(y_true.shape) == len(y_pred.shape) - 1 and y_pred.shape[-1] == 1:
        y_true = ops.expand_dims(y_true, -1)
    elif len(y_pred.shape) == len(y_true.shape) - 1 and y_true.shape[-1] == 1:
        y_pred = ops.expand_dims(y_pred, -1)
    return y_true, y_pred


def _binary_log_probs(y_pred, from_logits: bool):
    """(log p, log(1 − p)). Logits go through log-sigmoid, which cannot overflow; probabilities
    are clipped to [ε, 1 − ε] first, as Keras's binary cross-entropy does."""
    if from_logits:
        return ops.log_sigmoid(y_pred), ops.log_sigmoid(-y_pred)
    eps = keras.config.epsilon()
    p = ops.clip(y_pred, eps, 1.0 - eps)
    return ops.log(p), ops.log(1.0 - p)


def _truncated_crossentropy(y_true, y_pred, margin, from_logits, step):
    """λ(y, p) · BCE(y, p) averaged over the last axis, with
    λ = 1 − θ(y − m)·step(p − m) − θ(1 − m − y)·step(1 − m − p). The label factors stay hard
    steps (labels are data); ``step`` is the hard θ or its sigmoid softening."""
    y_true, y_pred = _same_rank(y_true, y_pred)
    log_p, log_q = _binary_log_probs(y_pred, from_logits)  # log p, log(1 − p)
    p = ops.exp(log_p)
    positive = ops.cast(y_true - margin > 0, y_pred.dtype)  # θ(y − m)
    negative = ops.cast(1.0 - margin - y_true > 0, y_pred.dtype)  # θ(1 − m − y)
    weight = 1.0 - positive * step(p - margin) - negative * step(1.0 - margin - p)
    bce = -(y_true * log_p + (1.0 - y_true) * log_q)
    return ops.mean(weight * bce, axis=-1)


@keras.saving.register_keras_serializable(package="kexue")
def hard_truncated_crossentropy(y_true, y_pred, margin: float = 0.6, from_logits: bool = False):
    """Binary cross-entropy that skips the confidently right examples (kexue.fm/archives/4293).

    Per element: λ · BCE(y, p) with λ = 1 − θ(y − m)θ(p − m) − θ(1 − m − y)θ(1 − m − p) and θ
    the unit step (θ(x) = 1 for x > 0, else 0): a positive with p > m and a negative with
    p < 1 − m weigh 0, everything else keeps its cross-entropy. Why: the model stops pushing
    easy examples towards 0/1 and spends its capacity on the ambiguous ones (as a hinge
    loss would). λ is piecewise constant, so no gradient flows through it.
    """
    margin = _check_margin(margin)

    def step(x):
        return ops.cast(x > 0, x.dtype)

    return _truncated_crossentropy(y_true, y_pred, margin, from_logits, step)


@keras.saving.register_keras_serializable(package="kexue")
def soft_truncated_crossentropy(y_true, y_pred, margin: float = 0.6, scale: float = 10.0,
                                from_logits: bool = False):
    """Hard truncation with the prediction's step softened (kexue.fm/archives/4733).

    Implemented exactly:  λ = 1 − θ(y − m)·σ(K(p − m)) − θ(1 − m − y)·σ(K(1 − m − p)),
    loss = λ · BCE(y, p), K = ``scale``; for hard labels that is σ(K(m − p))·(−log p) on a
    positive and σ(K(p − 1 + m))·(−log(1 − p)) on a negative. The step is softened where the
    truncation defines it, on p − m, so K is in probability units (K = 10: a positive's weight
    falls from 0.88 to 0.12 as p goes from m − 0.2 to m + 0.2). Why: the weight is smooth, so
    the gradient also sees how close an example is to the margin; as K → ∞ it is the hard
    form again (away from p = m). The label factors stay hard steps: labels are data.
    """
    margin = _check_margin(margin)
    scale = _check_scale(scale)

    def step(x):
        return ops.sigmoid(scale * x)

    return _truncated_crossentropy(y_true, y_pred, margin, from_logits, step)


@keras.saving.register_keras_serializable(package="kexue")
def binary_focal_loss(y_true, y_pred, gamma: float = 2.0, alpha: float | None = 0.25,
                      from_logits: bool = False):
    """Focal loss −α_t (1 − p_t)^γ log p_t (Lin et al. 2017; kexue.fm/archives/4733).

    Per element, written for soft labels too:
        −α y (1 − p)^γ log p − (1 − α)(1 − y) p^γ log(1 − p)
    (α_t = α on positives, 1 − α on negatives; ``alpha=None`` drops the class weight, and then
    γ = 0 is plain binary cross-entropy). Multi-label: mean over the last axis, as Keras's BCE.
    With ``from_logits`` every factor comes from log-sigmoid ((1 − p)^γ = exp(γ·log σ(−x))),
    so extreme logits give finite losses and gradients.
    """
    gamma, alpha = _check_focal(gamma, alpha)
    y_true, y_pred = _same_rank(y_true, y_pred)
    log_p, log_q = _binary_log_probs(y_pred, from_logits)  # log p, log(1 − p)
    pos = -y_true * ops.exp(gamma * log_q) * log_p  # (1 − p)^γ · (−log p) on positives
    neg = -(1.0 - y_true) * ops.exp(gamma * log_p) * log_q  # p^γ · (−log(1 − p)) on negatives
    if alpha is not None:
        pos, neg = alpha * pos, (1.0 - alpha) * neg
    return ops.mean(pos + neg, axis=-1)


def _masked_logsumexp_with_zero(scores, keep):
    """log(1 + Σ_{keep} e^{scores}) over the last axis: logsumexp with a 0 score appended.
    Dropped entries become −∞ through ``where``, exact in every float dtype (no "large negative"
    to pick per dtype); the appended 0 keeps the max finite and the sum ≥ 1, so the value is
    finite even when nothing is kept and the dropped entries get a gradient of exactly 0."""
    masked = ops.where(keep, scores, ops.full_like(scores, float("-inf")))  # (..., num_labels)
    zero = ops.zeros_like(scores[..., :1])  # (..., 1)
    return ops.logsumexp(ops.concatenate([masked, zero], axis=-1), axis=-1)


@keras.saving.register_keras_serializable(package="kexue")
def multilabel_crossentropy(y_true, y_pred):
    """ZLPR, the multi-label "softmax + cross-entropy" (kexue.fm/archives/7359).

    y_pred: scores s (logits, no sigmoid) (..., num_labels); y_true: 0/1 of the same shape.
        loss = log(1 + Σ_{i ∈ neg} e^{s_i}) + log(1 + Σ_{j ∈ pos} e^{−s_j})
    Why: it is softmax cross-entropy with a threshold class of score 0 — every positive is
    pushed above 0 and every negative below, all compared at once, so a few positives among
    many labels need no per-label weights (the post's argument). Predict label i iff s_i > 0.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    positive = ops.cast(y_true, y_pred.dtype) > 0.5  # (..., num_labels)
    neg_term = _masked_logsumexp_with_zero(y_pred, ops.logical_not(positive))
    pos_term = _masked_logsumexp_with_zero(-y_pred, positive)
    return neg_term + pos_term


@keras.saving.register_keras_serializable(package="kexue")
def sparse_multilabel_crossentropy(y_true, y_pred, mask_value: int = -1):
    """ZLPR with the positives given as index lists (kexue.fm/archives/7359).

    y_pred: scores (batch, num_labels); y_true: positive label ids (batch, max_positives),
    padded with ``mask_value`` (ids in [0, num_labels); a repeated id counts once). Same value
    as ``multilabel_crossentropy`` on the dense 0/1 labels.
    Why not the post's subtraction: there the negative term is log(1 + Σ_all e^s − Σ_pos e^s),
    and once Σ_pos e^s > 1/ε (a positive score above ~16 in float32) the difference is lost to
    rounding: clipping then gives a wrong, large loss that pushes confident positives down.
    Here the ids are scattered in-graph into a (batch, num_labels) mask — the size of the
    scores, not an input the data pipeline has to carry — and the dense formula is exact.
    Keras converts y_true to the loss dtype first: float32 holds ids exactly below 2^24.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    labels = ops.cast(y_true, "int32")  # (batch, max_positives)
    valid = labels != mask_value
    safe = ops.where(valid, labels, ops.zeros_like(labels))
    batch_size, num_labels = ops.shape(y_pred)[0], ops.shape(y_pred)[-1]
    rows = ops.broadcast_to(ops.expand_dims(ops.arange(batch_size, dtype="int32"), 1),
                            ops.shape(labels))  # (batch, max_positives)
    indices = ops.reshape(ops.stack([rows, safe], axis=-1), (-1, 2))  # (batch·max_positives, 2)
    counts = ops.scatter(indices, ops.reshape(ops.cast(valid, y_pred.dtype), (-1,)),
                         (batch_size, num_labels))  # (batch, num_labels); padding adds 0
    return multilabel_crossentropy(ops.cast(counts > 0, y_pred.dtype), y_pred)


class _KexueLoss(keras.losses.Loss):
    """Shared ``get_config``: the base config plus ``self._args`` (the loss's own arguments)."""

    _args: dict

    def get_config(self):
        return {**super().get_config(), "dtype": self.dtype, **self._args}


@keras.saving.register_keras_serializable(package="kexue")
class HardTruncatedCrossEntropy(_KexueLoss):
    """``hard_truncated_crossentropy`` as a Keras loss (mean over examples by default)."""

    def __init__(self, margin: float = 0.6, from_logits: bool = False,
                 name: str = "hard_truncated_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self._args = {"margin": _check_margin(margin), "from_logits": bool(from_logits)}

    def call(self, y_true, y_pred):
        return hard_truncated_crossentropy(y_true, y_pred, **self._args)


@keras.saving.register_keras_serializable(package="kexue")
class SoftTruncatedCrossEntropy(_KexueLoss):
    """``soft_truncated_crossentropy`` as a Keras loss."""

    def __init__(self, margin: float = 0.6, scale: float = 10.0, from_logits: bool = False,
                 name: str = "soft_truncated_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self._args = {"margin": _check_margin(margin), "scale": _check_scale(scale),
                      "from_logits": bool(from_logits)}

    def call(self, y_true, y_pred):
        return soft_truncated_crossentropy(y_true, y_pred, **self._args)


@keras.saving.register_keras_serializable(package="kexue")
class BinaryFocalLoss(_KexueLoss):
    """``binary_focal_loss`` as a Keras loss."""

    def __init__(self, gamma: float = 2.0, alpha: float | None = 0.25, from_logits: bool = False,
                 name: str = "binary_focal_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        gamma, alpha = _check_focal(gamma, alpha)
        self._args = {"gamma": gamma, "alpha": alpha, "from_logits": bool(from_logits)}

    def call(self, y_true, y_pred):
        return binary_focal_loss(y_true, y_pred, **self._args)


@keras.saving.register_keras_serializable(package="kexue")
class MultilabelCrossEntropy(_KexueLoss):
    """``multilabel_crossentropy`` (ZLPR, dense 0/1 labels) as a Keras loss; y_pred = scores."""

    def __init__(self, name: str = "multilabel_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self._args = {}

    def call(self, y_true, y_pred):
        return multilabel_crossentropy(y_true, y_pred)


@keras.saving.register_keras_serializable(package="kexue")
class SparseMultilabelCrossEntropy(_KexueLoss):
    """``sparse_multilabel_crossentropy`` (ZLPR, padded id lists) as a Keras loss."""

    def __init__(self, mask_value: int = -1, name: str = "sparse_multilabel_crossentropy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self._args = {"mask_value": int(mask_value)}

    def call(self, y_true, y_pred):
        return sparse_multilabel_crossentropy(y_true, y_pred, **self._args)


# --- AM-Softmax (additive margin softmax) ---------------------------------------------------
# 苏剑林, "基于GRU和AM-Softmax的句子相似度模型", kexue.fm, 2018: classes = groups of similar
# sentences, a sentence encoder with L2-normalised output, cosine logits (kexue.layers.margin.
# CosineLogits) and this loss; s = 30, m = 0.35 in the post.


def _check_am_softmax(scale: float, margin: float) -> tuple[float, float]:
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    if not 0.0 <= margin < 2.0:  # cosines lie in [−1, 1]: a margin of 2 or more can never be met
        raise ValueError(f"margin must be in [0, 2), got {margin}")
    return float(scale), float(margin)


def am_softmax_logits(y_true, cosines, scale: float = 30.0, margin: float = 0.35):
    """s·(cos θ_y − m) for the target class y and s·cos θ_j for the others.

    y_true: class ids (batch,) or (batch, 1); cosines: (batch, num_classes) from CosineLogits.
    """
    scale, margin = _check_am_softmax(scale, margin)
    cosines = ops.convert_to_tensor(cosines)
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))  # (batch,)
    target = ops.one_hot(labels, ops.shape(cosines)[-1], dtype=cosines.dtype)  # (batch, num_classes)
    return scale * (cosines - margin * target)


@keras.saving.register_keras_serializable(package="kexue")
def am_softmax_loss(y_true, y_pred, scale: float = 30.0, margin: float = 0.35):
    """Additive-margin softmax cross-entropy over cosine logits (one value per example).

        −log e^{s(cos θ_y − m)} / (e^{s(cos θ_y − m)} + Σ_{j≠y} e^{s cos θ_j})

    y_pred: cosines (batch, num_classes); y_true: class ids. Why a margin: plain softmax stops
    once cos θ_y is the largest; with m the target must beat every other class by m, so classes
    separate by a gap and a sentence's nearest neighbours by cosine are its own class (what
    retrieval uses). Why a scale: cosines in [−1, 1] give a softmax too flat to ever approach
    probability 1; s sharpens it. m = 0 is plain softmax over s·cos θ (the ablation).
    """
    logits = am_softmax_logits(y_true, y_pred, scale, margin)
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    return ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)


@keras.saving.register_keras_serializable(package="kexue")
class AMSoftmaxLoss(_KexueLoss):
    """``am_softmax_loss`` as a Keras loss (y_pred = cosines, y_true = class ids)."""

    def __init__(self, scale: float = 30.0, margin: float = 0.35, name: str = "am_softmax_loss",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        scale, margin = _check_am_softmax(scale, margin)
        self._args = {"scale": scale, "margin": margin}

    def call(self, y_true, y_pred):
        return am_softmax_loss(y_true, y_pred, **self._args)


__all__ += ["AMSoftmaxLoss", "am_softmax_logits", "am_softmax_loss"]
