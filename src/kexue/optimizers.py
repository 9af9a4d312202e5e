"""Optimizer recipes: piecewise-linear LR schedule, per-variable LR multipliers, Lookahead.

Everything Keras 3 already ships (``gradient_accumulation_steps``, ``use_ema``/``ema_momentum``,
``clipnorm``, ``global_clipnorm``, weight decay) is left to the inner optimizer; this module only
adds what Keras lacks.

Per-variable learning-rate multipliers
--------------------------------------
The kexue.fm post "分层设置学习率" (bert4keras's ``SetLearningRate``) gets a layer-specific LR by
reparameterising a weight as θ = λφ and training φ instead. That trick is optimizer-dependent: the
SGD step on φ is ``-lr·λ·g_θ``, i.e. a step of ``-λ²·lr·g_θ`` on θ, whereas Adam is invariant to
the gradient's scale so θ moves by ``λ·lr`` units. Here the multiplier is applied to the update
itself instead: ``apply_lr_multipliers`` returns a copy of the optimizer whose ``update_step``
receives ``m × learning_rate`` for a matched variable (and whose decoupled weight decay, which is
also proportional to the LR, is scaled the same way). Moments, accumulators and gradient
accumulation still see the raw gradient, so the result is "m × lr" for every optimizer: an SGD
step is exactly m× the unscaled one, an Adam step is m× the unscaled Adam step. Variables with
``m == 0`` are dropped from the optimizer altogether (no slots, no accumulators, never assigned),
so they stay bit-identical.

Design: the copy is an instance of a dynamically created subclass ``LRMultiplied<Base>`` of the
given optimizer's class (cached per base class), with ``LRMultiplierOptimizer`` as a mixin. It
therefore *is* an ``Adam``/``SGD``/... (``isinstance`` holds, every property works) and it
serialises under the registered name ``"kexue>LRMultiplierOptimizer"``: the config holds the
base optimizer's own serialised config plus the resolved ``{variable.path: m}`` map, so
``model.save("x.keras")`` + ``keras.saving.load_model("x.keras", safe_mode=True)`` restores the
optimizer with its multipliers and state (tested), provided ``kexue.optimizers`` is imported.

Lookahead
---------
Zhang et al. 2019, "Lookahead Optimizer: k steps forward, 1 step back" (also discussed in the
kexue.fm post "小众的自定义优化器"): an inner optimizer moves the fast weights; every k inner
updates the slow weights move a fraction α towards them and the fast weights restart from there.

Known limitations: under ``tf.distribute.MirroredStrategy`` both wrappers are tested only on a
small Dense model with SGD on 2 logical CPUs (same weights as one device, to 1e-6;
tests/test_distribute.py); ``MultiWorkerMirroredStrategy`` is untested. Only the stateful
``apply`` path (TensorFlow/torch) is covered: ``stateless_apply`` (JAX) skips the
frozen-variable filtering and ``Lookahead`` refuses it. Multipliers are resolved against the
model at wrap time, keyed by variable path; change ``trainable`` flags before calling
``apply_lr_multipliers``, not after.
"""

from __future__ import annotations

import copy
import fnmatch
import math
from types import MappingProxyType
from typing import Any

import keras
from keras import ops

__all__ = ["LRMultiplierOptimizer", "Lookahead", "PiecewiseLinear", "apply_lr_multipliers"]


