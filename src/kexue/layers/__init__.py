"""Keras 3 layers of the recipes (written with ``keras.ops``, serialisable with ``get_config``)."""

from kexue.layers.attention import AttentionSum, BitFeatures, TokenState
from kexue.layers.coupling import AdditiveCoupling, DiagonalScale
from kexue.layers.crf import CRF, crf_log_partition, crf_nll, crf_path_score, viterbi_decode
from kexue.layers.ode import (
    ODE_SYSTEMS,
    LearnedInitialState,
    ODECell,
    ODESystem,
    get_ode_system,
    ode_step,
    register_ode_system,
    time_grid,
)
from kexue.layers.pooling import MaskedGlobalMaxPooling1D

__all__ = ["CRF", "ODE_SYSTEMS", "AdditiveCoupling", "AttentionSum", "BitFeatures", "DiagonalScale",
           "LearnedInitialState", "MaskedGlobalMaxPooling1D", "ODECell", "ODESystem", "TokenState",
           "crf_log_partition", "crf_nll", "crf_path_score", "get_ode_system", "ode_step",
           "register_ode_system", "time_grid", "viterbi_decode"]
