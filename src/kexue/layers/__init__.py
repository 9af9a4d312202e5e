"""Keras 3 layers of the recipes (written with ``keras.ops``, serialisable with ``get_config``)."""

from kexue.layers.crf import CRF, crf_log_partition, crf_nll, crf_path_score, viterbi_decode
from kexue.layers.pooling import MaskedGlobalMaxPooling1D

__all__ = ["CRF", "MaskedGlobalMaxPooling1D", "crf_log_partition", "crf_nll", "crf_path_score",
           "viterbi_decode"]