@keras.saving.register_keras_serializable(package="kexue")
class PiecewiseLinear(keras.optimizers.schedules.LearningRateSchedule):
    """``base_lr × factor(step)``, factor linearly interpolated between ``knots`` ({step: factor}).

    Constant after the last knot. Without a knot at step 0 the factor starts from 0 at step 0,
    so ``{1000: 1.0}`` is a 1000-step linear warm-up and ``{1000: 1.0, 2000: 0.1}`` is warm-up
    then decay to 10% (the bert4keras ``piecewise_linear`` convention).
    """

    def __init__(self, base_lr: float, knots: dict[int, float], name: str | None = None):
        if not knots:
            raise ValueError("PiecewiseLinear: knots must not be empty")
        base_lr = float(base_lr)
        if not math.isfinite(base_lr) or base_lr < 0:
            raise ValueError(f"PiecewiseLinear: base_lr must be finite and >= 0, got {base_lr}")
        points: list[tuple[int, float]] = []
        for raw_step, raw_factor in knots.items():
            step, factor = int(raw_step), float(raw_factor)
            if step != float(raw_step):
                raise ValueError(f"PiecewiseLinear: knot step {raw_step!r} is not an integer")
            if step < 0:
                raise ValueError(f"PiecewiseLinear: knot step {step} is negative")
            if not math.isfinite(factor) or factor < 0:
                raise ValueError(
                    f"PiecewiseLinear: factor at step {step} must be finite and >= 0, got {factor}"
                )
            if points and step <= points[-1][0]:
                raise ValueError(
                    f"PiecewiseLinear: knot steps must be strictly increasing, got {step} "
                    f"after {points[-1][0]}"
                )
            points.append((step, factor))
        self.base_lr = base_lr
        self.knots = dict(points)
        self.name = name
        if points[0][0] > 0:
            points.insert(0, (0, 0.0))
        self._points = tuple(points)

    def _segments(self) -> list[tuple[tuple[int, float], tuple[int, float]]]:
        return list(zip(self._points[:-1], self._points[1:], strict=True))

    def __call__(self, step):
        dtype = keras.backend.floatx()
        t = ops.cast(step, dtype)
        # Select the segment with nested `where`s (latest segment first) so the value at every
        # knot and after the last one is the knot's factor exactly; no Python branching on `t`.
        factor = ops.cast(self._points[-1][1], dtype)
        for (t0, f0), (t1, f1) in reversed(self._segments()):
            inside = f0 + (f1 - f0) * ((t - float(t0)) / float(t1 - t0))
            factor = ops.where(t < float(t1), inside, factor)
        return factor * self.base_lr

    def get_config(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "knots": dict(self.knots), "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PiecewiseLinear:
        config = dict(config)
        # A JSON round trip turns the int keys into strings (and may reorder them): restore both.
        knots = {int(k): float(v) for k, v in config.pop("knots").items()}
        return cls(knots=dict(sorted(knots.items())), **config)


# ---------------------------------------------------------------------------------------------
# Per-variable learning-rate multipliers
# ---------------------------------------------------------------------------------------------


def _walk_layers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """All layers reachable through ``.layers`` (nested models included), excluding ``layer``."""
    found = []
    for sub in getattr(layer, "layers", None) or []:
        found.append(sub)
        found.extend(_walk_layers(sub))
    return found


def _resolve_multipliers(model: keras.Model, multipliers: dict[str, float]) -> dict[str, float]:
    """Map every trainable variable's path (model order) to its multiplier (first match, else 1)."""
    for pattern, m in multipliers.items():
        if not math.isfinite(float(m)) or float(m) < 0:
            raise ValueError(f"lr multiplier for {pattern!r} must be finite and >= 0, got {m}")
    if not model.built or not model.trainable_variables:
        raise ValueError("apply_lr_multipliers: build the model first (it has no variables yet)")
    owners: dict[int, list[str]] = {}
    for layer in _walk_layers(model):
        for v in layer.weights:
            owners.setdefault(id(v), []).append(layer.name)
    resolved: dict[str, float] = {}
    used: set[str] = set()
    for v in model.trainable_variables:
        parts = v.path.split("/")
        # The full path and its "/"-suffixes: Sequential prefixes paths with the model name.
        candidates = ["/".join(parts[i:]) for i in range(len(parts))] + owners.get(id(v), [])
        m = 1.0
        for pattern, multiplier in multipliers.items():
            if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
                used.add(pattern)
                m = multiplier
                break
        if v.path in resolved and resolved[v.path] != float(m):
            raise ValueError(f"apply_lr_multipliers: variable path {v.path!r} is not unique")
        resolved[v.path] = float(m)
    unused = [p for p in multipliers if p not in used]
    if unused:
        raise ValueError(
            f"apply_lr_multipliers: patterns {unused} match no trainable variable path or layer "
            f"name of model {model.name!r}"
        )
    return resolved


@keras.saving.register_keras_serializable(package="kexue")
class LRMultiplierOptimizer:
    """Mixin that scales the learning rate per variable; use via ``apply_lr_multipliers``.

    Concrete classes are ``LRMultiplied<Base>(LRMultiplierOptimizer, Base)``, created on demand;
    all of them (de)serialise through this registered class.
    """

    _kexue_base_class: type = type(None)  # set on every concrete subclass

    def _kexue_multiplier(self, variable) -> float:
        return _lookup_multiplier(getattr(self, "_kexue_lr_multipliers", {}), variable.path)

    def build(self, variables):
        """Build on the non-frozen variables only and index the scaled ones by variable key."""
        variables = list(variables)
        kept = [v for v in variables if self._kexue_multiplier(v) != 0.0]
        self._kexue_frozen_keys = frozenset(
            self._var_key(v) for v in variables if self._kexue_multiplier(v) == 0.0
        )
        self._kexue_scale_by_key = MappingProxyType(
            {self._var_key(v): self._kexue_multiplier(v) for v in kept}
        )
        super().build(kept)

    def _kexue_is_frozen(self, variable) -> bool:
        return self._var_key(variable) in getattr(self, "_kexue_frozen_keys", frozenset())

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            return super().apply(grads, trainable_variables)
        trainable_variables = list(trainable_variables)
        if not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
            self.built = True
        pairs = [
            (g, v)
            for g, v in zip(grads, trainable_variables, strict=True)
            if not self._kexue_is_frozen(v)
        ]
        if not pairs:  # everything frozen: still count the step, like a no-op update
            self._iterations.assign_add(1)
            return None
        grads, trainable_variables = zip(*pairs, strict=True)
        return super().apply(list(grads), list(trainable_variables))

    def update_step(self, gradient, variable, learning_rate):
        scale = self._kexue_scale_by_key.get(self._var_key(variable), 1.0)
        if scale != 1.0:
            learning_rate = ops.multiply(learning_rate, scale)
        return super().update_step(gradient, variable, learning_rate)

    def _get_current_learning_rate(self):
        lr = super()._get_current_learning_rate()
        scale = getattr(self, "_kexue_wd_scale", None)
        return lr if scale is None else ops.multiply(lr, scale)

    def _apply_weight_decay(self, variables):
        # Decoupled weight decay is `var -= lr·wd·var`, so it is scaled too; the base class reads
        # `self.learning_rate` there, hence a trace-time scale per multiplier group.
        groups: dict[float, list] = {}
        for v in variables:
            scale = self._kexue_scale_by_key.get(self._var_key(v), 1.0)
            groups.setdefault(scale, []).append(v)
        for scale, group in groups.items():
            self._kexue_wd_scale = None if scale == 1.0 else scale
            try:
                super()._apply_weight_decay(group)
            finally:
                self._kexue_wd_scale = None

    def finalize_variable_values(self, var_list):
        super().finalize_variable_values([v for v in var_list if not self._kexue_is_frozen(v)])

    def get_config(self) -> dict[str, Any]:
        base_config = copy.deepcopy(super().get_config())
        base = self._kexue_base_class.from_config(base_config)
        return {
            "optimizer": keras.saving.serialize_keras_object(base),
            "lr_multipliers": dict(getattr(self, "_kexue_lr_multipliers", {})),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None):
        base = keras.saving.deserialize_keras_object(
            config["optimizer"], custom_objects=custom_objects
        )
        return _with_multipliers(base, config["lr_multipliers"])


def _same_variable(a: str, b: str) -> bool:
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


def _lookup_multiplier(by_path: dict[str, float], path: str) -> float:
    """The multiplier recorded for ``path``, tolerating a different leading scope.

    Why: variable paths are not stable across save/load (a Sequential built with an ``Input``
    names its variables "sequential/dense/kernel", the reloaded one "dense/kernel"), so an exact
    match is preferred and otherwise one recorded path may differ by leading "/"-components.
    """
    if not by_path:
        return 1.0
    if path in by_path:
        return by_path[path]
    hits = [m for p, m in by_path.items() if _same_variable(p, path)]
    if len(hits) != 1:
        problem = "matches several" if hits else "matches none"
        raise ValueError(
            f"LRMultiplierOptimizer: variable {path!r} {problem} of the variables the "
            f"multipliers were resolved for ({list(by_path)}); call apply_lr_multipliers with "
            "the model this optimizer trains, after setting `trainable` flags"
        )
    return hits[0]


_MULTIPLIED_CLASSES: dict[type, type] = {}


def _multiplied_class(base_cls: type) -> type:
    if issubclass(base_cls, LRMultiplierOptimizer):
        base_cls = base_cls._kexue_base_class
    if base_cls not in _MULTIPLIED_CLASSES:
        name = f"LRMultiplied{base_cls.__name__}"
        cls = type(
            name,
            (LRMultiplierOptimizer, base_cls),
            {"_kexue_base_class": base_cls, "__module__": __name__, "__qualname__": name},
        )
        # Every concrete class serialises under the mixin's registered name; registering the
        # concrete class repoints that name at it, so point it back at the mixin afterwards.
        keras.saving.register_keras_serializable(package="kexue", name="LRMultiplierOptimizer")(cls)
        keras.saving.register_keras_serializable(package="kexue")(LRMultiplierOptimizer)
        _MULTIPLIED_CLASSES[base_cls] = cls
    return _MULTIPLIED_CLASSES[base_cls]


def _with_multipliers(optimizer: keras.optimizers.Optimizer, by_path: dict[str, float]):
    cls = _multiplied_class(type(optimizer))
    base_config = copy.deepcopy(optimizer.get_config())
    # The base class's from_config (cls(**config) plus schedule deserialisation), bound to cls.
    new = super(LRMultiplierOptimizer, cls).from_config(base_config)
    new._kexue_lr_multipliers = MappingProxyType({str(k): float(v) for k, v in by_path.items()})
    return new


def apply_lr_multipliers(
    optimizer: keras.optimizers.Optimizer, model: keras.Model, multipliers: dict[str, float]
) -> keras.optimizers.Optimizer:
    """Return a fresh copy of ``optimizer`` that uses ``m × lr`` for the matched variables.

    ``multipliers`` maps fnmatch patterns (case-sensitive; ``*`` also matches ``/``) to
    multipliers ≥ 0. A pattern matches a trainable variable if it matches ``variable.path`` or
    one of its "/"-suffixes (so ``"dense_1/kernel"`` also matches ``"sequential/dense_1/kernel"``)
    or the name of any layer owning it (reached through ``.layers``; a custom layer's name
    covers its sublayers' variables). For each variable the first matching
    pattern, in dict order, wins; a pattern that matches nothing is a ValueError. ``m == 0``
    freezes the variable (the optimizer never touches it). The model must be built, and the
    optimizer not yet built (only its config is copied, not its state).
    """
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(f"apply_lr_multipliers: expected a keras Optimizer, got {optimizer!r}")
    if optimizer.built:
        raise ValueError("apply_lr_multipliers: the optimizer is already built; pass a fresh one")
    by_path = _resolve_multipliers(model, multipliers)
    if isinstance(optimizer, LRMultiplierOptimizer):  # compose: multipliers multiply
        previous = optimizer._kexue_lr_multipliers
        by_path = {p: m * _lookup_multiplier(previous, p) for p, m in by_path.items()}
    return _with_multipliers(optimizer, by_path)


# ---------------------------------------------------------------------------------------------
# Lookahead
# ---------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kexue")
class Lookahead(keras.optimizers.Optimizer):
    """Lookahead around any Keras optimizer: every ``k`` inner updates, slow += α(fast − slow)
    and fast ← slow.

    Slow weights are optimizer variables (saved with the optimizer); they are set to the model
    weights on the first ``apply``. "Inner updates" are real updates, so with the inner
    optimizer's ``gradient_accumulation_steps = n`` a sync happens every k·n batches.
    Configure clipping, EMA, accumulation, loss scaling, etc. on the inner optimizer.
    """

    def __init__(
        self,
        optimizer: keras.optimizers.Optimizer,
        k: int = 5,
        alpha: float = 0.5,
        name: str | None = None,
    ):
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise TypeError(f"Lookahead: expected a keras Optimizer, got {optimizer!r}")
        if int(k) != k or k < 1:
            raise ValueError(f"Lookahead: k must be an integer >= 1, got {k}")
        if not 0.0 < float(alpha) <= 1.0:
            raise ValueError(f"Lookahead: alpha must be in (0, 1], got {alpha}")
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = optimizer
        self.k = int(k)
        self.alpha = float(alpha)

    def build(self, var_list):
        var_list = list(var_list)
        super().build(var_list)
        self._slow_weights = self.add_optimizer_variables(var_list, "slow")
        for slow, var in zip(self._slow_weights, var_list, strict=True):
            if slow is not None:
                slow.assign(var)
        self.inner_optimizer.build(var_list)

    @property
    def variables(self):
        return self._variables[:] + self.inner_optimizer.variables

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        trainable_variables = list(trainable_variables)
        if not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
            self.built = True
        slow = [self._slow_weights[self._get_variable_index(v)] for v in trainable_variables]
        pairs = [(s, v) for s, v in zip(slow, trainable_variables, strict=True) if s is not None]

        def init_slow():
            for s, v in pairs:
                s.assign(v)

        def sync():
            for s, v in pairs:
                s.assign(s + self.alpha * (v - s))
                v.assign(s)

        ops.cond(ops.equal(self._iterations, 0), init_slow, lambda: None)
        # `iterations` of the inner optimizer counts real updates (it is iterations // n with
        # gradient accumulation), so "it moved and is a multiple of k" marks a sync step.
        # (`ops.copy`, not `convert_to_tensor`, which hands back the Variable itself.)
        before = ops.copy(self.inner_optimizer.iterations)
        self.inner_optimizer.apply(grads, trainable_variables)
        after = ops.copy(self.inner_optimizer.iterations)
        do_sync = ops.logical_and(ops.not_equal(after, before), ops.equal(after % self.k, 0))
        ops.cond(do_sync, sync, lambda: None)
        self._iterations.assign_add(1)

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        raise NotImplementedError("Lookahead does not support stateless_apply")

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "k": self.k,
            "alpha": self.alpha,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None) -> Lookahead:
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(
            config.pop("optimizer"), custom_objects=custom_objects
        )
        return cls(inner, **config)
