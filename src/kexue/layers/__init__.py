"""Keras 3 layers of the recipes (written with ``keras.ops``, serialisable with ``get_config``).

Names load lazily from their modules, so ``import kexue.layers.crf`` pulls in the CRF alone and a
stage's import closure (and DVC deps) holds only the layers it uses.
"""

import importlib

_LAZY = {
    "AttentionSum": "kexue.layers.attention",
    "BitFeatures": "kexue.layers.attention",
    "TokenState": "kexue.layers.attention",
    "AdditiveCoupling": "kexue.layers.coupling",
    "DiagonalScale": "kexue.layers.coupling",
    "CRF": "kexue.layers.crf",
    "crf_log_partition": "kexue.layers.crf",
    "crf_nll": "kexue.layers.crf",
    "crf_path_score": "kexue.layers.crf",
    "viterbi_decode": "kexue.layers.crf",
    "ODE_SYSTEMS": "kexue.layers.ode",
    "LearnedInitialState": "kexue.layers.ode",
    "ODECell": "kexue.layers.ode",
    "ODESystem": "kexue.layers.ode",
    "get_ode_system": "kexue.layers.ode",
    "ode_step": "kexue.layers.ode",
    "register_ode_system": "kexue.layers.ode",
    "time_grid": "kexue.layers.ode",
    "MaskedGlobalMaxPooling1D": "kexue.layers.pooling",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'kexue.layers' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def __dir__() -> list[str]:
    return __all__
