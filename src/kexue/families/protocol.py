"""The family protocol: what a module under ``kexue.families`` (and its peers under
``kexue.peers``) provides for the generic stages, written down as code and checked by
:func:`problems` (tests/test_protocol.py runs it over every family the pipeline trains).

A **family** (``kexue.families.<name>``, trained by ``python -m kexue.stages.train <name>``):

- ``Config``: a frozen dataclass, the ``<name>`` section of ``params.yaml``
  (``kexue.config.load_section`` fills and checks it);
- ``train(cfg, data_dir, model_dir, live_dir, resume_root=None, **inputs) -> dict``: trains on
  train, chooses on valid only, writes the model folder and returns its ``train_info`` record
  (with ``monitor``, ``best_value``, ``best_epoch``, ``epochs_run``, ``train_seconds``); further
  inputs come by keyword (``--inputs NAME=PATH``) and have defaults;
- ``evaluate(model_dir, data_dir, ...)``: scores valid and test once, for the model train chose.
  The generic stage (``python -m kexue.stages.evaluate <name>``) calls ``evaluate(model_dir,
  data_dir)`` and receives ``(metrics, confusion_rows)``; a family whose evaluation needs more
  (the generative families' classifier for FID, the ODE fit's peers) has a stage module of its
  own and takes those inputs after the first two. Word vectors are the one joint case: ``glove``
  is evaluated with ``word2vec`` (``evaluate(model_dirs, ...)`` scores both side by side), see
  :data:`EVALUATED_WITH`.

Its **peers** (``kexue.peers.<name>``, run by ``python -m kexue.stages.baselines <name>``):

- ``BaselineConfig``: a frozen dataclass, the ``baselines.<name>`` section;
- ``baselines(cfg, data_dir, ...) -> dict``: ``{peer name: {"valid": {...}, "test": {...}, ...}}``,
  every setting chosen on valid; ``items`` per split where the family has a paired comparison;
- ``NetworkConfig``: the family's ``Config``, where a peer retrains the network (an ablation);
  the stage passes it as ``network=`` when its command names ``--network``.
"""

from __future__ import annotations

import dataclasses
import inspect
from types import ModuleType

TRAIN_PARAMETERS = ("cfg", "data_dir", "model_dir", "live_dir", "resume_root")
EVALUATE_PARAMETERS = ("model_dir", "data_dir")
# a family evaluated together with another one, by that one's evaluate (and its own stage)
EVALUATED_WITH = {"glove": "word2vec"}


def _frozen_dataclass(obj) -> bool:
    return (inspect.isclass(obj) and dataclasses.is_dataclass(obj)
            and obj.__dataclass_params__.frozen)


def _leading(function, names: tuple[str, ...], where: str) -> list[str]:
    """Problems with ``function``'s parameters: it must start with ``names``, in that order."""
    params = list(inspect.signature(function).parameters.values())
    got = tuple(p.name for p in params[: len(names)])
    out = []
    if got != names:
        out.append(f"{where} starts with {got}, expected {names}")
    return out


def _rest_optional(function, after: int, where: str, passed: tuple[str, ...] = ()) -> list[str]:
    """Problems with the parameters of ``function`` after the first ``after``: each needs a
    default unless the stage always ``passed`` it."""
    params = list(inspect.signature(function).parameters.values())[after:]
    required = [p.name for p in params if p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in passed]
    return [f"{where}: further parameters {required} need defaults (inputs come by keyword)"] \
        if required else []


def problems(name: str, family: ModuleType, generic_evaluate: bool = True) -> list[str]:
    """What ``family`` (the module ``kexue.families.<name>``) lacks of the protocol; empty when it
    conforms. ``generic_evaluate``: the pipeline evaluates it with the generic evaluate stage,
    which calls ``evaluate(model_dir, data_dir)`` with nothing else."""
    out = []
    if not _frozen_dataclass(getattr(family, "Config", None)):
        out.append(f"{name}: Config is missing or not a frozen dataclass")
    train = getattr(family, "train", None)
    if not callable(train):
        out.append(f"{name}: no train()")
    else:
        out += _leading(train, TRAIN_PARAMETERS[:4], f"{name}.train")
        params = inspect.signature(train).parameters
        if "resume_root" not in params or params["resume_root"].default is not None:
            out.append(f"{name}.train: resume_root must be its fifth parameter, default None")
        out += _rest_optional(train, len(TRAIN_PARAMETERS), f"{name}.train")
    if name in EVALUATED_WITH:
        return out
    evaluate = getattr(family, "evaluate", None)
    if not callable(evaluate):
        out.append(f"{name}: no evaluate()")
    elif name == "word2vec":  # the joint evaluation: every word-vector model folder at once
        out += _leading(evaluate, ("model_dirs", "data_dir"), f"{name}.evaluate")
    else:
        out += _leading(evaluate, EVALUATE_PARAMETERS, f"{name}.evaluate")
        if generic_evaluate:
            out += _rest_optional(evaluate, len(EVALUATE_PARAMETERS), f"{name}.evaluate")
    return out


def peer_problems(name: str, peers: ModuleType, network: bool = False) -> list[str]:
    """What ``peers`` (the module ``kexue.peers.<name>``) lacks of the protocol; ``network``: the
    stage passes ``--network``, so ``NetworkConfig`` must be the schema of a params section."""
    out = []
    if not _frozen_dataclass(getattr(peers, "BaselineConfig", None)):
        out.append(f"peers.{name}: BaselineConfig is missing or not a frozen dataclass")
    baselines = getattr(peers, "baselines", None)
    if not callable(baselines):
        out.append(f"peers.{name}: no baselines()")
    else:
        out += _leading(baselines, ("cfg", "data_dir"), f"peers.{name}.baselines")
        out += _rest_optional(baselines, 2, f"peers.{name}.baselines",
                              ("network",) if network else ())
        if network and "network" not in inspect.signature(baselines).parameters:
            out.append(f"peers.{name}.baselines: takes no network= although the stage passes one")
    if network and not _frozen_dataclass(getattr(peers, "NetworkConfig", None)):
        out.append(f"peers.{name}: the stage passes --network but NetworkConfig is missing")
    return out
